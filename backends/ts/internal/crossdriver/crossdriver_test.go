package crossdriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/postgres"
	"github.com/prism-gw/prism/backends/ts/sqlite"
	"github.com/prism-gw/prism/backends/ts/tstest"
	"github.com/prism-gw/prism/internal/pgtest"
)

// opener opens a fresh, empty store of one driver, closed when t ends.
type opener struct {
	name string
	open func(t *testing.T) ts.Replica
}

var (
	openSQLite = opener{"sqlite", func(t *testing.T) ts.Replica {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ts.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}
	openPostgres = opener{"postgres", func(t *testing.T) ts.Replica {
		s, err := postgres.Open(t.Context(), pgtest.Schema(t, "prism_tscross_"), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}
)

// series of the tests' events; appended interleaved, so sqlite's positions
// (global to its file) differ from postgres's (per series).
var series = []string{"a", "b"}

// fill appends 16 events to ns in batches of 4: times out of append order,
// half with ids.
func fill(t *testing.T, s ts.Store, ns string) {
	t.Helper()
	base := time.Now().UTC().Truncate(time.Second)
	var batch []ts.Event
	for i := range 16 {
		e := ts.Event{Series: series[i%2], Time: base.Add(time.Duration((i*5)%7) * time.Second),
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), Tags: map[string]string{"i": fmt.Sprint(i)}}
		if i%2 == 0 {
			e.ID = fmt.Sprintf("id-%d", i)
		}
		if batch = append(batch, e); len(batch) == 4 {
			if _, _, err := s.Append(t.Context(), ns, batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
}

// backfill copies every event of ns from src to dst page by page, as a
// migration's backfill does, and returns how many copies were moved.
func backfill(t *testing.T, src, dst ts.Replica, ns string) (stored, moved int) {
	t.Helper()
	after := ""
	for {
		events, next, err := src.Export(t.Context(), ns, ts.ExportArgs{After: after, Limit: 5})
		if err != nil {
			t.Fatalf("Export: %v", err)
		}
		s, m, err := dst.Copy(t.Context(), ns, events)
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		stored, moved = stored+s, moved+m
		if next == "" {
			return stored, moved
		}
		after = next
	}
}

func query(t *testing.T, s ts.Store, ns string, q ts.QueryArgs) ts.Page {
	t.Helper()
	p, err := s.Query(t.Context(), ns, q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return p
}

func tail(t *testing.T, s ts.Store, ns string, a ts.TailArgs) ts.Page {
	t.Helper()
	p, err := s.Tail(t.Context(), ns, a)
	if err != nil {
		t.Fatalf("Tail(%+v): %v", a, err)
	}
	return p
}

// samePage fails unless two stores answered alike: the same events at the
// same positions with the same cursors, and the same next cursor.
func samePage(t *testing.T, what string, got, want ts.Page) {
	t.Helper()
	if len(got.Events) != len(want.Events) || got.NextCursor != want.NextCursor {
		t.Fatalf("%s: %d events, next %q; want %d events, next %q", what, len(got.Events), got.NextCursor, len(want.Events), want.NextCursor)
	}
	for i, g := range got.Events {
		w := want.Events[i]
		if g.Series != w.Series || !g.Time.Equal(w.Time) || g.ID != w.ID || string(g.Data) != string(w.Data) ||
			!maps.Equal(g.Tags, w.Tags) || g.Seq != w.Seq || g.Cursor != w.Cursor {
			t.Fatalf("%s: event %d = %+v, want %+v", what, i, g, w)
		}
	}
}

// A namespace backfilled from one store into another answers every cursor
// the first one issued (query pages both ways, tails from any event and
// from the end) with the same events, and after the handover (Seal, then
// Unseal at its floor) the new store's appends follow the old end cursor.
// Postgres positions are per series, so a copy into sqlite, whose
// positions are global, moves the copies whose position another series
// holds: that direction keeps the events but not the cursors.
func TestBackfilledNamespaceAnswersTheSourcesCursors(t *testing.T) {
	for _, tc := range []struct {
		src, dst opener
		exact    bool
	}{
		{openSQLite, openPostgres, true},
		{openPostgres, openPostgres, true},
		{openPostgres, openSQLite, false},
	} {
		t.Run(tc.src.name+"_to_"+tc.dst.name, func(t *testing.T) {
			src, dst := tc.src.open(t), tc.dst.open(t)
			ns := tstest.Namespace(t)
			for _, s := range []ts.Store{src, dst} {
				if err := s.EnsureNamespace(t.Context(), ns, ts.NamespaceOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			fill(t, src, ns)
			ends := map[string]string{}
			for _, s := range series {
				ends[s] = tail(t, src, ns, ts.TailArgs{Series: s}).NextCursor
			}
			stored, moved := backfill(t, src, dst, ns)
			if stored != 16 {
				t.Fatalf("backfill stored %d of 16 events", stored)
			}
			if tc.exact != (moved == 0) {
				t.Fatalf("backfill moved %d copies; want none: %v", moved, tc.exact)
			}
			if again, _ := backfill(t, src, dst, ns); again != 0 {
				t.Fatalf("a second backfill stored %d events again", again)
			}
			for _, s := range series {
				all := query(t, src, ns, ts.QueryArgs{Series: s})
				if !tc.exact {
					got := query(t, dst, ns, ts.QueryArgs{Series: s})
					if len(got.Events) != len(all.Events) {
						t.Fatalf("%s: %d events copied, want %d", s, len(got.Events), len(all.Events))
					}
					continue
				}
				samePage(t, s+": query", query(t, dst, ns, ts.QueryArgs{Series: s}), all)
				for _, desc := range []bool{false, true} {
					q := ts.QueryArgs{Series: s, Limit: 3, Desc: desc}
					for page := 0; ; page++ {
						want := query(t, src, ns, q)
						samePage(t, fmt.Sprintf("%s: page %d (desc %v) from the source's cursor", s, page, desc), query(t, dst, ns, q), want)
						if want.NextCursor == "" {
							break
						}
						q.Cursor = want.NextCursor
					}
				}
				for i, e := range all.Events {
					a := ts.TailArgs{Series: s, After: e.Cursor}
					samePage(t, fmt.Sprintf("%s: tail after event %d's cursor of the source", s, i), tail(t, dst, ns, a), tail(t, src, ns, a))
				}
			}

			// The handover: the source stops, the target positions above it.
			floor, err := src.Seal(t.Context(), ns)
			if err != nil {
				t.Fatal(err)
			}
			if err := dst.Unseal(t.Context(), ns, floor); err != nil {
				t.Fatal(err)
			}
			if _, _, err := src.Append(t.Context(), ns, []ts.Event{{Series: "a", Time: time.Now()}}); !errors.Is(err, ts.ErrSealed) {
				t.Fatalf("Append to the sealed source: %v, want ts.ErrSealed", err)
			}
			later, _, err := dst.AppendEvents(t.Context(), ns, []ts.Event{{Series: "a", Time: time.Now(), ID: "after"}})
			if err != nil || len(later) != 1 || later[0].Seq <= floor {
				t.Fatalf("AppendEvents to the target after the handover = %+v, %v; want one event above the floor %d", later, err, floor)
			}
			if p := tail(t, src, ns, ts.TailArgs{Series: "a", After: ends["a"]}); len(p.Events) != 0 {
				t.Fatalf("the sealed source's tail returned %d events past its end", len(p.Events))
			}
			if tc.exact {
				p := tail(t, dst, ns, ts.TailArgs{Series: "a", After: ends["a"]})
				samePage(t, "the target's tail from the source's end cursor", p, ts.Page{Events: later, NextCursor: later[0].Cursor})
			}
		})
	}
}

// Cursors issued before the SQL drivers shared one format carry the
// driver's own id; both drivers still read them (and each other's, as
// their positions agree once a namespace was copied). The log drivers'
// cursors stay foreign.
func TestCursorsOfEveryFormatAreRead(t *testing.T) {
	for _, o := range []opener{openSQLite, openPostgres} {
		t.Run(o.name, func(t *testing.T) {
			s := o.open(t)
			ns := tstest.Namespace(t)
			if err := s.EnsureNamespace(t.Context(), ns, ts.NamespaceOptions{}); err != nil {
				t.Fatal(err)
			}
			fill(t, s, ns)
			tag := cursor.TagOf(ns, "a")
			all := query(t, s, ns, ts.QueryArgs{Series: "a"}).Events
			first := query(t, s, ns, ts.QueryArgs{Series: "a", Limit: 2})
			if _, err := cursor.Decode(first.NextCursor, cursor.SQL, cursor.Asc, tag, 2); err != nil {
				t.Fatalf("a query cursor is not of the shared SQL format: %v", err)
			}
			if _, err := cursor.Decode(all[0].Cursor, cursor.SQL, cursor.Tail, tag, 1); err != nil {
				t.Fatalf("a tail cursor is not of the shared SQL format: %v", err)
			}
			wantQuery := query(t, s, ns, ts.QueryArgs{Series: "a", Limit: 2, Cursor: first.NextCursor})
			wantTail := tail(t, s, ns, ts.TailArgs{Series: "a", After: all[1].Cursor})
			e := first.Events[1]
			for _, d := range []cursor.Driver{cursor.SQLite, cursor.Postgres, cursor.NATS, cursor.Kafka} {
				qc := cursor.Encode(d, cursor.Asc, tag, e.Time.UnixNano(), e.Seq)
				tc := cursor.Encode(d, cursor.Tail, tag, all[1].Seq)
				q, qerr := s.Query(t.Context(), ns, ts.QueryArgs{Series: "a", Limit: 2, Cursor: qc})
				p, terr := s.Tail(t.Context(), ns, ts.TailArgs{Series: "a", After: tc})
				seq, serr := s.CursorSeq(ns, "a", tc)
				if d == cursor.NATS || d == cursor.Kafka {
					for _, err := range []error{qerr, terr, serr} {
						if !errors.Is(err, ts.ErrInvalidCursor) {
							t.Errorf("a cursor of driver %d: %v, want ts.ErrInvalidCursor", d, err)
						}
					}
					continue
				}
				if qerr != nil || terr != nil || serr != nil {
					t.Fatalf("legacy cursors of driver %d: query %v, tail %v, CursorSeq %v", d, qerr, terr, serr)
				}
				samePage(t, fmt.Sprintf("query from a legacy cursor of driver %d", d), q, wantQuery)
				samePage(t, fmt.Sprintf("tail from a legacy cursor of driver %d", d), p, wantTail)
				if seq != all[1].Seq {
					t.Errorf("CursorSeq of a legacy cursor of driver %d = %d, want %d", d, seq, all[1].Seq)
				}
			}
		})
	}
}
