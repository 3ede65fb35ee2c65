package tstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// replicaTests check ts.Replica, what a migration of a namespace between two
// stores relies on. They run when the store under test implements it. The
// Opener gives one store, so copies go from one namespace to another of the
// store, or back into a namespace dropped and re-created, where positions
// and cursors must come back unchanged.
//
// Copies to positions no append gave (above a floor) use offsets of a
// million or more, so they never land on a position another subtest's
// append gets meanwhile; a store with positions shared by all series
// (sqlite) may still move such a copy, which those cases accept.
var replicaTests = []struct {
	name string
	fn   func(t *testing.T, c *client, r ts.Replica)
}{
	{"AppendEventsReturnsThePositionsTailsAndQueriesShow", testAppendEvents},
	{"CopyIntoARecreatedNamespaceKeepsPositionsAndCursors", testCopyKeepsPositions},
	{"CopyToAnotherNamespaceStoresEveryEventOnce", testCopyToOtherNamespace},
	{"CopySkipsEventsItHoldsAlready", testCopySkips},
	{"CopyRejectsBadEventsAndStoresNothing", testCopyValidates},
	{"SealStopsAppendsButNotCopiesAndTailsStopAtTheFloor", testSeal},
	{"UnsealPositionsLaterAppendsAboveTheFloor", testUnseal},
	{"AppendsRacingSealEndBelowTheFloorOrFailSealed", testSealRace},
	{"CursorSeqReadsTailCursorsOnly", testCursorSeq},
}

// appendEvents appends with AppendEvents and fails unless all were stored.
func (c *client) appendEvents(r ts.Replica, events ...ts.Event) []ts.Event {
	c.t.Helper()
	stored, dups, err := r.AppendEvents(c.ctx, c.ns, events)
	if err != nil || dups != 0 || len(stored) != len(events) {
		c.t.Fatalf("AppendEvents(%d new events) = %d stored, %d duplicates, %v", len(events), len(stored), dups, err)
	}
	return stored
}

// copyAll copies events into ns in batches of size and returns the totals.
func (c *client) copyAll(r ts.Replica, ns string, events []ts.Event, size int) (stored, moved int) {
	c.t.Helper()
	for len(events) > 0 {
		n := min(size, len(events))
		s, m, err := r.Copy(c.ctx, ns, events[:n])
		if err != nil {
			c.t.Fatalf("Copy(%d events): %v", n, err)
		}
		stored, moved, events = stored+s, moved+m, events[n:]
	}
	return stored, moved
}

// in returns a client of the same store and subtest in namespace ns.
func (c *client) in(ns string) *client {
	o := *c
	o.ns = ns
	return &o
}

// wantPositions fails unless got equals want in order, positions (Seq) and
// tail cursors included.
func wantPositions(t *testing.T, what string, got, want []ts.Event) {
	t.Helper()
	wantEvents(t, what, got, want)
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Cursor != want[i].Cursor {
			t.Fatalf("%s: event %d %s at Seq %d, cursor %q; want Seq %d, cursor %q",
				what, i, show(got[i]), got[i].Seq, got[i].Cursor, want[i].Seq, want[i].Cursor)
		}
	}
}

