package tstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// exportTests check ts.Exporter, what a migration's backfill reads. They run
// when the store under test implements it.
var exportTests = []struct {
	name string
	fn   func(t *testing.T, c *client, x ts.Exporter)
}{
	{"ExportPagesCoverEveryEventOnceInSeriesThenAppendOrder", testExportPaging},
	{"ExportResumesFromASavedPositionWhileAppendsGoOn", testExportResume},
	{"ExportAndCountHonourTheTimeRange", testExportRange},
	{"ExportRefusesForeignPositionsAndBadArguments", testExportBadArguments},
	{"ExportOfAnUnknownNamespaceIsNotFound", testExportUnknownNamespace},
}

// exportAll pages through Export with limit and returns every event.
func (c *client) exportAll(x ts.Exporter, q ts.ExportArgs) []ts.Event {
	c.t.Helper()
	var all []ts.Event
	for pages := 0; ; pages++ {
		events, next, err := x.Export(c.ctx, c.ns, q)
		if err != nil {
			c.t.Fatalf("Export(%+v): %v", q, err)
		}
		if q.Limit > 0 && len(events) > q.Limit {
			c.t.Fatalf("Export(limit %d) returned %d events", q.Limit, len(events))
		}
		all = append(all, events...)
		if next == "" {
			return all
		}
		if pages > 10_000 {
			c.t.Fatal("Export never ends")
		}
		q.After = next
	}
}

// key names an event by what a copy must keep.
func key(e ts.Event) string {
	return fmt.Sprintf("%s|%s|%s|%s", e.Series, e.Time.UTC().Format(time.RFC3339Nano), e.ID, compactJSON(e.Data))
}

func compactJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func testExportPaging(t *testing.T, c *client, x ts.Exporter) {
	// Three series, appended interleaved, with and without IDs, times out
	// of order: Export lists series by name, each in append order.
	var want []ts.Event
	bySeries := map[string][]ts.Event{}
	for i := range 23 {
		series := []string{"b/2", "a", "c:3"}[i%3]
		e := c.ev(series, time.Duration(23-i)*time.Second, i)
		if i%2 == 0 {
			e.ID = fmt.Sprintf("id-%d", i)
		}
		e.Tags = map[string]string{"i": fmt.Sprint(i)}
		c.mustAppend(e)
		bySeries[series] = append(bySeries[series], e)
	}
	for _, s := range []string{"a", "b/2", "c:3"} {
		want = append(want, bySeries[s]...)
	}
	for _, limit := range []int{1, 4, 23, 0} {
		got := c.exportAll(x, ts.ExportArgs{Limit: limit})
		if len(got) != len(want) {
			t.Fatalf("limit %d: exported %d events, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if key(got[i]) != key(want[i]) || got[i].Tags["i"] != want[i].Tags["i"] || got[i].Cursor == "" {
				t.Fatalf("limit %d: event %d = %s %v (cursor %q), want %s %v", limit, i, key(got[i]), got[i].Tags, got[i].Cursor, key(want[i]), want[i].Tags)
			}
		}
	}
	n, err := x.Count(c.ctx, c.ns, time.Time{}, time.Time{})
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
	}
}

func testExportResume(t *testing.T, c *client, x ts.Exporter) {
	for i := range 10 {
		c.mustAppend(c.ev("s", time.Duration(i)*time.Millisecond, i))
	}
	first, next, err := x.Export(c.ctx, c.ns, ts.ExportArgs{Limit: 4})
	if err != nil || len(first) != 4 || next == "" {
		t.Fatalf("first page: %d events, next %q, %v", len(first), next, err)
	}
	// Appends after the saved position, in this series and in one that
	// sorts before it: a resumed export sees the later ones of "s" only.
	c.mustAppend(c.ev("s", -time.Hour, 10), c.ev("r", 0, 11))
	rest := c.exportAll(x, ts.ExportArgs{After: next, Limit: 3})
	if len(rest) != 7 {
		t.Fatalf("resumed export listed %d events, want the 6 left of s and the one appended after", len(rest))
	}
	for i, e := range rest {
		if e.Series != "s" || compactJSON(e.Data) != fmt.Sprintf(`{"n":%d}`, i+4) {
			t.Fatalf("resumed event %d = %s, want s with n %d", i, key(e), i+4)
		}
	}
}

func testExportRange(t *testing.T, c *client, x ts.Exporter) {
	for i := range 10 {
		c.mustAppend(c.ev([]string{"x", "y"}[i%2], time.Duration(i)*time.Second, i))
	}
	start, end := c.at(3*time.Second), c.at(7*time.Second)
	got := c.exportAll(x, ts.ExportArgs{Start: start, End: end, Limit: 2})
	if len(got) != 4 {
		t.Fatalf("export of [3s, 7s) listed %d events, want 4", len(got))
	}
	for _, e := range got {
		if e.Time.Before(start) || !e.Time.Before(end) {
			t.Fatalf("export of [3s, 7s) listed an event at %s", e.Time)
		}
	}
	if n, err := x.Count(c.ctx, c.ns, start, end); err != nil || n != 4 {
		t.Fatalf("Count([3s, 7s)) = %d, %v; want 4", n, err)
	}
	if n, err := x.Count(c.ctx, c.ns, start, time.Time{}); err != nil || n != 7 {
		t.Fatalf("Count([3s, ∞)) = %d, %v; want 7", n, err)
	}
}

func testExportBadArguments(t *testing.T, c *client, x ts.Exporter) {
	c.mustAppend(c.ev("s", 0, 1))
	for _, q := range []ts.ExportArgs{
		{After: "garbage"},
		{After: "s@"},
		{After: "s@-1"},
		{After: "s@01"},
		{After: "@5"},
		{After: "bad series@5"},
		{Limit: -1},
		{Limit: ts.MaxLimit + 1},
		{Start: c.at(time.Second), End: c.at(0)},
	} {
		if _, _, err := x.Export(c.ctx, c.ns, q); !errors.Is(err, ts.ErrInvalidArgument) {
			t.Errorf("Export(%+v) = %v, want ErrInvalidArgument", q, err)
		}
	}
}

func testExportUnknownNamespace(t *testing.T, c *client, x ts.Exporter) {
	other := Namespace(t)
	if _, _, err := x.Export(c.ctx, other, ts.ExportArgs{}); !errors.Is(err, ts.ErrNotFound) {
		t.Fatalf("Export of an unknown namespace = %v, want ErrNotFound", err)
	}
	if _, err := x.Count(c.ctx, other, time.Time{}, time.Time{}); !errors.Is(err, ts.ErrNotFound) {
		t.Fatalf("Count of an unknown namespace = %v, want ErrNotFound", err)
	}
	ctx, cancel := contextCancelled(c)
	defer cancel()
	if _, _, err := x.Export(ctx, c.ns, ts.ExportArgs{}); err == nil {
		t.Fatal("Export with a cancelled context succeeded")
	}
}
