package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/graphtest"
)

// openTemp opens a store on a fresh file that is closed when t ends.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "graph.db"), opts)
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
	graphtest.Run(t, func(t *testing.T) graph.Store { return openTemp(t, Options{}) })
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		path    string
		opts    Options
		wantErr bool
	}{
		{dsn: "/var/lib/prism/graph.db", path: "/var/lib/prism/graph.db"},
		{dsn: "g.db?synchronous=normal", path: "g.db", opts: Options{Synchronous: "normal"}},
		{dsn: "g.db?busy_timeout=2s&readers=2", path: "g.db", opts: Options{BusyTimeout: 2 * time.Second, Readers: 2}},
		{dsn: "g.db?sync=normal", wantErr: true},
		{dsn: "g.db?busy_timeout=5", wantErr: true},
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

func TestOpenRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		opts Options
	}{
		{":memory:", Options{}},
		{"file::memory:?mode=memory", Options{}},
		{filepath.Join(dir, "g.db"), Options{Synchronous: "sometimes"}},
	} {
		if s, err := Open(context.Background(), tc.path, tc.opts); err == nil {
			s.Close()
			t.Errorf("Open(%q, %+v) succeeded, want an error", tc.path, tc.opts)
		}
	}
}

// pragma reads a pragma on the writer connection, where durability and
// foreign keys matter.
func pragma(t *testing.T, s *Store, name string) string {
	t.Helper()
	var v string
	if err := s.w.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestWriterSettings(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		dsn, synchronous string
	}{
		{"full.db", "2"},
		{"normal.db?synchronous=normal", "1"},
	} {
		st, err := graph.Open(context.Background(), "sqlite", filepath.Join(dir, tc.dsn))
		if err != nil {
			t.Fatalf("graph.Open(sqlite, %q): %v", tc.dsn, err)
		}
		s := st.(*Store)
		for name, want := range map[string]string{
			"synchronous": tc.synchronous, "journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000",
		} {
			if got := pragma(t, s, name); got != want {
				t.Errorf("%s: %s = %s, want %s", tc.dsn, name, got, want)
			}
		}
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestCloseCheckpointsAndReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := s.PutNode(ctx, "ns", graph.Node{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutEdge(ctx, "ns", graph.Edge{From: "a", To: "b", Label: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("after Close the WAL holds %d bytes, want it checkpointed", fi.Size())
	}
	s2 := openPath(t, path, Options{})
	edges, err := s2.Edges(ctx, "ns", "a", graph.Out, "")
	if err != nil || len(edges) != 1 || edges[0].Label != "kept" {
		t.Fatalf("after reopen Edges = %+v, %v; want the edge", edges, err)
	}
}

// The foreign keys are the last line of defence against dangling edges: a
// write that bypasses the driver's existence check must still fail.
func TestForeignKeysRejectDanglingEdges(t *testing.T) {
	s := openTemp(t, Options{})
	_, err := s.w.Exec(`INSERT INTO prism_graph_edges (ns, src, dst, label) VALUES ('ns', 'a', 'b', 'x')`)
	if err == nil {
		t.Fatal("inserting an edge between missing nodes succeeded")
	}
	if err := fail(context.Background(), "op", err); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("a foreign key violation maps to %v, want graph.ErrNotFound", err)
	}
}

func TestLoadIsAllOrNothing(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	err := s.Load(ctx, "ns", []graph.Node{{ID: "a"}, {ID: "b"}},
		[]graph.Edge{{From: "a", To: "b", Label: "x"}, {From: "a", To: "missing", Label: "x"}})
	if !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("Load with a dangling edge: %v, want graph.ErrNotFound", err)
	}
	if _, err := s.GetNode(ctx, "ns", "a"); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("after a failed Load node a is there (%v); want nothing written", err)
	}
}

func TestLockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	s := openPath(t, path, Options{BusyTimeout: 50 * time.Millisecond})
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	err = s.PutNode(context.Background(), "ns", graph.Node{ID: "a"})
	if !errors.Is(err, graph.ErrUnavailable) {
		t.Fatalf("PutNode while another process holds the write lock: %v, want graph.ErrUnavailable", err)
	}
	if err := s.Load(context.Background(), "ns", []graph.Node{{ID: "a"}}, nil); !errors.Is(err, graph.ErrUnavailable) {
		t.Fatalf("Load while another process holds the write lock: %v, want graph.ErrUnavailable", err)
	}
}