func testAppendEvents(t *testing.T, c *client, r ts.Replica) {
	startA := c.tail(ts.TailArgs{Series: "a"}).NextCursor
	startB := c.tail(ts.TailArgs{Series: "b"}).NextCursor
	prior := c.ev("a", 0, 0)
	prior.ID = "p"
	c.mustAppend(prior)
	a1, b1, a2, a3 := c.ev("a", 5*time.Second, 1), c.ev("b", time.Second, 2), c.ev("a", 2*time.Second, 3), c.ev("a", 3*time.Second, 4)
	b2, a4 := c.ev("b", -time.Second, 5), c.ev("a", -2*time.Second, 6)
	a1.ID, a2.ID, a3.ID = "x", "x", "p" // a2 repeats a1 in the batch, a3 an event stored before
	stored, dups, err := r.AppendEvents(c.ctx, c.ns, []ts.Event{a1, b1, a2, a3, b2, a4})
	if err != nil || dups != 2 {
		t.Fatalf("AppendEvents with two duplicates = %d duplicates, %v; want 2", dups, err)
	}
	wantEvents(t, "AppendEvents' stored events", stored, []ts.Event{a1, b1, b2, a4})
	last := map[string]int64{}
	for _, e := range stored {
		if e.Seq <= last[e.Series] {
			t.Fatalf("AppendEvents: %s at Seq %d, not after the previous event of its series (%d)", show(e), e.Seq, last[e.Series])
		}
		last[e.Series] = e.Seq
		if want := r.SeqCursor(c.ns, e.Series, e.Seq); e.Cursor != want {
			t.Errorf("AppendEvents: %s has cursor %q, SeqCursor of its Seq is %q", show(e), e.Cursor, want)
		}
		if seq, err := r.CursorSeq(c.ns, e.Series, e.Cursor); err != nil || seq != e.Seq {
			t.Errorf("CursorSeq of %s's cursor = %d, %v; want %d", show(e), seq, err, e.Seq)
		}
	}
	ta := c.tail(ts.TailArgs{Series: "a", After: startA})
	wantEvents(t, "tail of a", ta.Events, []ts.Event{prior, a1, a4})
	wantPositions(t, "tail of a after AppendEvents", ta.Events[1:], []ts.Event{stored[0], stored[3]})
	wantPositions(t, "tail of b after AppendEvents", c.tail(ts.TailArgs{Series: "b", After: startB}).Events, []ts.Event{stored[1], stored[2]})
	wantPositions(t, "ascending query of a", c.query(ts.QueryArgs{Series: "a"}).Events, []ts.Event{stored[3], ta.Events[0], stored[0]})
	wantPositions(t, "tail after a cursor made of a position", c.tail(ts.TailArgs{Series: "a", After: r.SeqCursor(c.ns, "a", stored[0].Seq)}).Events, stored[3:])

	if s, d, err := r.AppendEvents(c.ctx, c.ns, nil); len(s) != 0 || d != 0 || err != nil {
		t.Errorf("AppendEvents of no events = %d, %d, %v; want 0, 0, nil", len(s), d, err)
	}
	_, _, err = r.AppendEvents(c.ctx, c.ns, []ts.Event{c.ev("a", 0, 7), {Series: "a b", Time: c.at(0)}})
	wantErr(t, "AppendEvents with a bad series", err, ts.ErrInvalidArgument)
	_, _, err = r.AppendEvents(c.ctx, Namespace(t), []ts.Event{c.ev("a", 0, 7)})
	wantErr(t, "AppendEvents to an unknown namespace", err, ts.ErrNotFound)
	if n := c.count("a"); n != 3 {
		t.Fatalf("series a has %d events after failed appends, want 3", n)
	}
}

// seriesView is what clients hold of a series: pages and cursors to resume.
type seriesView struct {
	all              []ts.Event // every event, ascending
	asc1, desc1      ts.Page    // first pages of 2
	ascRest, descRes []ts.Event // what their next cursors page through
	tails            [][]ts.Event
	end              string // a tail's cursor at the end of the series
}

func (c *client) view(series string) seriesView {
	c.t.Helper()
	v := seriesView{all: c.queryAll(ts.QueryArgs{Series: series, Limit: ts.MaxLimit})}
	v.asc1 = c.query(ts.QueryArgs{Series: series, Limit: 2})
	v.ascRest = c.queryAll(ts.QueryArgs{Series: series, Limit: 2, Cursor: v.asc1.NextCursor})
	v.desc1 = c.query(ts.QueryArgs{Series: series, Limit: 2, Desc: true})
	v.descRes = c.queryAll(ts.QueryArgs{Series: series, Limit: 2, Desc: true, Cursor: v.desc1.NextCursor})
	for _, e := range v.all {
		v.tails = append(v.tails, c.tail(ts.TailArgs{Series: series, After: e.Cursor, Limit: ts.MaxLimit}).Events)
	}
	v.end = c.tail(ts.TailArgs{Series: series}).NextCursor
	return v
}

