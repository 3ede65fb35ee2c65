package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/tstest"
)

// openTemp opens a store on a fresh file that is closed when t ends.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "ts.db"), opts)
}

func openPath(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	s := openTemp(t, Options{})
	tstest.Run(t, func(t *testing.T) ts.Store { return s })
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		path    string
		opts    Options
		wantErr bool
	}{
		{dsn: "/var/lib/prism/ts.db", path: "/var/lib/prism/ts.db"},
		{dsn: "ts.db?synchronous=normal&poll_interval=250ms", path: "ts.db", opts: Options{Synchronous: "normal", PollInterval: 250 * time.Millisecond}},
		{dsn: "ts.db?busy_timeout=2s&sweep_interval=-1s&readers=2", path: "ts.db",
			opts: Options{BusyTimeout: 2 * time.Second, SweepInterval: -time.Second, Readers: 2}},
		{dsn: "ts.db?sync=normal", wantErr: true},
		{dsn: "ts.db?poll_interval=5", wantErr: true},
		{dsn: "?synchronous=full", wantErr: true},
		{dsn: "", wantErr: true},
	} {
		path, opts, err := ParseDSN(tc.dsn)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseDSN(%q) = %q, %+v; want an error", tc.dsn, path, opts)
			}
			continue
		}
		if err != nil || path != tc.path || opts != tc.opts {
			t.Errorf("ParseDSN(%q) = %q, %+v, %v; want %q, %+v", tc.dsn, path, opts, err, tc.path, tc.opts)
		}
	}
}

func TestOpenByDriverNameUsesFullSync(t *testing.T) {
	st, err := ts.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "ts.db"))
	if err != nil {
		t.Fatalf("ts.Open(sqlite): %v", err)
	}
	defer st.Close()
	var sync, mode string
	s := st.(*Store)
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != "2" {
		t.Errorf("synchronous = %s, %v; want 2 (full)", sync, err)
	}
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %s, %v; want wal", mode, err)
	}
}

// The plan must seek in the (ns, series, time, seq) index, not sort.
func TestQueriesUseTheIndexes(t *testing.T) {
	s := openTemp(t, Options{})
	for name, query := range map[string]string{"asc": queryAscSQL, "desc": queryDescSQL, "tail": tailSQL, "end": endSQL} {
		rows, err := s.r.Query("EXPLAIN QUERY PLAN "+query, "ns", "s", 0, 1, 0, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var plan string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan += detail + "; "
		}
		rows.Close()
		t.Logf("%s: %s", name, plan)
		if !strings.Contains(plan, "INDEX prism_ts_events_") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s query plan: %s", name, plan)
		}
	}
}

// Two stores on one file stand for two processes: a tail on one must see
// appends through the other within the poll interval.
func TestTailSeesAppendsOfAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ts.db")
	a := openPath(t, path, Options{})
	b := openPath(t, path, Options{PollInterval: 100 * time.Millisecond})
	ctx := context.Background()
	for _, s := range []*Store{a, b} {
		if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.Tail(ctx, "ns", ts.TailArgs{Series: "s"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ts.Page, 1)
	go func() {
		p, err := b.Tail(ctx, "ns", ts.TailArgs{Series: "s", After: p.NextCursor, Wait: 10 * time.Second})
		if err != nil {
			t.Errorf("Tail: %v", err)
		}
		done <- p
	}()
	time.Sleep(50 * time.Millisecond)
	appended := time.Now()
	if _, _, err := a.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now(), Data: json.RawMessage(`1`)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-done:
		if len(p.Events) != 1 {
			t.Fatalf("Tail returned %d events, want 1", len(p.Events))
		}
		if d := time.Since(appended); d > 2*time.Second {
			t.Errorf("tail noticed another process's append after %v, want about the poll interval", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail did not notice another process's append")
	}
}

func TestSweeperDeletesEventsPastRetention(t *testing.T) {
	s := openTemp(t, Options{SweepInterval: 20 * time.Millisecond})
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureNamespace(ctx, "keep", ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	old := make([]ts.Event, 2*sweepBatch+10)
	for i := range old {
		old[i] = ts.Event{Series: "s", Time: time.Now().Add(-2 * time.Hour)}
	}
	for _, ns := range []string{"ns", "keep"} {
		if _, _, err := s.Append(ctx, ns, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := s.Query(ctx, "ns", ts.QueryArgs{Series: "s", Limit: ts.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events remain 5s after they passed retention; want only the recent one", len(p.Events))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := s.Query(ctx, "keep", ts.QueryArgs{Series: "s", Limit: ts.MaxLimit})
	if err != nil || len(p.Events) != len(old) {
		t.Fatalf("namespace without retention has %d events, %v; want %d", len(p.Events), err, len(old))
	}
}
