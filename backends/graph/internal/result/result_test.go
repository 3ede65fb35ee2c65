package result

import (
	"slices"
	"testing"

	"github.com/prism-gw/prism/backends/graph"
)

func TestFinish(t *testing.T) {
	visit := func(id string, d int) graph.Visit { return graph.Visit{Node: graph.Node{ID: id}, Depth: d} }
	in := graph.Traversal{
		Nodes: []graph.Visit{visit("b", 1), visit("z", 0), visit("é", 1), visit("a", 2), visit("B", 1)},
		Edges: []graph.Edge{{From: "b", To: "a", Label: "y"}, {From: "b", To: "a", Label: "x"}, {From: "a", To: "z", Label: "x"}},
	}
	got := Finish(in, 4)
	var ids []string
	for _, v := range got.Nodes {
		ids = append(ids, v.ID)
	}
	// Depth first, then byte order: "B" < "b" < "é".
	if !slices.Equal(ids, []string{"z", "B", "b", "é"}) || !got.Truncated {
		t.Errorf("Finish(limit 4) = %q truncated %v, want [z B b é] truncated", ids, got.Truncated)
	}
	if e := got.Edges; e[0].From != "a" || e[1].Label != "x" || e[2].Label != "y" {
		t.Errorf("edges not in (From, To, Label) order: %+v", e)
	}
	if got := Finish(graph.Traversal{Nodes: []graph.Visit{visit("a", 0)}}, 1); got.Truncated || got.Edges == nil {
		t.Errorf("Finish of exactly limit nodes: truncated %v, edges %v; want false and an empty list", got.Truncated, got.Edges)
	}
}
