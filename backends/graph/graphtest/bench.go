package graphtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/graph"
)

// BenchPutNode measures PutNode of small nodes from parallel goroutines.
func BenchPutNode(b *testing.B, s graph.Store) {
	ctx, ns := context.Background(), Namespace(b)
	props := json.RawMessage(`{"name":"benchmark node","n":42}`)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.PutNode(ctx, ns, graph.Node{ID: fmt.Sprint("node-", n.Add(1)), Label: "bench", Props: props}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchGraph is a graph the traversal benchmarks load once per store.
type benchGraph struct {
	name string
	gen  func() *Graph
	once sync.Once
	g    *Graph
	ns   string
	err  error
}

// load writes the graph into a fresh namespace of s, once.
func (bg *benchGraph) load(b *testing.B, s graph.Store) (*Graph, string) {
	bg.once.Do(func() {
		bg.g, bg.ns = bg.gen(), Namespace(b)
		start := time.Now()
		bg.err = Load(context.Background(), s, bg.ns, bg.g)
		b.Logf("loaded %s (%d nodes, %d edges) in %v", bg.name, len(bg.g.Nodes), len(bg.g.Edges), time.Since(start))
	})
	if bg.err != nil {
		b.Fatalf("load %s: %v", bg.name, bg.err)
	}
	return bg.g, bg.ns
}

// BenchTraverse measures depth-3 traversals from 64 start nodes in turn,
// with Limit graph.MaxLimit, on the conformance graph (10,000 nodes) and
// on a power-law graph of 20,000 nodes and about 100,000 edges. Besides
// ns/op it reports nodes/op, p50-ms and p99-ms of a traversal, and nodes/s.
func BenchTraverse(b *testing.B, s graph.Store) {
	graphs := []*benchGraph{
		{name: "conformance-10k", gen: func() *Graph { return Generate(BigGraphNodes, BigGraphSeed) }},
		{name: "powerlaw-100k-edges", gen: func() *Graph { return PowerLaw(20000, 5, BigGraphSeed) }},
	}
	for _, bg := range graphs {
		for _, dir := range []graph.Direction{graph.Out, graph.Both} {
			b.Run(fmt.Sprintf("graph=%s/depth=3/dir=%s", bg.name, dir), func(b *testing.B) {
				g, ns := bg.load(b, s)
				r := rand.New(rand.NewPCG(1, 2))
				starts := make([]string, 64)
				for i := range starts {
					starts[i] = g.Nodes[r.IntN(len(g.Nodes))].ID
				}
				ctx := context.Background()
				var lat []time.Duration
				nodes := 0
				for i := 0; b.Loop(); i++ {
					start := time.Now()
					res, err := s.Traverse(ctx, ns, graph.TraverseArgs{Start: starts[i%len(starts)], Direction: dir, MaxDepth: 3, Limit: graph.MaxLimit})
					lat = append(lat, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					nodes += len(res.Nodes)
				}
				reportLatency(b, lat, nodes)
			})
		}
	}
}

// reportLatency adds nodes/op, p50-ms, p99-ms and nodes/s to a benchmark.
func reportLatency(b *testing.B, lat []time.Duration, nodes int) {
	if len(lat) == 0 {
		return
	}
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(nodes)/float64(len(lat)), "nodes/op")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(nodes)/total.Seconds(), "nodes/s")
}
