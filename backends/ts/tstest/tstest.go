// Package tstest is the conformance suite every ts.Store driver runs against
// a real server, in the manner of Dapr's components-contrib: a driver's test
// calls Run with a function that opens a store, and the suite checks the
// behaviour the data API promises (see package ts).
//
// Choices the suite pins down where ts.Store's docs are silent:
//   - Event times in the suite lie within a minute of now, inside the
//     default time window of every driver.
//   - Data comes back semantically equal (compared as decoded JSON); empty
//     data comes back as null. Tags come back equal, nil and empty alike.
//   - Ties of equal time are ordered by append order ascending, and the
//     reverse descending.
//   - Validation happens before anything is written: a batch with one bad
//     event stores nothing.
//   - A call with a cancelled or expired context, or a tail whose context
//     ends while it waits, fails with an error that matches both
//     ts.ErrUnavailable and the context's error.
//
// A store that also implements ts.Exporter or ts.Replica runs their cases
// too (export.go, replica.go); the others skip them.
package tstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// Opener returns a store for one subtest. It is called once per subtest,
// possibly concurrently; the store it returns may be shared between calls.
// The suite never closes it: the opener arranges that with t.Cleanup.
type Opener func(t *testing.T) ts.Store

// testTimeout bounds each subtest so that a hung driver fails instead of
// stalling the whole run.
const testTimeout = 30 * time.Second

// Run runs the conformance suite. Subtests run in parallel, each in its own
// namespace (dropped at the end), so no state leaks between them.
func Run(t *testing.T, open Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c *client)
	}{
		{"AppendThenQueryRoundTripsEveryField", testRoundTrip},
		{"QueryOrdersByTimeWithTiesByAppendOrder", testOrder},
		{"QueryStartIsInclusiveEndExclusive", testBounds},
		{"QueryPagingCoversEveryEventOnceInBothOrders", testPaging},
		{"ReappendedIDIsADuplicate", testIdempotency},
		{"DuplicateIDWithinOneBatch", testIdempotencyInBatch},
		{"ConcurrentAppendsOfOneIDStoreItOnce", testIdempotencyRace},
		{"EventsWithoutIDAreNeverDeduplicated", testNoID},
		{"SeriesAreIsolated", testSeriesIsolation},
		{"NamespacesAreIsolated", testNamespaceIsolation},
		{"UnknownNamespaceIsNotFound", testUnknownNamespace},
		{"DropNamespaceDeletesEvents", testDrop},
		{"EnsureNamespaceIsIdempotent", testEnsureTwice},
		{"EventOutsideTimeWindowIsRejected", testTimeWindow},
		{"BadArgumentsAreInvalid", testBadArguments},
		{"GarbageCursorsAreRejected", testBadCursors},
		{"TailWithoutCursorReturnsOnlyLaterEvents", testTailFromEnd},
		{"TailWaitingWithoutCursorSeesEventAppendedDuringWait", testTailFromEndWaiting},
		{"TailWakesPromptlyOnAppend", testTailWakes},
		{"TailTimesOutWithUsableCursor", testTailTimeout},
		{"TailPagesInAppendOrderWithLimit", testTailPaging},
		{"TailFromEventCursor", testTailFromEventCursor},
		{"TailsSeeEveryEventOnceWithEightWriters", testTailConcurrent},
		{"CancelledContextFails", testCancelled},
		{"TailEndsWhenContextIsCancelled", testTailCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c := &client{t: t, ctx: ctx, s: open(t), ns: Namespace(t), base: time.Now().UTC().Truncate(time.Second)}
			c.ensure(c.ns, ts.NamespaceOptions{})
			tc.fn(t, c)
		})
	}
	for _, tc := range exportTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c := &client{t: t, ctx: ctx, s: open(t), ns: Namespace(t), base: time.Now().UTC().Truncate(time.Second)}
			x, ok := c.s.(ts.Exporter)
			if !ok {
				t.Skipf("%T does not implement ts.Exporter (log drivers cannot list a namespace yet)", c.s)
			}
			c.ensure(c.ns, ts.NamespaceOptions{})
			tc.fn(t, c, x)
		})
	}
	for _, tc := range replicaTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c := &client{t: t, ctx: ctx, s: open(t), ns: Namespace(t), base: time.Now().UTC().Truncate(time.Second)}
			r, ok := c.s.(ts.Replica)
			if !ok {
				t.Skipf("%T does not implement ts.Replica (only the SQL drivers take part in TimeSeries migrations)", c.s)
			}
			c.ensure(c.ns, ts.NamespaceOptions{})
			tc.fn(t, c, r)
		})
	}
}

// contextCancelled is the subtest's context, already cancelled.
func contextCancelled(c *client) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.ctx)
	cancel()
	return ctx, cancel
}

// Namespace returns a fresh namespace name so that concurrent tests and
// repeated runs against one server never see each other's events.
func Namespace(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random namespace: %v", err)
	}
	return "tstest-" + hex.EncodeToString(b[:])
}

// client wraps a store with the subtest's context and namespace and with
// helpers that fail the test on unexpected errors.
type client struct {
	t    *testing.T
	ctx  context.Context
	s    ts.Store
	ns   string
	base time.Time // a time near now that events are placed around
}

