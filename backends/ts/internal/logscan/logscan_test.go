package logscan

import (
	"context"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// fakeLog is a partition: records of several series in position order,
// append times non-decreasing, event times within the window of them.
type fakeLog struct {
	recs  []Record
	scans int
	reads int
}

// source reads series s of the log, as Kafka's partition scan does.
type source struct {
	log    *fakeLog
	series string
}

func (s source) Scan(_ context.Context, from time.Time, stop int64, yield func(Record) bool) (int64, bool, error) {
	s.log.scans++
	i := sort.Search(len(s.log.recs), func(i int) bool { return !s.log.recs[i].Appended.Before(from) })
	if i == len(s.log.recs) {
		return -1, i == 0, nil
	}
	first := s.log.recs[i].Pos
	for ; i < len(s.log.recs); i++ {
		r := s.log.recs[i]
		if stop >= 0 && r.Pos >= stop {
			break
		}
		s.log.reads++
		if r.Event.Series == s.series && !yield(r) {
			break
		}
	}
	return first, first == s.log.recs[0].Pos, nil
}

func makeLog(rng *rand.Rand, n int, window time.Duration, base time.Time) *fakeLog {
	l := &fakeLog{}
	a := base
	for i := range n {
		a = a.Add(time.Duration(rng.IntN(int(50 * time.Millisecond))))
		if rng.IntN(10) == 0 {
			a = a.Add(time.Duration(rng.IntN(int(10 * time.Second)))) // idle gaps
		}
		skew := time.Duration(rng.Int64N(int64(2*window+1))) - window
		if rng.IntN(4) == 0 {
			skew = skew.Truncate(time.Second) // ties of event time
		}
		series := "s"
		if rng.IntN(3) == 0 {
			series = "other"
		}
		l.recs = append(l.recs, Record{Pos: int64(100 + 2*i), Appended: a,
			Event: ts.Event{Series: series, Time: a.Add(skew).Truncate(100 * time.Millisecond)}})
	}
	return l
}

// want is the brute-force answer: all of series s in [start, end), sorted.
func (l *fakeLog) want(start, end time.Time, desc bool) []Key {
	var keys []Key
	for i := range l.recs {
		r := &l.recs[i]
		if r.Event.Series == "s" && (start.IsZero() || !r.Event.Time.Before(start)) && (end.IsZero() || r.Event.Time.Before(end)) {
			keys = append(keys, keyOf(r))
		}
	}
	slices.SortFunc(keys, func(a, b Key) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	if desc {
		slices.Reverse(keys)
	}
	return keys
}

func TestPagesMatchBruteForce(t *testing.T) {
	const window = 3 * time.Second
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for seed := range 30 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		log := makeLog(rng, 50+rng.IntN(400), window, base)
		last := log.recs[len(log.recs)-1].Appended
		span := last.Sub(base)
		pick := func() time.Time {
			if rng.IntN(4) == 0 {
				return time.Time{}
			}
			return base.Add(time.Duration(rng.Int64N(int64(span+20*time.Second))) - 10*time.Second)
		}
		for qi := range 10 {
			start, end := pick(), pick()
			if !start.IsZero() && !end.IsZero() && end.Before(start) {
				start, end = end, start
			}
			desc := rng.IntN(2) == 0
			limit := 1 + rng.IntN(30)
			want := log.want(start, end, desc)
			var got []Key
			var after *Key
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatal("no end of pages")
				}
				recs, more, err := Page(context.Background(), source{log, "s"}, Query{Start: start, End: end, After: after, Desc: desc,
					Limit: limit, Window: window + Slack, Now: last.Add(time.Duration(rng.IntN(5)) * time.Second)})
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) > limit || more && len(recs) != limit {
					t.Fatalf("page of %d records (more %v) with limit %d", len(recs), more, limit)
				}
				for _, r := range recs {
					got = append(got, keyOf(&r))
				}
				if !more {
					break
				}
				k := keyOf(&recs[len(recs)-1])
				after = &k
			}
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d query %d [%v, %v) desc=%v limit %d:\n got %d %v\nwant %d %v", seed, qi, start, end, desc, limit, len(got), got, len(want), want)
			}
		}
	}
}

// A page must not read the whole log: only about its span plus 2 windows.
func TestPageReadsAWindowNotTheLog(t *testing.T) {
	const window = time.Second
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &fakeLog{}
	for i := range 30000 { // 30 s at 1000 records/s
		a := base.Add(time.Duration(i) * time.Millisecond)
		l.recs = append(l.recs, Record{Pos: int64(i), Appended: a, Event: ts.Event{Series: "s", Time: a}})
	}
	now := base.Add(30 * time.Second)
	for _, desc := range []bool{false, true} {
		l.reads, l.scans = 0, 0
		recs, more, err := Page(context.Background(), source{l, "s"}, Query{Start: base.Add(15 * time.Second), Desc: desc, Limit: 100, Window: window + Slack, Now: now})
		if err != nil || len(recs) != 100 || !more {
			t.Fatalf("desc=%v: %d records, more %v, %v", desc, len(recs), more, err)
		}
		t.Logf("desc=%v: %d scans read %d records", desc, l.scans, l.reads)
		if l.reads > 10000 {
			t.Errorf("desc=%v: a page of 100 read %d of %d records", desc, l.reads, len(l.recs))
		}
	}
}
