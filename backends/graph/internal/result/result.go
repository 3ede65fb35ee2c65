// Package result puts what graph drivers read into the order the API
// promises, so that every driver orders and truncates alike.
package result

import (
	"cmp"
	"slices"
	"strings"

	"github.com/prism-gw/prism/backends/graph"
)

// CompareEdges orders edges by (From, To, Label) in byte order.
func CompareEdges(a, b graph.Edge) int {
	return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To), strings.Compare(a.Label, b.Label))
}

// SortEdges sorts edges by (From, To, Label) in byte order.
func SortEdges(edges []graph.Edge) {
	slices.SortFunc(edges, CompareEdges)
}

// Finish orders a traversal's nodes by (depth, ID) and its edges by
// (From, To, Label). Drivers read up to limit+1 nodes: when there are more
// than limit, the extra one only tells that the traversal was truncated and
// is dropped.
func Finish(t graph.Traversal, limit int) graph.Traversal {
	slices.SortFunc(t.Nodes, func(a, b graph.Visit) int {
		return cmp.Or(cmp.Compare(a.Depth, b.Depth), strings.Compare(a.ID, b.ID))
	})
	if len(t.Nodes) > limit {
		t.Nodes, t.Truncated = t.Nodes[:limit], true
	}
	if t.Edges == nil {
		t.Edges = []graph.Edge{}
	}
	SortEdges(t.Edges)
	return t
}