// ensure provisions ns and drops it when the test ends.
func (c *client) ensure(ns string, opts ts.NamespaceOptions) {
	c.t.Helper()
	if err := c.s.EnsureNamespace(c.ctx, ns, opts); err != nil {
		c.t.Fatalf("EnsureNamespace(%q, %+v): %v", ns, opts, err)
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.s.DropNamespace(ctx, ns); err != nil {
			c.t.Errorf("DropNamespace(%q): %v", ns, err)
		}
	})
}

// at returns the base time plus d.
func (c *client) at(d time.Duration) time.Time { return c.base.Add(d) }

// ev makes an event of series at base+d with data {"n": n}.
func (c *client) ev(series string, d time.Duration, n int) ts.Event {
	return ts.Event{Series: series, Time: c.at(d), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

func (c *client) appendTo(ns string, events ...ts.Event) (int, int) {
	c.t.Helper()
	a, d, err := c.s.Append(c.ctx, ns, events)
	if err != nil {
		c.t.Fatalf("Append(%d events): %v", len(events), err)
	}
	return a, d
}

func (c *client) append(events ...ts.Event) (int, int) {
	c.t.Helper()
	return c.appendTo(c.ns, events...)
}

// mustAppend appends events and fails unless all were stored.
func (c *client) mustAppend(events ...ts.Event) {
	c.t.Helper()
	if a, d := c.append(events...); a != len(events) || d != 0 {
		c.t.Fatalf("Append(%d new events) = appended %d, duplicates %d", len(events), a, d)
	}
}

func (c *client) queryIn(ns string, q ts.QueryArgs) ts.Page {
	c.t.Helper()
	p, err := c.s.Query(c.ctx, ns, q)
	if err != nil {
		c.t.Fatalf("Query(%+v): %v", q, err)
	}
	return p
}

func (c *client) query(q ts.QueryArgs) ts.Page {
	c.t.Helper()
	return c.queryIn(c.ns, q)
}

// queryAll pages through q and returns every event, failing on a page
// that breaks the paging contract.
func (c *client) queryAll(q ts.QueryArgs) []ts.Event {
	c.t.Helper()
	var all []ts.Event
	for pages := 0; ; pages++ {
		if pages > 10000 {
			c.t.Fatalf("Query(%+v): no end after 10000 pages", q)
		}
		p := c.query(q)
		if len(p.Events) > ts.PageLimit(q.Limit) {
			c.t.Fatalf("Query(%+v) returned %d events, over the limit", q, len(p.Events))
		}
		if p.NextCursor != "" && len(p.Events) == 0 {
			c.t.Fatalf("Query(%+v): empty page with a next cursor", q)
		}
		all = append(all, p.Events...)
		if p.NextCursor == "" {
			return all
		}
		q.Cursor = p.NextCursor
	}
}

func (c *client) tail(a ts.TailArgs) ts.Page {
	c.t.Helper()
	p, err := c.s.Tail(c.ctx, c.ns, a)
	if err != nil {
		c.t.Fatalf("Tail(%+v): %v", a, err)
	}
	if p.NextCursor == "" {
		c.t.Fatalf("Tail(%+v) returned no cursor", a)
	}
	return p
}

// eventsEqual compares what the API promises to keep.
func eventsEqual(a, b ts.Event) bool {
	return a.Series == b.Series && a.Time.Equal(b.Time) && a.ID == b.ID &&
		jsonEqual(a.Data, b.Data) && maps.Equal(a.Tags, b.Tags)
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if err := json.Unmarshal(ts.DataOrNull(a), &x); err != nil {
		return false
	}
	if err := json.Unmarshal(ts.DataOrNull(b), &y); err != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func show(e ts.Event) string {
	return fmt.Sprintf("{%s %s id=%q data=%s tags=%v}", e.Series, e.Time.UTC().Format(time.RFC3339Nano), e.ID, e.Data, e.Tags)
}

func showAll(es []ts.Event) string {
	var b bytes.Buffer
	for i, e := range es {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(show(e))
	}
	return "[" + b.String() + "]"
}

// wantEvents fails unless got equals want in order.
func wantEvents(t *testing.T, what string, got, want []ts.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d\n got: %s\nwant: %s", what, len(got), len(want), showAll(got), showAll(want))
	}
	for i := range got {
		if !eventsEqual(got[i], want[i]) {
			t.Fatalf("%s: event %d = %s, want %s\n got: %s\nwant: %s", what, i, show(got[i]), show(want[i]), showAll(got), showAll(want))
		}
	}
}

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func testRoundTrip(t *testing.T, c *client) {
	in := []ts.Event{
		{Series: "s", Time: c.at(123456789 * time.Nanosecond), ID: "e-1", Data: json.RawMessage(`{"a":[1,2.5,"x"],"b":{"c":null,"d":true}}`),
			Tags: map[string]string{"host": "h1", "unicode": "zürich ✓", "empty": ""}},
		{Series: "s", Time: c.at(time.Second + 1), Data: json.RawMessage(`"a string with <html> & \"quotes\""`)},
		{Series: "s", Time: c.at(2 * time.Second).In(time.FixedZone("UTC+3", 3*3600)), Data: json.RawMessage(`[ 1, 2 ]`)},
		{Series: "s", Time: c.at(3*time.Second + 999999999), Data: json.RawMessage(`-12.5e3`)},
		{Series: "s", Time: c.at(4 * time.Second), Data: nil}, // null
	}
	c.mustAppend(in...)
	p := c.query(ts.QueryArgs{Series: "s"})
	wantEvents(t, "Query after Append", p.Events, in)
	if p.NextCursor != "" {
		t.Errorf("Query of all events returned a next cursor %q", p.NextCursor)
	}
	for i, e := range p.Events {
		if e.Time.Location() != time.UTC {
			t.Errorf("event %d: time in %v, want UTC", i, e.Time.Location())
		}
		if e.Cursor == "" {
			t.Errorf("event %d: no Cursor", i)
		}
	}
	if string(p.Events[4].Data) != "null" {
		t.Errorf("empty data came back as %q, want null", p.Events[4].Data)
	}
	if a, d := c.append(); a != 0 || d != 0 {
		t.Errorf("Append of no events = %d, %d; want 0, 0", a, d)
	}
}

func testOrder(t *testing.T, c *client) {
	// Appended out of time order, with ties at +5s.
	in := []ts.Event{
		c.ev("s", 5*time.Second, 0),
		c.ev("s", -30*time.Second, 1),
		c.ev("s", 5*time.Second, 2),
		c.ev("s", 40*time.Second, 3),
		c.ev("s", 0, 4),
		c.ev("s", 5*time.Second, 5),
		c.ev("s", 5*time.Second+1, 6),
	}
	c.mustAppend(in[:3]...)
	c.mustAppend(in[3])
	c.mustAppend(in[4:]...)
	asc := []ts.Event{in[1], in[4], in[0], in[2], in[5], in[6], in[3]}
	wantEvents(t, "ascending query", c.query(ts.QueryArgs{Series: "s"}).Events, asc)
	desc := slices.Clone(asc)
	slices.Reverse(desc)
	wantEvents(t, "descending query", c.query(ts.QueryArgs{Series: "s", Desc: true}).Events, desc)
}

// sortedEvents makes n events of series s with times spread over ±50s,
// several sharing a time, appended in a shuffled time order, and returns
// them in ascending (time, append) order.
func (c *client) sortedEvents(s string, n int) []ts.Event {
	c.t.Helper()
	type pos struct {
		e   ts.Event
		idx int
	}
	var evs []pos
	var batch []ts.Event
	for i := range n {
		// i*37 mod 101 shuffles; /3 makes ties.
		d := time.Duration((i*37)%101/3-17) * 3 * time.Second
		e := c.ev(s, d, i)
		evs = append(evs, pos{e, i})
		batch = append(batch, e)
		if len(batch) == 10 {
			c.mustAppend(batch...)
			batch = nil
		}
	}
	if len(batch) > 0 {
		c.mustAppend(batch...)
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].e.Time.Before(evs[b].e.Time) })
	out := make([]ts.Event, n)
	for i, p := range evs {
		out[i] = p.e
	}
	return out
}