func testCopyKeepsPositions(t *testing.T, c *client, r ts.Replica) {
	series := []string{"a", "b", "c:1"}
	var batch []ts.Event
	for i := range 18 {
		e := c.ev(series[i%3], time.Duration((i*7)%11-5)*time.Second, i)
		if i%2 == 0 {
			e.ID = fmt.Sprintf("id-%d", i)
		}
		e.Tags = map[string]string{"i": fmt.Sprint(i)}
		if batch = append(batch, e); len(batch) == 3 {
			c.mustAppend(batch...)
			batch = nil
		}
	}
	before := map[string]seriesView{}
	for _, s := range series {
		before[s] = c.view(s)
	}
	exported := c.exportAll(r, ts.ExportArgs{Limit: 7})

	if err := c.s.DropNamespace(c.ctx, c.ns); err != nil {
		t.Fatal(err)
	}
	if err := c.s.EnsureNamespace(c.ctx, c.ns, ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if stored, moved := c.copyAll(r, c.ns, exported, 7); stored != len(exported) || moved != 0 {
		t.Fatalf("Copy of %d exported events into their re-created namespace: %d stored, %d moved; want all stored, none moved", len(exported), stored, moved)
	}
	for _, s := range series {
		b := before[s]
		wantPositions(t, s+": query after the copy", c.queryAll(ts.QueryArgs{Series: s, Limit: ts.MaxLimit}), b.all)
		p := c.query(ts.QueryArgs{Series: s, Limit: 2})
		wantPositions(t, s+": first page after the copy", p.Events, b.asc1.Events)
		if p.NextCursor != b.asc1.NextCursor {
			t.Errorf("%s: first page's next cursor %q after the copy, %q before", s, p.NextCursor, b.asc1.NextCursor)
		}
		wantPositions(t, s+": ascending pages from a cursor of before the copy",
			c.queryAll(ts.QueryArgs{Series: s, Limit: 2, Cursor: b.asc1.NextCursor}), b.ascRest)
		wantPositions(t, s+": descending pages from a cursor of before the copy",
			c.queryAll(ts.QueryArgs{Series: s, Limit: 2, Desc: true, Cursor: b.desc1.NextCursor}), b.descRes)
		for i, e := range b.all {
			wantPositions(t, fmt.Sprintf("%s: tail after event %d's cursor of before the copy", s, i),
				c.tail(ts.TailArgs{Series: s, After: e.Cursor, Limit: ts.MaxLimit}).Events, b.tails[i])
		}
		if p := c.tail(ts.TailArgs{Series: s, After: b.end}); len(p.Events) != 0 {
			t.Fatalf("%s: tail from the end cursor of before the copy returned %s", s, showAll(p.Events))
		}
		// A copy never lowers the position of a later append.
		later := c.appendEvents(r, c.ev(s, time.Minute, 100))
		if top := maxSeq(b.all); later[0].Seq <= top {
			t.Fatalf("%s: append after the copy got Seq %d, not above the copies' (up to %d)", s, later[0].Seq, top)
		}
		wantPositions(t, s+": tail from the old end cursor", c.tail(ts.TailArgs{Series: s, After: b.end}).Events, later)
	}
}

func maxSeq(events []ts.Event) int64 {
	m := int64(0)
	for _, e := range events {
		m = max(m, e.Seq)
	}
	return m
}

func testCopyToOtherNamespace(t *testing.T, c *client, r ts.Replica) {
	other := Namespace(t)
	c.ensure(other, ts.NamespaceOptions{})
	for i := range 12 {
		e := c.ev([]string{"a", "b"}[i%2], time.Duration(i)*time.Second, i) // distinct times: order does not hang on positions
		if i%3 == 0 {
			e.ID = fmt.Sprintf("id-%d", i)
		}
		c.mustAppend(e)
	}
	exported := c.exportAll(r, ts.ExportArgs{})
	top := maxSeq(exported)
	stored, moved := c.copyAll(r, other, exported, 5)
	if stored != len(exported) {
		t.Fatalf("Copy of %d events into another namespace stored %d", len(exported), stored)
	}
	differ := 0
	for _, s := range []string{"a", "b"} {
		src := c.queryAll(ts.QueryArgs{Series: s})
		dst := c.in(other).queryAll(ts.QueryArgs{Series: s})
		wantEvents(t, s+": copied events", dst, src)
		for i := range dst {
			if dst[i].Seq == src[i].Seq {
				continue
			}
			differ++
			// A store whose positions are not per series moves a copy to
			// a fresh position, after every one given.
			if dst[i].Seq <= top {
				t.Errorf("%s: copy of %s moved to Seq %d, not after every existing position (%d)", s, show(src[i]), dst[i].Seq, top)
			}
		}
	}
	if differ != moved {
		t.Errorf("Copy reported %d moved, %d copies are at another Seq than their source", moved, differ)
	}
	if stored, moved := c.copyAll(r, other, exported, 12); stored != 0 || moved != 0 {
		t.Fatalf("the same Copy again = %d stored, %d moved; want 0, 0", stored, moved)
	}
	if n := c.in(other).count("a") + c.in(other).count("b"); n != len(exported) {
		t.Fatalf("after copying twice the other namespace has %d events, want %d", n, len(exported))
	}
}

func testCopySkips(t *testing.T, c *client, r ts.Replica) {
	e1, e2 := c.ev("s", 0, 1), c.ev("s", time.Second, 2)
	e1.ID = "a"
	in := c.appendEvents(r, e1, e2)
	if stored, moved, err := r.Copy(c.ctx, c.ns, in); stored != 0 || moved != 0 || err != nil {
		t.Fatalf("Copy of events as stored = %d stored, %d moved, %v; want 0, 0, nil", stored, moved, err)
	}
	sameID := in[0]
	sameID.Seq, sameID.Data = in[1].Seq+1_000_000, json.RawMessage(`{"other":1}`)
	samePos := c.ev("s", 2*time.Second, 3)
	samePos.Seq = in[1].Seq
	if stored, _, err := r.Copy(c.ctx, c.ns, []ts.Event{sameID, samePos}); stored != 0 || err != nil {
		t.Fatalf("Copy of an id held at another position and of a held position = %d stored, %v; want 0", stored, err)
	}
	fresh, withID := c.ev("s", 3*time.Second, 4), c.ev("s", 4*time.Second, 5)
	withID.ID = "b"
	fresh.Seq, withID.Seq = in[1].Seq+2_000_000, in[1].Seq+2_000_001
	otherPos := withID
	otherPos.Seq++
	if stored, _, err := r.Copy(c.ctx, c.ns, []ts.Event{fresh, withID, fresh, otherPos}); stored != 2 || err != nil {
		t.Fatalf("Copy(x, y, x, y at another position) = %d stored, %v; want 2", stored, err)
	}
	// Of two events at one position only the first is stored; the id of
	// the second stays free for a third at another position.
	x, y := c.ev("s", 5*time.Second, 6), c.ev("s", 6*time.Second, 7)
	x.ID, y.ID = "c", "d"
	x.Seq, y.Seq = in[1].Seq+3_000_000, in[1].Seq+3_000_000
	z := y
	z.Seq++
	if stored, _, err := r.Copy(c.ctx, c.ns, []ts.Event{x, y, z}); stored != 2 || err != nil {
		t.Fatalf("Copy(x, y at x's position, y at another) = %d stored, %v; want 2", stored, err)
	}
	wantEvents(t, "after the copies", c.query(ts.QueryArgs{Series: "s"}).Events, []ts.Event{e1, e2, fresh, withID, x, z})
}

func testCopyValidates(t *testing.T, c *client, r ts.Replica) {
	good := c.ev("s", 0, 1)
	good.Seq = 1_000_000
	for name, e := range map[string]ts.Event{
		"no position":       {Series: "s", Time: good.Time},
		"negative position": {Series: "s", Time: good.Time, Seq: -1},
		"bad series":        {Series: "a b", Time: good.Time, Seq: 2},
		"no time":           {Series: "s", Seq: 2},
		"invalid JSON data": {Series: "s", Time: good.Time, Seq: 2, Data: json.RawMessage(`{"a":`)},
	} {
		_, _, err := r.Copy(c.ctx, c.ns, []ts.Event{good, e})
		wantErr(t, "Copy of an event with "+name, err, ts.ErrInvalidArgument)
	}
	if n := c.count("s"); n != 0 {
		t.Fatalf("rejected copies stored %d events", n)
	}
	_, _, err := r.Copy(c.ctx, Namespace(t), []ts.Event{good})
	wantErr(t, "Copy to an unknown namespace", err, ts.ErrNotFound)
	if stored, moved, err := r.Copy(c.ctx, c.ns, nil); stored != 0 || moved != 0 || err != nil {
		t.Errorf("Copy of no events = %d, %d, %v; want 0, 0, nil", stored, moved, err)
	}
	ctx, cancel := contextCancelled(c)
	defer cancel()
	_, _, err = r.Copy(ctx, c.ns, []ts.Event{good})
	wantErr(t, "Copy with a cancelled context", err, ts.ErrUnavailable)
}

func testSeal(t *testing.T, c *client, r ts.Replica) {
	start := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	e1, e2 := c.ev("s", 0, 1), c.ev("s", time.Second, 2)
	in := c.appendEvents(r, e1, e2)
	floor, err := r.Seal(c.ctx, c.ns)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if floor < in[1].Seq {
		t.Fatalf("Seal = floor %d, below the position %d of an append before it", floor, in[1].Seq)
	}
	_, _, err = c.s.Append(c.ctx, c.ns, []ts.Event{c.ev("s", 2*time.Second, 3)})
	wantErr(t, "Append to a sealed namespace", err, ts.ErrSealed)
	wantErr(t, "Append to a sealed namespace", err, ts.ErrUnavailable)
	_, _, err = r.AppendEvents(c.ctx, c.ns, []ts.Event{c.ev("other", 2*time.Second, 3)})
	wantErr(t, "AppendEvents to a sealed namespace (a new series)", err, ts.ErrSealed)

	cp1, cp2 := c.ev("s", 3*time.Second, 4), c.ev("s", -time.Second, 5)
	cp1.ID, cp1.Seq, cp2.Seq = "copied", floor+1_000_000, floor+1_000_001
	if stored, _, err := r.Copy(c.ctx, c.ns, []ts.Event{cp1, cp2}); stored != 2 || err != nil {
		t.Fatalf("Copy to a sealed namespace = %d stored, %v; want 2", stored, err)
	}
	if again, err := r.Seal(c.ctx, c.ns); err != nil || again != floor {
		t.Fatalf("Seal again (after copies above the floor) = %d, %v; want the same floor %d", again, err, floor)
	}
	wantEvents(t, "query of a sealed namespace", c.query(ts.QueryArgs{Series: "s"}).Events, []ts.Event{cp2, e1, e2, cp1})
	wantPositions(t, "tail of a sealed namespace from the start", c.tail(ts.TailArgs{Series: "s", After: start}).Events, in)
	// Waiting at the floor: a copy landing above it wakes the tail but is
	// not returned.
	go func() {
		time.Sleep(100 * time.Millisecond)
		cp3 := c.ev("s", 4*time.Second, 6)
		cp3.Seq = floor + 1_000_002
		if _, _, err := r.Copy(c.ctx, c.ns, []ts.Event{cp3}); err != nil {
			t.Errorf("Copy while a tail waits: %v", err)
		}
	}()
	if p := c.tail(ts.TailArgs{Series: "s", After: in[1].Cursor, Wait: 500 * time.Millisecond}); len(p.Events) != 0 {
		t.Fatalf("tail of a sealed namespace past its appends returned copies above the floor: %s", showAll(p.Events))
	}
	end := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	if seq, err := r.CursorSeq(c.ns, "s", end); err != nil || seq > floor {
		t.Fatalf("a tail without cursor of a sealed namespace starts at %d, %v; want at most the floor %d", seq, err, floor)
	}
	if n := c.count("s"); n != 5 {
		t.Fatalf("sealed namespace has %d events, want the 2 appended and 3 copied", n)
	}
	_, err = r.Seal(c.ctx, Namespace(t))
	wantErr(t, "Seal of an unknown namespace", err, ts.ErrNotFound)
}

func testUnseal(t *testing.T, c *client, r ts.Replica) {
	in := c.appendEvents(r, c.ev("s", 0, 1))
	floor, err := r.Seal(c.ctx, c.ns)
	if err != nil {
		t.Fatal(err)
	}
	target := floor + 1000 // as if the other store had given positions up to it
	if err := r.Unseal(c.ctx, c.ns, target); err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	out := c.appendEvents(r, c.ev("s", time.Second, 2), c.ev("new", 0, 3))
	for _, e := range out {
		if e.Seq <= target {
			t.Fatalf("after Unseal(%d) %s was appended at Seq %d, not above the floor", target, show(e), e.Seq)
		}
	}
	wantPositions(t, "tail across the seal", c.tail(ts.TailArgs{Series: "s", After: in[0].Cursor}).Events, out[:1])
	// Unsealing a namespace that is not sealed only ever raises its floor.
	if err := r.Unseal(c.ctx, c.ns, 1); err != nil {
		t.Fatalf("Unseal of a namespace not sealed: %v", err)
	}
	next := c.appendEvents(r, c.ev("s", 2*time.Second, 4), c.ev("new", time.Second, 5))
	if next[0].Seq <= out[0].Seq || next[1].Seq <= out[1].Seq {
		t.Fatalf("after Unseal(1) appends went back to Seqs %d, %d (before: %d, %d)", next[0].Seq, next[1].Seq, out[0].Seq, out[1].Seq)
	}
	again, err := r.Seal(c.ctx, c.ns)
	if err != nil || again < next[1].Seq || again < next[0].Seq {
		t.Fatalf("Seal after Unseal = %d, %v; want at least every position given (%d, %d)", again, err, next[0].Seq, next[1].Seq)
	}
	err = r.Unseal(c.ctx, c.ns, -1)
	wantErr(t, "Unseal with a negative floor", err, ts.ErrInvalidArgument)
	err = r.Unseal(c.ctx, Namespace(t), 1)
	wantErr(t, "Unseal of an unknown namespace", err, ts.ErrNotFound)
}

func testSealRace(t *testing.T, c *client, r ts.Replica) {
	const writers = 8
	var mu sync.Mutex
	var ok []ts.Event
	failed := 0
	var sealed atomic.Bool // Seal has returned
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				var batch []ts.Event
				for j := range 1 + (w+i)%3 {
					e := c.ev(fmt.Sprintf("s%d", w%3), time.Duration(i)*time.Millisecond, w*100000+i*10+j)
					e.ID = fmt.Sprintf("w%d-%d-%d", w, i, j)
					batch = append(batch, e)
				}
				late := sealed.Load()
				stored, _, err := r.AppendEvents(c.ctx, c.ns, batch)
				mu.Lock()
				if err == nil {
					ok = append(ok, stored...)
				} else {
					failed++
				}
				mu.Unlock()
				switch {
				case err == nil && late:
					t.Errorf("writer %d: an AppendEvents begun after Seal returned stored %s", w, showAll(stored))
					return
				case err != nil && !errors.Is(err, ts.ErrSealed):
					t.Errorf("writer %d: AppendEvents: %v, want success or ts.ErrSealed", w, err)
					return
				case err != nil:
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // appends under way
	floor, err := r.Seal(c.ctx, c.ns)
	sealed.Store(true)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	wg.Wait()
	if len(ok) == 0 || failed != writers {
		t.Fatalf("%d events appended and %d writers stopped by the seal; want some and all %d", len(ok), failed, writers)
	}
	want := map[string]int{}
	for _, e := range ok {
		if e.Seq > floor {
			t.Fatalf("%s was appended at Seq %d, above the floor %d Seal returned", show(e), e.Seq, floor)
		}
		want[e.Series]++
	}
	for s, n := range want {
		if got := c.count(s); got != n {
			t.Fatalf("series %s holds %d events, %d appends succeeded: an append failed with ErrSealed stored events, or one that succeeded is lost", s, got, n)
		}
	}
	t.Logf("%d events appended by %d writers before the seal at %d", len(ok), writers, floor)
}

func testCursorSeq(t *testing.T, c *client, r ts.Replica) {
	in := c.appendEvents(r, c.ev("s", 0, 1), c.ev("s", time.Second, 2))
	c.mustAppend(c.ev("t", 0, 3), c.ev("t", 0, 4))
	end := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	if seq, err := r.CursorSeq(c.ns, "s", end); err != nil || seq != in[1].Seq {
		t.Errorf("CursorSeq of a tail's end cursor = %d, %v; want the last event's Seq %d", seq, err, in[1].Seq)
	}
	for _, seq := range []int64{0, 1, in[0].Seq, 1 << 40} {
		if got, err := r.CursorSeq(c.ns, "s", r.SeqCursor(c.ns, "s", seq)); err != nil || got != seq {
			t.Errorf("CursorSeq(SeqCursor(%d)) = %d, %v", seq, got, err)
		}
	}
	other := Namespace(t)
	for name, cur := range map[string]string{
		"empty":                         "",
		"garbage":                       "!!",
		"a query cursor":                c.query(ts.QueryArgs{Series: "s", Limit: 1}).NextCursor,
		"a cursor of another series":    c.query(ts.QueryArgs{Series: "t"}).Events[0].Cursor,
		"a cursor of another namespace": r.SeqCursor(other, "s", 1),
	} {
		_, err := r.CursorSeq(c.ns, "s", cur)
		wantErr(t, "CursorSeq of "+name, err, ts.ErrInvalidCursor)
	}
}
