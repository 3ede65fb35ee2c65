// Package logscan answers time-ordered queries over an append-ordered log
// (a JetStream stream, a Kafka partition), which is what the log drivers
// share.
//
// A log is indexed by append time A — the broker can seek to the first
// record appended at or after a time — but a query is about event time T,
// and events may arrive out of order. The bridge is the namespace's time
// window W: an append is rejected unless |T - A| <= W (measured on the
// gateway's clock; Slack covers clock skew between gateways and the
// broker). Then, with A non-decreasing along the log:
//
//   - an event with T >= t was appended at A >= t - W, so a scan for events
//     from time t seeks to A = t - W;
//   - once the scan reaches a record with A >= x + W, no later record has
//     T < x, so an ascending scan stops at A >= (the greatest T it still
//     needs) + W;
//   - every record before the seek position of time a has A < a, so T <
//     a + W: a descending scan reads chunks backwards (seeking to ever
//     earlier times, doubling the chunk each time) and stops once a + W is
//     at or below the smallest T it still needs.
//
// A page therefore reads the records appended within about (the page's time
// span + 2W) of it; its cost grows with the append rate of the log (for
// Kafka: of every series sharing the partition) times 2W.
package logscan

import (
	"container/heap"
	"context"
	"math"
	"slices"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// Slack is added to a namespace's time window when scanning, to absorb
// clock skew between the gateways and the broker that stamp append times.
const Slack = time.Second

// minChunk is the smallest time span of a descending scan's chunk.
const minChunk = time.Second

// Record is one event of a log with its position and append time.
type Record struct {
	Pos      int64
	Appended time.Time
	Event    ts.Event
}

// Key orders records: event time, then position.
type Key struct {
	T   int64 // unix nanoseconds
	Pos int64
}

func keyOf(r *Record) Key { return Key{r.Event.Time.UnixNano(), r.Pos} }

func (k Key) less(o Key) bool { return k.T < o.T || k.T == o.T && k.Pos < o.Pos }

// Source reads one series of a log as of a snapshot taken when the source
// was made: records appended later may or may not be seen.
type Source interface {
	// Scan calls yield with the series' records, in position order,
	// starting at the first record appended at or after from (from the
	// beginning when from is zero), until yield returns false, the next
	// record would be at position stop or later (stop >= 0), or the
	// snapshot ends. It returns the position it started at (-1 if it
	// found no record to start at) — every record before it was appended
	// before from — and whether nothing of the series lies before it.
	Scan(ctx context.Context, from time.Time, stop int64, yield func(Record) bool) (first int64, atStart bool, err error)
}

// Query is a page request in event time.
type Query struct {
	Start, End time.Time // zero leaves a side open
	After      *Key      // resume after this key (in the query's order)
	Desc       bool
	Limit      int
	// Window is the namespace's time window plus Slack.
	Window time.Duration
	// Now is the current time, where an unbounded descending scan
	// begins.
	Now time.Time
}

// Page returns the records of the next page in order, and whether more
// records follow it.
func Page(ctx context.Context, src Source, q Query) ([]Record, bool, error) {
	start, end := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Start.IsZero() {
		start = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		end = q.End.UnixNano()
	}
	best := &topK{k: q.Limit + 1, desc: q.Desc}
	candidate := func(r *Record) bool {
		k := keyOf(r)
		if k.T < start || k.T >= end {
			return false
		}
		if q.After == nil {
			return true
		}
		if q.Desc {
			return k.less(*q.After)
		}
		return q.After.less(k)
	}
	w := q.Window
	var err error
	if q.Desc {
		err = scanDesc(ctx, src, q, start, end, w, best, candidate)
	} else {
		err = scanAsc(ctx, src, q, start, end, w, best, candidate)
	}
	if err != nil {
		return nil, false, err
	}
	recs := best.sorted()
	if len(recs) > q.Limit {
		return recs[:q.Limit], true, nil
	}
	return recs, false, nil
}

func scanAsc(ctx context.Context, src Source, q Query, start, end int64, w time.Duration, best *topK, candidate func(*Record) bool) error {
	lo := start
	if q.After != nil {
		lo = max(lo, q.After.T)
	}
	if lo >= end {
		return nil
	}
	var from time.Time
	if lo != math.MinInt64 {
		from = time.Unix(0, lo).Add(-w)
	}
	_, _, err := src.Scan(ctx, from, -1, func(r Record) bool {
		a := r.Appended.UnixNano()
		if end != math.MaxInt64 && a >= addSat(end, w) {
			return false // every later record has T >= end
		}
		if best.full() && a >= addSat(best.worst().T, w) {
			return false // every later record sorts after the page
		}
		if candidate(&r) {
			best.offer(r)
		}
		return true
	})
	return err
}

func scanDesc(ctx context.Context, src Source, q Query, start, end int64, w time.Duration, best *topK, candidate func(*Record) bool) error {
	hi := end
	if q.After != nil && q.After.T < math.MaxInt64 {
		hi = min(hi, q.After.T+1)
	}
	if hi <= start {
		return nil
	}
	bounded := hi != math.MaxInt64
	var stopA int64 // records appended at or after it have T >= hi
	a := q.Now.Add(w)
	if bounded {
		stopA = addSat(hi, w)
		a = time.Unix(0, stopA)
	}
	chunk := max(w, minChunk)
	stop := int64(-1)
	for {
		from := a.Add(-chunk)
		first, atStart, err := src.Scan(ctx, from, stop, func(r Record) bool {
			if bounded && r.Appended.UnixNano() >= stopA {
				return false
			}
			if candidate(&r) {
				best.offer(r)
			}
			return true
		})
		if err != nil {
			return err
		}
		if first >= 0 {
			stop = first
		}
		// Records before this chunk have T < from + w.
		bound := from.Add(w).UnixNano()
		if atStart || bound <= start || best.full() && bound <= best.worst().T {
			return nil
		}
		a, chunk = from, 2*chunk
	}
}

// addSat returns t + d, saturating instead of overflowing.
func addSat(t int64, d time.Duration) int64 {
	if t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}

// topK keeps the k best records seen: the smallest keys ascending, the
// largest descending. It is a heap with the worst kept record at the root.
type topK struct {
	k    int
	desc bool
	recs []Record
}

func (h *topK) full() bool    { return len(h.recs) >= h.k }
func (h *topK) worst() Key    { return keyOf(&h.recs[0]) }
func (h *topK) Len() int      { return len(h.recs) }
func (h *topK) Swap(i, j int) { h.recs[i], h.recs[j] = h.recs[j], h.recs[i] }
func (h *topK) Push(x any)    { h.recs = append(h.recs, x.(Record)) }
func (h *topK) Pop() any {
	r := h.recs[len(h.recs)-1]
	h.recs = h.recs[:len(h.recs)-1]
	return r
}

// Less puts the worst record first.
func (h *topK) Less(i, j int) bool {
	a, b := keyOf(&h.recs[i]), keyOf(&h.recs[j])
	if h.desc {
		return a.less(b)
	}
	return b.less(a)
}

// better reports whether a belongs before b in the page.
func (h *topK) better(a, b Key) bool {
	if h.desc {
		return b.less(a)
	}
	return a.less(b)
}

func (h *topK) offer(r Record) {
	if !h.full() {
		heap.Push(h, r)
		return
	}
	if h.better(keyOf(&r), h.worst()) {
		h.recs[0] = r
		heap.Fix(h, 0)
	}
}

// sorted returns the kept records, best first.
func (h *topK) sorted() []Record {
	recs := slices.Clone(h.recs)
	slices.SortFunc(recs, func(a, b Record) int {
		ka, kb := keyOf(&a), keyOf(&b)
		switch {
		case h.better(ka, kb):
			return -1
		case h.better(kb, ka):
			return 1
		}
		return 0
	})
	return recs
}