// between filters sorted events to start <= time < end.
func between(evs []ts.Event, start, end time.Time) []ts.Event {
	var out []ts.Event
	for _, e := range evs {
		if (start.IsZero() || !e.Time.Before(start)) && (end.IsZero() || e.Time.Before(end)) {
			out = append(out, e)
		}
	}
	return out
}

func reversed(evs []ts.Event) []ts.Event {
	out := slices.Clone(evs)
	slices.Reverse(out)
	return out
}

func testBounds(t *testing.T, c *client) {
	all := c.sortedEvents("s", 30)
	mid := all[10].Time // several events share it
	for _, tc := range []struct {
		name       string
		start, end time.Time
	}{
		{"open", time.Time{}, time.Time{}},
		{"start only", mid, time.Time{}},
		{"end only", time.Time{}, mid},
		{"start and end", all[3].Time, all[20].Time},
		{"start equals end", mid, mid},
		{"one nanosecond", mid, mid.Add(1)},
		{"before all", c.at(-time.Hour), c.at(-time.Hour + time.Minute)},
		{"after all", c.at(time.Hour), time.Time{}},
	} {
		want := between(all, tc.start, tc.end)
		q := ts.QueryArgs{Series: "s", Start: tc.start, End: tc.end, Limit: 1000}
		wantEvents(t, tc.name+" ascending", c.query(q).Events, want)
		q.Desc = true
		wantEvents(t, tc.name+" descending", c.query(q).Events, reversed(want))
	}
	_, err := c.s.Query(c.ctx, c.ns, ts.QueryArgs{Series: "s", Start: mid, End: mid.Add(-1)})
	wantErr(t, "Query with end before start", err, ts.ErrInvalidArgument)
}

