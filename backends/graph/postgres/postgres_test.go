package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/graphtest"
	"github.com/prism-gw/prism/internal/pgtest"
)

// testDSN returns a DSN whose search_path is a fresh schema, dropped when t
// ends. An unreachable server fails the test unless PRISM_SKIP_POSTGRES=1.
func testDSN(t testing.TB) string {
	t.Helper()
	return pgtest.Schema(t, "prism_graphtest_")
}

// openStore opens a store on dsn, closed when t ends.
func openStore(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	s := openStore(t, testDSN(t))
	graphtest.Run(t, func(t *testing.T) graph.Store { return s })
}

func TestTablesAreInSearchPathSchemaAndReopenKeepsThem(t *testing.T) {
	dsn := testDSN(t)
	st, err := graph.Open(context.Background(), "postgres", dsn)
	if err != nil {
		t.Fatalf("graph.Open(postgres): %v", err)
	}
	defer st.Close()
	s := st.(*Store)
	ctx := context.Background()
	var n int
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_name IN ('prism_graph_nodes', 'prism_graph_edges') AND table_schema = current_schema()`).Scan(&n)
	if err != nil || n != 2 {
		t.Fatalf("found %d of the 2 tables in the search_path schema (%v)", n, err)
	}
	if err := s.PutNode(ctx, "ns", graph.Node{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dsn)
	if _, err := s2.GetNode(ctx, "ns", "a"); err != nil {
		t.Fatalf("GetNode through a second store: %v", err)
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	start := time.Now()
	// Port 1 on loopback refuses connections at once.
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/test", Options{})
	if !errors.Is(err, graph.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want graph.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open of an unreachable server took %v", d)
	}
}

// The foreign keys are the last line of defence against dangling edges: a
// write that bypasses the driver must still fail.
func TestForeignKeysRejectDanglingEdges(t *testing.T) {
	s := openStore(t, testDSN(t))
	_, err := s.pool.Exec(context.Background(), `INSERT INTO prism_graph_edges (ns, src, dst, label) VALUES ('ns', 'a', 'b', 'x')`)
	if err == nil {
		t.Fatal("inserting an edge between missing nodes succeeded")
	}
	if err := fail(context.Background(), "op", err); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("a foreign key violation maps to %v, want graph.ErrNotFound", err)
	}
}

func TestLoadIsAllOrNothing(t *testing.T) {
	s := openStore(t, testDSN(t))
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

// Chunking must not change what a Load writes, duplicates included.
func TestLoadAcrossChunks(t *testing.T) {
	s := openStore(t, testDSN(t))
	ctx := context.Background()
	g := graphtest.Generate(loadChunk+17, 7) // two chunks of nodes, three of edges
	nodes := append(g.Nodes, graph.Node{ID: g.Nodes[0].ID, Label: "last"})
	if err := s.Load(ctx, "ns", nodes, g.Edges); err != nil {
		t.Fatal(err)
	}
	var n, e int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM prism_graph_nodes), (SELECT count(*) FROM prism_graph_edges)`).Scan(&n, &e); err != nil {
		t.Fatal(err)
	}
	if n != len(g.Nodes) || e != len(g.Edges) {
		t.Errorf("Load wrote %d nodes and %d edges, want %d and %d", n, e, len(g.Nodes), len(g.Edges))
	}
	if got, err := s.GetNode(ctx, "ns", g.Nodes[0].ID); err != nil || got.Label != "last" {
		t.Errorf("node given twice = %+v, %v; want the last one", got, err)
	}
}

// A prepared statement switches to its generic plan after five runs; the
// traversal must stay fast then (a nested-loop semi-join once made it 22 s
// instead of 0.3 s, see traverseSQL). Sessions forced to either plan
// compare the two directly.
func TestTraversalStaysFastOnGenericPlan(t *testing.T) {
	dsn := testDSN(t)
	custom := openStore(t, pgtest.WithParam(t, dsn, "plan_cache_mode", "force_custom_plan"))
	generic := openStore(t, pgtest.WithParam(t, dsn, "plan_cache_mode", "force_generic_plan"))
	ctx := context.Background()
	g := graphtest.PowerLaw(8000, 4, 1)
	if err := custom.Load(ctx, "ns", g.Nodes, g.Edges); err != nil {
		t.Fatal(err)
	}
	args := graph.TraverseArgs{Start: g.Nodes[123].ID, Direction: graph.Both, MaxDepth: 3, Limit: graph.MaxLimit}
	timed := func(s *Store) (time.Duration, int) {
		start := time.Now()
		res, err := s.Traverse(ctx, "ns", args)
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), len(res.Nodes)
	}
	dc, n := timed(custom)
	if dg, _ := timed(generic); dg > 5*dc+time.Second {
		t.Errorf("traversal of %d nodes: %v with the generic plan, %v with a custom one", n, dg, dc)
	}
}
