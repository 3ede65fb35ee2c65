package graphtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/internal/result"
)

// Graph is a generated graph held in memory, with the reference traversal
// the suite compares drivers against.
type Graph struct {
	Nodes []graph.Node
	Edges []graph.Edge
	// out and in index Edges by node ID.
	out, in map[string][]int
}

// edgeLabels are the labels of generated edges; "blocked by" has a space to
// keep drivers honest about binding labels as parameters.
var edgeLabels = []string{"knows", "knows", "knows", "likes", "likes", "follows", "blocked by"}

// Generate returns the conformance graph: n nodes (n >= 1000) whose IDs
// include non-ASCII bytes, quotes, query metacharacters and one of
// graph.MaxIDBytes bytes; every node has two edges to nodes near it in
// number, in either direction, so the graph is full of cycles; one node in
// a hundred has an edge to a random node; ten hubs have many edges in and
// out; some nodes have self-loops; and pairs of nodes are joined by edges of
// two labels. The same n and seed give the same graph.
func Generate(n int, seed uint64) *Graph {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	g := &Graph{Nodes: make([]graph.Node, n)}
	for i := range g.Nodes {
		g.Nodes[i] = graph.Node{ID: nodeID(i), Label: []string{"person", "place"}[i%2]}
		if i%3 != 0 {
			g.Nodes[i].Props = json.RawMessage(fmt.Sprintf(`{"i":%d,"name":"node %d"}`, i, i))
		}
	}
	seen := map[[3]string]bool{}
	add := func(from, to int, label string) {
		k := [3]string{nodeID(from), nodeID(to), label}
		if seen[k] {
			return
		}
		seen[k] = true
		e := graph.Edge{From: k[0], To: k[1], Label: label}
		if len(g.Edges)%3 != 0 {
			e.Props = json.RawMessage(fmt.Sprintf(`{"w":%d}`, len(g.Edges)))
		}
		g.Edges = append(g.Edges, e)
	}
	label := func() string { return edgeLabels[r.IntN(len(edgeLabels))] }
	// Mostly local edges (a ring lattice, as in a small-world graph) keep
	// the levels of a traversal growing polynomially rather than
	// exponentially, so depth 6 is a few thousand nodes and not the whole
	// graph; rare long edges and the hubs connect distant parts.
	for i := range n {
		for range 2 {
			add(i, (i+n+r.IntN(2*span+1)-span)%n, label())
		}
		if r.IntN(100) == 0 {
			add(i, r.IntN(n), label())
		}
	}
	const hubs = 10
	for h := range hubs {
		hub := h * (n / hubs)
		for range 30 {
			add(r.IntN(n), hub, "follows")
			add(hub, r.IntN(n), "knows")
		}
	}
	for i := 0; i < n; i += 500 {
		add(i, i, "likes")
	}
	for i := 1; i+1 < n; i += 250 {
		add(i, i+1, "knows")
		add(i, i+1, "likes")
	}
	g.index()
	return g
}

// span is how far (in node numbers) a local edge of Generate reaches.
const span = 40

// nodeID names node i. A few IDs are unusual on purpose (see Generate); an
// unusual ID keeps its node's number so that IDs stay unique.
func nodeID(i int) string {
	id := fmt.Sprintf("n%05d", i)
	switch {
	case i == 4242:
		return id + strings.Repeat("x", graph.MaxIDBytes-len(id))
	case i%997 == 0:
		return id + "-é"
	case i%991 == 0:
		return id + " '\"})-[`$x`]\\"
	case i%983 == 0:
		return "ü/" + id // sorts after every ASCII ID
	}
	return id
}

// PowerLaw returns a preferential-attachment (Barabási–Albert) graph: each
// new node links to m earlier nodes picked with probability proportional to
// their degree, so a few hubs gather most edges. It has about n*m edges.
func PowerLaw(n, m int, seed uint64) *Graph {
	r := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	g := &Graph{Nodes: make([]graph.Node, n)}
	for i := range g.Nodes {
		g.Nodes[i] = graph.Node{ID: fmt.Sprintf("p%06d", i), Label: "v", Props: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
	}
	// ends holds one entry per edge end, so a uniform pick from it is a
	// pick proportional to degree.
	ends := make([]int, 0, 2*n*m)
	seen := map[[2]int]bool{}
	for i := 1; i < n; i++ {
		for range min(m, i) {
			var to int
			if len(ends) == 0 || r.IntN(4) == 0 {
				to = r.IntN(i) // some uniform picks keep the graph connected
			} else {
				to = ends[r.IntN(len(ends))]
			}
			if seen[[2]int{i, to}] {
				continue
			}
			seen[[2]int{i, to}] = true
			ends = append(ends, i, to)
			g.Edges = append(g.Edges, graph.Edge{From: g.Nodes[i].ID, To: g.Nodes[to].ID, Label: edgeLabels[r.IntN(len(edgeLabels))]})
		}
	}
	g.index()
	return g
}

func (g *Graph) index() {
	g.out, g.in = map[string][]int{}, map[string][]int{}
	for i, e := range g.Edges {
		g.out[e.From] = append(g.out[e.From], i)
		g.in[e.To] = append(g.in[e.To], i)
	}
}

// Traverse is the reference breadth-first traversal: the result every
// driver must return for args on this graph.
func (g *Graph) Traverse(args graph.TraverseArgs) graph.Traversal {
	match := labelFilter(args.Labels)
	byID := make(map[string]graph.Node, len(g.Nodes))
	for _, n := range g.Nodes {
		byID[n.ID] = n
	}
	depth := map[string]int{args.Start: 0}
	order := []string{args.Start}
	frontier := []string{args.Start}
	for d := 1; d <= args.MaxDepth && len(frontier) > 0 && len(order) <= args.Limit; d++ {
		var next []string
		visit := func(id string) {
			if _, ok := depth[id]; !ok {
				depth[id] = d
				next = append(next, id)
			}
		}
		for _, id := range frontier {
			if args.Direction != graph.In {
				for _, i := range g.out[id] {
					if match(g.Edges[i].Label) {
						visit(g.Edges[i].To)
					}
				}
			}
			if args.Direction != graph.Out {
				for _, i := range g.in[id] {
					if match(g.Edges[i].Label) {
						visit(g.Edges[i].From)
					}
				}
			}
		}
		slices.Sort(next) // byte order
		order = append(order, next...)
		frontier = next
	}
	var res graph.Traversal
	if len(order) > args.Limit {
		order, res.Truncated = order[:args.Limit], true
	}
	kept := make(map[string]bool, len(order))
	for _, id := range order {
		kept[id] = true
		res.Nodes = append(res.Nodes, graph.Visit{Node: byID[id], Depth: depth[id]})
	}
	for _, id := range order {
		for _, i := range g.out[id] {
			if e := g.Edges[i]; kept[e.To] && match(e.Label) {
				res.Edges = append(res.Edges, e)
			}
		}
	}
	result.SortEdges(res.Edges)
	return res
}

// labelFilter returns whether a label passes the filter labels.
func labelFilter(labels []string) func(string) bool {
	if len(labels) == 0 {
		return func(string) bool { return true }
	}
	return func(l string) bool { return slices.Contains(labels, l) }
}