func testPaging(t *testing.T, c *client) {
	all := c.sortedEvents("s", 57)
	for _, tc := range []struct {
		limit      int
		start, end time.Time
	}{
		{1, time.Time{}, time.Time{}},
		{5, time.Time{}, time.Time{}},
		{7, all[5].Time, all[50].Time},
		{56, time.Time{}, time.Time{}},
		{57, time.Time{}, time.Time{}},
		{0, time.Time{}, time.Time{}}, // the default limit
	} {
		want := between(all, tc.start, tc.end)
		q := ts.QueryArgs{Series: "s", Start: tc.start, End: tc.end, Limit: tc.limit}
		wantEvents(t, fmt.Sprintf("ascending pages of %d", tc.limit), c.queryAll(q), want)
		q.Desc = true
		wantEvents(t, fmt.Sprintf("descending pages of %d", tc.limit), c.queryAll(q), reversed(want))
	}
	// A full last page has no next cursor when nothing follows.
	if p := c.query(ts.QueryArgs{Series: "s", Limit: 57}); p.NextCursor != "" {
		t.Errorf("a page holding every event has next cursor %q", p.NextCursor)
	}
	// Events appended after a page was read are found by the next page
	// when they sort after it.
	p := c.query(ts.QueryArgs{Series: "s", Limit: 10})
	late := c.ev("s", 55*time.Second, 1000)
	c.mustAppend(late)
	rest := c.queryAll(ts.QueryArgs{Series: "s", Limit: 10, Cursor: p.NextCursor})
	if len(rest) == 0 || !eventsEqual(rest[len(rest)-1], late) {
		t.Errorf("an event appended between pages at the end of the range was not returned last: %s", showAll(rest))
	}
}

func (c *client) count(series string) int {
	c.t.Helper()
	return len(c.queryAll(ts.QueryArgs{Series: series, Limit: ts.MaxLimit}))
}

func testIdempotency(t *testing.T, c *client) {
	e := c.ev("s", 0, 1)
	e.ID = "order-17"
	if a, d := c.append(e); a != 1 || d != 0 {
		t.Fatalf("first Append = %d appended, %d duplicates; want 1, 0", a, d)
	}
	again := e
	again.Data = json.RawMessage(`{"changed":true}`)
	again.Time = c.at(time.Second)
	if a, d := c.append(again); a != 0 || d != 1 {
		t.Fatalf("re-Append of the same (series, id) = %d appended, %d duplicates; want 0, 1", a, d)
	}
	other := e
	other.Series = "other"
	if a, d := c.append(other); a != 1 || d != 0 {
		t.Fatalf("Append of the same id in another series = %d appended, %d duplicates; want 1, 0", a, d)
	}
	wantEvents(t, "after a duplicate", c.query(ts.QueryArgs{Series: "s"}).Events, []ts.Event{e})
}

func testIdempotencyInBatch(t *testing.T, c *client) {
	a1 := c.ev("s", 0, 1)
	a1.ID = "a"
	a2 := c.ev("s", time.Second, 2)
	a2.ID = "a"
	b := c.ev("s", 2*time.Second, 3)
	b.ID = "b"
	if a, d := c.append(a1, a2, b, b); a != 2 || d != 2 {
		t.Fatalf("Append(a, a, b, b) = %d appended, %d duplicates; want 2, 2", a, d)
	}
	wantEvents(t, "after a batch with duplicates", c.query(ts.QueryArgs{Series: "s"}).Events, []ts.Event{a1, b})
}

func testIdempotencyRace(t *testing.T, c *client) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended, dups := 0, 0
	for i := range 8 {
		wg.Go(func() {
			e := c.ev("s", time.Duration(i)*time.Millisecond, i)
			e.ID = "same"
			a, d, err := c.s.Append(c.ctx, c.ns, []ts.Event{e})
			if err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			mu.Lock()
			appended, dups = appended+a, dups+d
			mu.Unlock()
		})
	}
	wg.Wait()
	if appended != 1 || dups != 7 {
		t.Fatalf("8 concurrent appends of one id: %d appended, %d duplicates; want 1, 7", appended, dups)
	}
	if n := c.count("s"); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}

func testNoID(t *testing.T, c *client) {
	e := c.ev("s", 0, 1)
	c.mustAppend(e, e)
	c.mustAppend(e)
	if n := c.count("s"); n != 3 {
		t.Fatalf("three appends of an event without id stored %d events, want 3", n)
	}
}

func testSeriesIsolation(t *testing.T, c *client) {
	a := c.ev("a", 0, 1)
	b := c.ev("b", 0, 2)
	prefix := c.ev("a.b", 0, 3) // a series whose name extends another's
	slash := c.ev("a/b", 0, 4)
	c.mustAppend(a, b, prefix, slash)
	for _, e := range []ts.Event{a, b, prefix, slash} {
		wantEvents(t, "series "+e.Series, c.query(ts.QueryArgs{Series: e.Series}).Events, []ts.Event{e})
	}
	tb := c.tail(ts.TailArgs{Series: "b"})
	c.mustAppend(c.ev("a", time.Second, 5))
	if p := c.tail(ts.TailArgs{Series: "b", After: tb.NextCursor}); len(p.Events) != 0 {
		t.Fatalf("tail of b returned events of another series: %s", showAll(p.Events))
	}
}

func testNamespaceIsolation(t *testing.T, c *client) {
	other := Namespace(t)
	c.ensure(other, ts.NamespaceOptions{})
	mine, theirs := c.ev("s", 0, 1), c.ev("s", time.Second, 2)
	c.mustAppend(mine)
	if a, _ := c.appendTo(other, theirs); a != 1 {
		t.Fatalf("Append in the other namespace stored %d events", a)
	}
	// The same id in two namespaces is two events.
	idA, idB := c.ev("s", 2*time.Second, 3), c.ev("s", 2*time.Second, 3)
	idA.ID, idB.ID = "x", "x"
	if a, d := c.append(idA); a != 1 || d != 0 {
		t.Fatalf("Append of id x: %d, %d", a, d)
	}
	if a, d := c.appendTo(other, idB); a != 1 || d != 0 {
		t.Fatalf("Append of id x in another namespace = %d appended, %d duplicates; want 1, 0", a, d)
	}
	wantEvents(t, "own namespace", c.query(ts.QueryArgs{Series: "s"}).Events, []ts.Event{mine, idA})
	wantEvents(t, "other namespace", c.queryIn(other, ts.QueryArgs{Series: "s"}).Events, []ts.Event{theirs, idB})
}

func testUnknownNamespace(t *testing.T, c *client) {
	ns := Namespace(t)
	_, _, err := c.s.Append(c.ctx, ns, []ts.Event{c.ev("s", 0, 1)})
	wantErr(t, "Append to an unknown namespace", err, ts.ErrNotFound)
	_, err = c.s.Query(c.ctx, ns, ts.QueryArgs{Series: "s"})
	wantErr(t, "Query of an unknown namespace", err, ts.ErrNotFound)
	_, err = c.s.Tail(c.ctx, ns, ts.TailArgs{Series: "s"})
	wantErr(t, "Tail of an unknown namespace", err, ts.ErrNotFound)
	if err := c.s.DropNamespace(c.ctx, ns); err != nil {
		t.Fatalf("DropNamespace of an unknown namespace: %v", err)
	}
}

func testDrop(t *testing.T, c *client) {
	c.mustAppend(c.ev("s", 0, 1))
	if err := c.s.DropNamespace(c.ctx, c.ns); err != nil {
		t.Fatalf("DropNamespace: %v", err)
	}
	_, err := c.s.Query(c.ctx, c.ns, ts.QueryArgs{Series: "s"})
	wantErr(t, "Query after DropNamespace", err, ts.ErrNotFound)
	if err := c.s.EnsureNamespace(c.ctx, c.ns, ts.NamespaceOptions{}); err != nil {
		t.Fatalf("EnsureNamespace after drop: %v", err)
	}
	if n := c.count("s"); n != 0 {
		t.Fatalf("a dropped and re-created namespace has %d events, want 0", n)
	}
	e := c.ev("s", time.Second, 2)
	e.ID = "x"
	c.mustAppend(e)
}

func testEnsureTwice(t *testing.T, c *client) {
	c.mustAppend(c.ev("s", 0, 1))
	opts := ts.NamespaceOptions{Retention: 24 * time.Hour, DuplicateWindow: 10 * time.Minute, TimeWindow: 10 * time.Minute}
	for range 2 {
		if err := c.s.EnsureNamespace(c.ctx, c.ns, opts); err != nil {
			t.Fatalf("EnsureNamespace(%+v) of an existing namespace: %v", opts, err)
		}
	}
	if n := c.count("s"); n != 1 {
		t.Fatalf("after EnsureNamespace again the series has %d events, want 1", n)
	}
	err := c.s.EnsureNamespace(c.ctx, c.ns, ts.NamespaceOptions{Retention: -time.Second})
	wantErr(t, "EnsureNamespace with a negative retention", err, ts.ErrInvalidArgument)
	err = c.s.EnsureNamespace(c.ctx, "", ts.NamespaceOptions{})
	wantErr(t, "EnsureNamespace of an empty name", err, ts.ErrInvalidArgument)
}

func testTimeWindow(t *testing.T, c *client) {
	ns := Namespace(t)
	c.ensure(ns, ts.NamespaceOptions{TimeWindow: time.Minute})
	ok := ts.Event{Series: "s", Time: time.Now().Add(-30 * time.Second)}
	for _, d := range []time.Duration{-time.Hour, time.Hour} {
		late := ts.Event{Series: "s", Time: time.Now().Add(d)}
		_, _, err := c.s.Append(c.ctx, ns, []ts.Event{ok, late})
		wantErr(t, fmt.Sprintf("Append of an event %v from now with a 1m window", d), err, ts.ErrTimeOutOfWindow)
		wantErr(t, "ErrTimeOutOfWindow", err, ts.ErrInvalidArgument)
	}
	if n := len(c.queryIn(ns, ts.QueryArgs{Series: "s"}).Events); n != 0 {
		t.Fatalf("a rejected batch stored %d events", n)
	}
	if a, _ := c.appendTo(ns, ok); a != 1 {
		t.Fatalf("event inside the window was not stored")
	}
}

func testBadArguments(t *testing.T, c *client) {
	good := c.ev("s", 0, 1)
	for name, e := range map[string]ts.Event{
		"series with a space":  {Series: "a b", Time: good.Time},
		"series with a star":   {Series: "a*", Time: good.Time},
		"series with a dollar": {Series: "$x", Time: good.Time},
		"empty series":         {Series: "", Time: good.Time},
		"no time":              {Series: "s"},
		"invalid JSON data":    {Series: "s", Time: good.Time, Data: json.RawMessage(`{"a":`)},
		"id with a newline":    {Series: "s", Time: good.Time, ID: "a\nb"},
	} {
		_, _, err := c.s.Append(c.ctx, c.ns, []ts.Event{good, e})
		wantErr(t, "Append of an event with "+name, err, ts.ErrInvalidArgument)
	}
	for name, q := range map[string]ts.QueryArgs{
		"bad series":       {Series: "a b"},
		"negative limit":   {Series: "s", Limit: -1},
		"limit over max":   {Series: "s", Limit: ts.MaxLimit + 1},
		"end before start": {Series: "s", Start: good.Time, End: good.Time.Add(-time.Nanosecond)},
	} {
		_, err := c.s.Query(c.ctx, c.ns, q)
		wantErr(t, "Query with "+name, err, ts.ErrInvalidArgument)
	}
	for name, a := range map[string]ts.TailArgs{
		"bad series":     {Series: "a b"},
		"wait over max":  {Series: "s", Wait: ts.MaxWait + time.Second},
		"negative wait":  {Series: "s", Wait: -time.Second},
		"limit over max": {Series: "s", Limit: ts.MaxLimit + 1},
	} {
		_, err := c.s.Tail(c.ctx, c.ns, a)
		wantErr(t, "Tail with "+name, err, ts.ErrInvalidArgument)
	}
	if n := c.count("s"); n != 0 {
		t.Fatalf("rejected appends stored %d events", n)
	}
}

// otherDriver rewrites a cursor as if a driver of another kind had issued
// it: the format (package internal/cursor) keeps the driver id in its
// second byte. The SQL drivers (ids 1, 2 and their shared 5) accept each
// other's cursors, so theirs become NATS (3) cursors; NATS's become
// Kafka's (4) and Kafka's SQLite's.
func otherDriver(t *testing.T, c string) string {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 {
		t.Fatalf("cursor %q is not unpadded base64url", c)
	}
	foreign, ok := map[byte]byte{1: 3, 2: 3, 5: 3, 3: 4, 4: 1}[b[1]]
	if !ok {
		t.Fatalf("cursor %q has an unknown driver id %d", c, b[1])
	}
	b[1] = foreign
	return base64.RawURLEncoding.EncodeToString(b)
}

func testBadCursors(t *testing.T, c *client) {
	for i := range 5 {
		c.mustAppend(c.ev("s", time.Duration(i)*time.Second, i), c.ev("t", time.Duration(i)*time.Second, i))
	}
	asc := c.query(ts.QueryArgs{Series: "s", Limit: 2}).NextCursor
	desc := c.query(ts.QueryArgs{Series: "s", Limit: 2, Desc: true}).NextCursor
	tail := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	otherSeries := c.query(ts.QueryArgs{Series: "t", Limit: 2}).NextCursor
	other := Namespace(t)
	c.ensure(other, ts.NamespaceOptions{})
	c.appendTo(other, c.ev("s", 0, 1), c.ev("s", time.Second, 2))
	otherNS := c.queryIn(other, ts.QueryArgs{Series: "s", Limit: 1}).NextCursor
	otherNSTail, err := c.s.Tail(c.ctx, other, ts.TailArgs{Series: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if asc == "" || desc == "" || otherSeries == "" || otherNS == "" {
		t.Fatal("a query with more events than its limit returned no next cursor")
	}
	garbage := []string{"x", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "\x00\xff", "ZZZZ====", string(bytes.Repeat([]byte("A"), 5000)),
		asc[:len(asc)-1], asc + "A", otherDriver(t, asc)}
	for _, cur := range garbage {
		_, err := c.s.Query(c.ctx, c.ns, ts.QueryArgs{Series: "s", Cursor: cur})
		wantErr(t, fmt.Sprintf("Query with cursor %.40q", cur), err, ts.ErrInvalidCursor)
		_, err = c.s.Tail(c.ctx, c.ns, ts.TailArgs{Series: "s", After: cur})
		wantErr(t, fmt.Sprintf("Tail with cursor %.40q", cur), err, ts.ErrInvalidCursor)
	}
	_, err = c.s.Tail(c.ctx, c.ns, ts.TailArgs{Series: "s", After: otherDriver(t, tail)})
	wantErr(t, "Tail with a tail cursor of another driver", err, ts.ErrInvalidCursor)
	for name, q := range map[string]ts.QueryArgs{
		"an ascending cursor for a descending query": {Series: "s", Cursor: asc, Desc: true},
		"a descending cursor for an ascending query": {Series: "s", Cursor: desc},
		"a tail cursor":                      {Series: "s", Cursor: tail},
		"a cursor of another series":         {Series: "s", Cursor: otherSeries},
		"a cursor of another namespace":      {Series: "s", Cursor: otherNS},
		"a tail cursor of another namespace": {Series: "s", Cursor: otherNSTail.NextCursor},
	} {
		_, err := c.s.Query(c.ctx, c.ns, q)
		wantErr(t, "Query with "+name, err, ts.ErrInvalidCursor)
		wantErr(t, "ErrInvalidCursor", err, ts.ErrInvalidArgument)
	}
	for name, a := range map[string]ts.TailArgs{
		"a query cursor":                     {Series: "s", After: asc},
		"a tail cursor of another series":    {Series: "t", After: tail},
		"a tail cursor of another namespace": {Series: "s", After: otherNSTail.NextCursor},
	} {
		_, err := c.s.Tail(c.ctx, c.ns, a)
		wantErr(t, "Tail with "+name, err, ts.ErrInvalidCursor)
	}
}

func testTailFromEnd(t *testing.T, c *client) {
	c.mustAppend(c.ev("s", 0, 1), c.ev("s", time.Second, 2))
	start := time.Now()
	p := c.tail(ts.TailArgs{Series: "s"})
	if len(p.Events) != 0 {
		t.Fatalf("Tail without cursor returned events appended before it: %s", showAll(p.Events))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Tail with no wait took %v", d)
	}
	later := c.ev("s", -time.Second, 3) // an earlier time, appended later
	c.mustAppend(later)
	p = c.tail(ts.TailArgs{Series: "s", After: p.NextCursor})
	wantEvents(t, "Tail after the end cursor", p.Events, []ts.Event{later})
	// An empty series has an end too.
	p = c.tail(ts.TailArgs{Series: "empty"})
	e := c.ev("empty", 0, 4)
	c.mustAppend(e)
	wantEvents(t, "Tail of a series that was empty", c.tail(ts.TailArgs{Series: "empty", After: p.NextCursor}).Events, []ts.Event{e})
}

func testTailFromEndWaiting(t *testing.T, c *client) {
	c.mustAppend(c.ev("s", 0, 1))
	e := c.ev("s", time.Second, 2)
	done := make(chan ts.Page, 1)
	go func() {
		p, err := c.s.Tail(c.ctx, c.ns, ts.TailArgs{Series: "s", Wait: 10 * time.Second})
		if err != nil {
			t.Errorf("Tail: %v", err)
		}
		done <- p
	}()
	time.Sleep(300 * time.Millisecond) // let the tail find the end and wait
	c.mustAppend(e)
	select {
	case p := <-done:
		wantEvents(t, "Tail without cursor waiting", p.Events, []ts.Event{e})
	case <-time.After(8 * time.Second):
		t.Fatal("Tail without cursor did not return 8s after an append")
	}
}

func testTailWakes(t *testing.T, c *client) {
	p := c.tail(ts.TailArgs{Series: "s"})
	e := c.ev("s", 0, 1)
	const wait = 20 * time.Second
	type result struct {
		p   ts.Page
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		p, err := c.s.Tail(c.ctx, c.ns, ts.TailArgs{Series: "s", After: p.NextCursor, Wait: wait})
		done <- result{p, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	appended := time.Now()
	c.mustAppend(e)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Tail: %v", r.err)
		}
		wantEvents(t, "woken tail", r.p.Events, []ts.Event{e})
		// Notification, not a poll: well under the slow fallback poll.
		if d := r.at.Sub(appended); d > 900*time.Millisecond {
			t.Errorf("Tail returned %v after the append; want well under a second", d)
		}
	case <-time.After(wait / 2):
		t.Fatalf("Tail did not return within %v of an append", wait/2)
	}
}

func testTailTimeout(t *testing.T, c *client) {
	p := c.tail(ts.TailArgs{Series: "s"})
	const wait = 400 * time.Millisecond
	start := time.Now()
	q := c.tail(ts.TailArgs{Series: "s", After: p.NextCursor, Wait: wait})
	d := time.Since(start)
	if len(q.Events) != 0 {
		t.Fatalf("Tail of an idle series returned %s", showAll(q.Events))
	}
	if d < wait-50*time.Millisecond || d > wait+3*time.Second {
		t.Errorf("Tail with wait %v returned after %v", wait, d)
	}
	e := c.ev("s", 0, 1)
	c.mustAppend(e)
	wantEvents(t, "Tail with the cursor of a timed-out tail", c.tail(ts.TailArgs{Series: "s", After: q.NextCursor}).Events, []ts.Event{e})
}

func testTailPaging(t *testing.T, c *client) {
	start := c.tail(ts.TailArgs{Series: "s"})
	var in []ts.Event
	for i := range 10 {
		// Times go backwards: tail order is append order.
		in = append(in, c.ev("s", -time.Duration(i)*time.Second, i))
	}
	c.mustAppend(in[:4]...)
	c.mustAppend(in[4:]...)
	var got []ts.Event
	cur := start.NextCursor
	for range 4 {
		p := c.tail(ts.TailArgs{Series: "s", After: cur, Limit: 3})
		if len(p.Events) > 3 {
			t.Fatalf("Tail with limit 3 returned %d events", len(p.Events))
		}
		got = append(got, p.Events...)
		cur = p.NextCursor
	}
	wantEvents(t, "tail pages", got, in)
	if p := c.tail(ts.TailArgs{Series: "s", After: cur}); len(p.Events) != 0 {
		t.Fatalf("Tail past the last event returned %s", showAll(p.Events))
	}
}

func testTailFromEventCursor(t *testing.T, c *client) {
	in := []ts.Event{c.ev("s", 0, 0), c.ev("s", time.Second, 1), c.ev("s", 2*time.Second, 2)}
	c.mustAppend(in...)
	q := c.query(ts.QueryArgs{Series: "s"})
	wantEvents(t, "query", q.Events, in)
	wantEvents(t, "Tail after the first event's cursor", c.tail(ts.TailArgs{Series: "s", After: q.Events[0].Cursor}).Events, in[1:])
	p := c.tail(ts.TailArgs{Series: "s", After: q.Events[2].Cursor})
	if len(p.Events) != 0 {
		t.Fatalf("Tail after the last event's cursor returned %s", showAll(p.Events))
	}
}

func testTailConcurrent(t *testing.T, c *client) {
	const writers, perWriter = 8, 25
	cur := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < perWriter; {
				n := min(1+(w+i)%3, perWriter-i) // batches of 1..3
				var batch []ts.Event
				for j := range n {
					e := c.ev("s", time.Duration(w*1000+i+j)*time.Millisecond, w*1000+i+j)
					e.ID = fmt.Sprintf("w%d-%d", w, i+j)
					batch = append(batch, e)
				}
				if _, _, err := c.s.Append(c.ctx, c.ns, batch); err != nil {
					t.Errorf("writer %d: Append: %v", w, err)
					return
				}
				i += n
			}
		})
	}
	seen := map[string]int{}
	next := make([]int, writers) // the next index expected from each writer
	deadline := time.Now().Add(20 * time.Second)
	total := 0
	for total < writers*perWriter && time.Now().Before(deadline) {
		p := c.tail(ts.TailArgs{Series: "s", After: cur, Limit: 7, Wait: 2 * time.Second})
		for _, e := range p.Events {
			seen[e.ID]++
			if seen[e.ID] > 1 {
				t.Fatalf("event %s seen twice", e.ID)
			}
			var w, i int
			if _, err := fmt.Sscanf(e.ID, "w%d-%d", &w, &i); err != nil || w < 0 || w >= writers {
				t.Fatalf("unexpected event id %q", e.ID)
			}
			if i != next[w] {
				t.Fatalf("event %s arrived when w%d-%d was expected: lost or reordered", e.ID, w, next[w])
			}
			next[w]++
			total++
		}
		cur = p.NextCursor
	}
	wg.Wait()
	if total != writers*perWriter {
		t.Fatalf("tails saw %d of %d events (next per writer %v)", total, writers*perWriter, next)
	}
	if p := c.tail(ts.TailArgs{Series: "s", After: cur}); len(p.Events) != 0 {
		t.Fatalf("a tail after all events returned %s", showAll(p.Events))
	}
}

func testCancelled(t *testing.T, c *client) {
	c.mustAppend(c.ev("s", 0, 1))
	cursor := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	cancelled, cancel := context.WithCancel(c.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(c.ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{
		{cancelled, context.Canceled},
		{expired, context.DeadlineExceeded},
	} {
		calls := []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"Append", func(ctx context.Context) error {
				_, _, err := c.s.Append(ctx, c.ns, []ts.Event{c.ev("s", time.Second, 2)})
				return err
			}},
			{"Query", func(ctx context.Context) error { _, err := c.s.Query(ctx, c.ns, ts.QueryArgs{Series: "s"}); return err }},
			{"Tail", func(ctx context.Context) error {
				_, err := c.s.Tail(ctx, c.ns, ts.TailArgs{Series: "s", After: cursor, Wait: time.Second})
				return err
			}},
			{"Tail without cursor", func(ctx context.Context) error { _, err := c.s.Tail(ctx, c.ns, ts.TailArgs{Series: "s"}); return err }},
		}
		for _, call := range calls {
			err := call.call(tc.ctx)
			if !errors.Is(err, ts.ErrUnavailable) || !errors.Is(err, tc.want) {
				t.Errorf("%s with %v context: error = %v, want one matching both ts.ErrUnavailable and %v", call.name, tc.want, err, tc.want)
			}
		}
	}
	if n := c.count("s"); n != 1 {
		t.Fatalf("appends with a dead context stored events: %d events, want 1", n)
	}
}

func testTailCancelled(t *testing.T, c *client) {
	cursor := c.tail(ts.TailArgs{Series: "s"}).NextCursor
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.s.Tail(ctx, c.ns, ts.TailArgs{Series: "s", After: cursor, Wait: 20 * time.Second})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ts.ErrUnavailable) {
			t.Fatalf("Tail cancelled while waiting: %v, want ts.ErrUnavailable and context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Tail did not return within 3s of its context being cancelled")
	}
}
