// Package graphtest is the conformance suite every graph.Store driver runs
// against a real server, in the manner of Dapr's components-contrib: a
// driver's test calls Run with a function that opens a store, and the suite
// checks the behaviour the data API promises.
//
// Choices the suite pins down where graph.Store's docs are silent:
//   - Props round-trip byte for byte; a node or edge put without props
//     reads back with nil Props.
//   - Edges of an existing node without edges is an empty list, not an
//     error.
//   - Validation comes first: a call with bad arguments fails with
//     graph.ErrInvalid whatever the state of the backend.
//   - A call with a cancelled or expired context fails with an error that
//     matches both graph.ErrUnavailable and the context's error, and
//     writes nothing.
package graphtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/internal/result"
)

// Opener returns a store for one subtest. It is called once per subtest,
// possibly concurrently; the store it returns may be shared between calls.
// The suite never closes it: the opener arranges that with t.Cleanup.
type Opener func(t *testing.T) graph.Store

// testTimeout bounds each subtest so that a hung driver fails instead of
// stalling the whole run; loading and walking the big graph gets longer.
const (
	testTimeout      = 30 * time.Second
	traversalTimeout = 3 * time.Minute
)

// BigGraphNodes and BigGraphSeed define the graph of the traversal tests
// (see Generate); benchmarks use the same graph.
const (
	BigGraphNodes = 10000
	BigGraphSeed  = 20240601
)

// Run runs the conformance suite. Subtests run in parallel, each in its own
// namespace, so no state leaks between them.
func Run(t *testing.T, open Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c *client)
	}{
		{"PutThenGetNodeRoundTripsLabelAndProps", testPutGetNode},
		{"PutNodeReplacesLabelAndPropsAndKeepsEdges", testRePutNode},
		{"GetOfAbsentNodeIsNotFound", testGetAbsent},
		{"DeleteNodeDeletesItsEdges", testDeleteNode},
		{"DeleteOfAbsentNodeSucceeds", testDeleteAbsentNode},
		{"EdgeToMissingNodeIsNotFoundAndWritesNothing", testEdgeToMissingNode},
		{"RePutEdgeUpdatesProps", testRePutEdge},
		{"EdgeIsIdentifiedByFromToAndLabel", testEdgeIdentity},
		{"DeleteEdgeDeletesOnlyThatEdge", testDeleteEdge},
		{"EdgesByDirectionAndLabel", testEdges},
		{"EdgesOfAbsentNodeIsNotFound", testEdgesAbsent},
		{"TraverseSmallGraphs", testTraverseSmall},
		{"TraverseOfAbsentStartIsNotFound", testTraverseAbsent},
		{"IDsAtTheLimitRoundTrip", testLongIDs},
		{"BadInputIsInvalid", testBadInput},
		{"NamespacesAreIsolated", testNamespaces},
		{"ConcurrentPutEdgeAndDeleteNodeLeaveNoDanglingEdge", testConcurrentDelete},
		{"LoadWritesNodesThenEdges", testLoad},
		{"CancelledContextFails", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			tc.fn(t, &client{t: t, ctx: ctx, s: open(t), ns: Namespace(t)})
		})
	}
	t.Run("TraversalOfBigCyclicGraphMatchesReferenceBFS", func(t *testing.T) {
		t.Parallel()
		testBigTraversals(t, open)
	})
}

// Namespace returns a fresh namespace name so that concurrent tests and
// repeated runs against one database never see each other's data.
func Namespace(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random namespace: %v", err)
	}
	return "graphtest-" + hex.EncodeToString(b[:])
}

// Load writes g into namespace ns of s, through graph.Loader when s
// implements it.
func Load(ctx context.Context, s graph.Store, ns string, g *Graph) error {
	if l, ok := s.(graph.Loader); ok {
		return l.Load(ctx, ns, g.Nodes, g.Edges)
	}
	for _, n := range g.Nodes {
		if err := s.PutNode(ctx, ns, n); err != nil {
			return err
		}
	}
	for _, e := range g.Edges {
		if err := s.PutEdge(ctx, ns, e); err != nil {
			return err
		}
	}
	return nil
}

// client wraps a store with the subtest's context and namespace and with
// helpers that fail the test on unexpected errors.
type client struct {
	t   *testing.T
	ctx context.Context
	s   graph.Store
	ns  string
}

func (c *client) putNode(id, label, props string) {
	c.t.Helper()
	n := graph.Node{ID: id, Label: label}
	if props != "" {
		n.Props = json.RawMessage(props)
	}
	if err := c.s.PutNode(c.ctx, c.ns, n); err != nil {
		c.t.Fatalf("PutNode(%q): unexpected error: %v", id, err)
	}
}

func (c *client) putEdge(from, to, label, props string) {
	c.t.Helper()
	e := graph.Edge{From: from, To: to, Label: label}
	if props != "" {
		e.Props = json.RawMessage(props)
	}
	if err := c.s.PutEdge(c.ctx, c.ns, e); err != nil {
		c.t.Fatalf("PutEdge(%q -%s-> %q): unexpected error: %v", from, label, to, err)
	}
}

func (c *client) getNode(id string) graph.Node {
	c.t.Helper()
	n, err := c.s.GetNode(c.ctx, c.ns, id)
	if err != nil {
		c.t.Fatalf("GetNode(%q): unexpected error: %v", id, err)
	}
	return n
}

func (c *client) edges(id string, dir graph.Direction, label string) []graph.Edge {
	c.t.Helper()
	edges, err := c.s.Edges(c.ctx, c.ns, id, dir, label)
	if err != nil {
		c.t.Fatalf("Edges(%q, %s, %q): unexpected error: %v", id, dir, label, err)
	}
	return edges
}

func (c *client) traverse(args graph.TraverseArgs) graph.Traversal {
	c.t.Helper()
	res, err := c.s.Traverse(c.ctx, c.ns, args)
	if err != nil {
		c.t.Fatalf("Traverse(%+v): unexpected error: %v", args, err)
	}
	return res
}

// wantNotFound fails unless node id is absent.
func (c *client) wantNotFound(id string) {
	c.t.Helper()
	n, err := c.s.GetNode(c.ctx, c.ns, id)
	if !errors.Is(err, graph.ErrNotFound) {
		c.t.Fatalf("GetNode(%q) = %+v, %v; want graph.ErrNotFound", id, n, err)
	}
}

// wantEdges fails unless Edges(id, dir, label) returns exactly want, given
// as "from-label->to" or "from-label->to props".
func (c *client) wantEdges(id string, dir graph.Direction, label string, want ...string) {
	c.t.Helper()
	got := c.edges(id, dir, label)
	if !slices.Equal(edgeStrings(got), want) {
		c.t.Errorf("Edges(%q, %s, %q) =\n  %q\nwant\n  %q", id, dir, label, edgeStrings(got), want)
	}
}

// edgeStrings renders edges for comparison and messages.
func edgeStrings(edges []graph.Edge) []string {
	out := make([]string, 0, len(edges))
	for _, e := range edges {
		s := e.From + "-" + e.Label + "->" + e.To
		if e.Props != nil {
			s += " " + string(e.Props)
		}
		out = append(out, s)
	}
	return out
}

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func testPutGetNode(t *testing.T, c *client) {
	// Whitespace, key order, escapes and big numbers must survive as sent.
	props := `{ "z": 1, "a": [true, null], "s": "é\u00e9\n", "n": 12345678901234567890.5 }`
	c.putNode("a", "person", props)
	n := c.getNode("a")
	if n.ID != "a" || n.Label != "person" || string(n.Props) != props {
		t.Fatalf("GetNode = {ID:%q Label:%q Props:%s}, want {a person %s}", n.ID, n.Label, n.Props, props)
	}
	c.putNode("bare", "", "")
	if n := c.getNode("bare"); n.Label != "" || n.Props != nil {
		t.Errorf("GetNode of a node put without label and props = {Label:%q Props:%q}, want empty label and nil props", n.Label, n.Props)
	}
}

func testRePutNode(t *testing.T, c *client) {
	c.putNode("a", "person", `{"v":1}`)
	c.putNode("b", "person", "")
	c.putEdge("a", "b", "knows", "")
	c.putNode("a", "robot", `{"v":2}`)
	if n := c.getNode("a"); n.Label != "robot" || string(n.Props) != `{"v":2}` {
		t.Errorf("after re-put GetNode = {Label:%q Props:%s}, want {robot {\"v\":2}}", n.Label, n.Props)
	}
	c.putNode("a", "robot", "")
	if n := c.getNode("a"); n.Props != nil {
		t.Errorf("re-put without props left props %s, want nil", n.Props)
	}
	c.wantEdges("a", graph.Out, "", "a-knows->b")
}

func testGetAbsent(t *testing.T, c *client) {
	c.wantNotFound("absent")
	c.putNode("present", "", "")
	c.wantNotFound("presen")
	c.wantNotFound("present ")
	c.wantNotFound("Present")
}

func testDeleteNode(t *testing.T, c *client) {
	for _, id := range []string{"a", "b", "c", "d"} {
		c.putNode(id, "", "")
	}
	c.putEdge("a", "b", "knows", "")
	c.putEdge("b", "a", "knows", "")
	c.putEdge("b", "b", "likes", "")
	c.putEdge("b", "c", "knows", `{"w":1}`)
	c.putEdge("c", "d", "knows", "")
	c.putEdge("d", "a", "knows", "")
	if err := c.s.DeleteNode(c.ctx, c.ns, "b"); err != nil {
		t.Fatalf("DeleteNode: %v", err)
	}
	c.wantNotFound("b")
	c.wantEdges("a", graph.Both, "", "d-knows->a")
	c.wantEdges("c", graph.Both, "", "c-knows->d")
	tr := c.traverse(graph.TraverseArgs{Start: "a", Direction: graph.Both, MaxDepth: 3, Limit: 10})
	if got := visitStrings(tr.Nodes); !slices.Equal(got, []string{"a@0", "d@1", "c@2"}) {
		t.Errorf("traversal after delete reaches %q, want [a@0 d@1 c@2]", got)
	}
	// A node re-created under the same ID starts without edges.
	c.putNode("b", "", "")
	c.wantEdges("b", graph.Both, "")
}

func testDeleteAbsentNode(t *testing.T, c *client) {
	if err := c.s.DeleteNode(c.ctx, c.ns, "never-written"); err != nil {
		t.Fatalf("DeleteNode of absent node: %v, want success", err)
	}
	c.putNode("a", "", "")
	for range 2 {
		if err := c.s.DeleteNode(c.ctx, c.ns, "a"); err != nil {
			t.Fatalf("DeleteNode: %v, want success (also the second time)", err)
		}
	}
}

func testEdgeToMissingNode(t *testing.T, c *client) {
	c.putNode("a", "", "")
	for _, e := range []graph.Edge{
		{From: "a", To: "missing", Label: "knows"},
		{From: "missing", To: "a", Label: "knows"},
		{From: "missing", To: "other", Label: "knows"},
		{From: "missing", To: "missing", Label: "knows"},
	} {
		err := c.s.PutEdge(c.ctx, c.ns, e)
		wantErr(t, fmt.Sprintf("PutEdge(%s -> %s)", e.From, e.To), err, graph.ErrNotFound)
	}
	c.wantEdges("a", graph.Both, "")
	c.wantNotFound("missing")
}

func testRePutEdge(t *testing.T, c *client) {
	c.putNode("a", "", "")
	c.putNode("b", "", "")
	c.putEdge("a", "b", "knows", `{"since":2019}`)
	c.putEdge("a", "b", "knows", `{"since":2020, "close": true}`)
	c.wantEdges("a", graph.Out, "", `a-knows->b {"since":2020, "close": true}`)
	c.putEdge("a", "b", "knows", "")
	c.wantEdges("a", graph.Out, "", "a-knows->b")
	c.wantEdges("b", graph.In, "", "a-knows->b")
}

func testEdgeIdentity(t *testing.T, c *client) {
	c.putNode("a", "", "")
	c.putNode("b", "", "")
	c.putEdge("a", "b", "knows", `{"k":1}`)
	c.putEdge("a", "b", "likes", `{"l":1}`)
	c.putEdge("b", "a", "knows", `{"r":1}`)
	c.wantEdges("a", graph.Both, "",
		`a-knows->b {"k":1}`, `a-likes->b {"l":1}`, `b-knows->a {"r":1}`)
}

func testDeleteEdge(t *testing.T, c *client) {
	c.putNode("a", "", "")
	c.putNode("b", "", "")
	c.putEdge("a", "b", "knows", "")
	c.putEdge("a", "b", "likes", "")
	c.putEdge("b", "a", "knows", "")
	if err := c.s.DeleteEdge(c.ctx, c.ns, "a", "b", "knows"); err != nil {
		t.Fatalf("DeleteEdge: %v", err)
	}
	c.wantEdges("a", graph.Both, "", "a-likes->b", "b-knows->a")
	for _, k := range [][3]string{{"a", "b", "knows"}, {"a", "x", "knows"}, {"x", "y", "z"}} {
		if err := c.s.DeleteEdge(c.ctx, c.ns, k[0], k[1], k[2]); err != nil {
			t.Fatalf("DeleteEdge of absent edge %q: %v, want success", k, err)
		}
	}
	c.getNode("a")
	c.getNode("b")
}

func testEdges(t *testing.T, c *client) {
	for _, id := range []string{"a", "b", "c", "lonely"} {
		c.putNode(id, "", "")
	}
	c.putEdge("a", "b", "knows", "")
	c.putEdge("a", "c", "likes", "")
	c.putEdge("c", "a", "knows", "")
	c.putEdge("b", "a", "likes", "")
	c.putEdge("a", "a", "knows", `{"self":true}`)
	c.putEdge("b", "c", "knows", "")
	for _, tc := range []struct {
		dir   graph.Direction
		label string
		want  []string
	}{
		{graph.Out, "", []string{`a-knows->a {"self":true}`, "a-knows->b", "a-likes->c"}},
		{graph.In, "", []string{`a-knows->a {"self":true}`, "b-likes->a", "c-knows->a"}},
		{graph.Both, "", []string{`a-knows->a {"self":true}`, "a-knows->b", "a-likes->c", "b-likes->a", "c-knows->a"}},
		{graph.Out, "knows", []string{`a-knows->a {"self":true}`, "a-knows->b"}},
		{graph.In, "likes", []string{"b-likes->a"}},
		{graph.Both, "likes", []string{"a-likes->c", "b-likes->a"}},
		{graph.Both, "nope", nil},
	} {
		c.wantEdges("a", tc.dir, tc.label, tc.want...)
	}
	c.wantEdges("lonely", graph.Both, "")
}

func testEdgesAbsent(t *testing.T, c *client) {
	c.putNode("a", "", "")
	for _, dir := range []graph.Direction{graph.Out, graph.In, graph.Both} {
		_, err := c.s.Edges(c.ctx, c.ns, "absent", dir, "")
		wantErr(t, "Edges of absent node ("+string(dir)+")", err, graph.ErrNotFound)
	}
}

// visitStrings renders visits as id@depth.
func visitStrings(vs []graph.Visit) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s@%d", v.ID, v.Depth))
	}
	return out
}

func testTraverseSmall(t *testing.T, c *client) {
	// A ring r0 -> r1 -> ... -> r9 -> r0 with a chord r0 -> r5 and a
	// self-loop on r3, and an isolated node.
	for i := range 10 {
		c.putNode(fmt.Sprintf("r%d", i), "ring", fmt.Sprintf(`{"i":%d}`, i))
	}
	for i := range 10 {
		c.putEdge(fmt.Sprintf("r%d", i), fmt.Sprintf("r%d", (i+1)%10), "next", "")
	}
	c.putEdge("r0", "r5", "chord", `{"c":1}`)
	c.putEdge("r3", "r3", "next", "")
	c.putNode("alone", "", "")
	for _, tc := range []struct {
		name  string
		args  graph.TraverseArgs
		nodes []string
		edges []string
		trunc bool
	}{
		{"OutDepth1", graph.TraverseArgs{Start: "r0", Direction: graph.Out, MaxDepth: 1, Limit: 100},
			[]string{"r0@0", "r1@1", "r5@1"}, []string{"r0-next->r1", `r0-chord->r5 {"c":1}`}, false},
		{"InDepth2", graph.TraverseArgs{Start: "r0", Direction: graph.In, MaxDepth: 2, Limit: 100},
			[]string{"r0@0", "r9@1", "r8@2"}, []string{"r8-next->r9", "r9-next->r0"}, false},
		{"BothDepth2", graph.TraverseArgs{Start: "r0", Direction: graph.Both, MaxDepth: 2, Limit: 100},
			[]string{"r0@0", "r1@1", "r5@1", "r9@1", "r2@2", "r4@2", "r6@2", "r8@2"},
			[]string{"r0-next->r1", `r0-chord->r5 {"c":1}`, "r1-next->r2", "r4-next->r5", "r5-next->r6", "r8-next->r9", "r9-next->r0"}, false},
		{"CycleEndsAtMaxDepth", graph.TraverseArgs{Start: "r0", Direction: graph.Out, MaxDepth: 10, Limit: 100},
			[]string{"r0@0", "r1@1", "r5@1", "r2@2", "r6@2", "r3@3", "r7@3", "r4@4", "r8@4", "r9@5"},
			[]string{"r0-next->r1", `r0-chord->r5 {"c":1}`, "r1-next->r2", "r2-next->r3", "r3-next->r3", "r3-next->r4", "r4-next->r5",
				"r5-next->r6", "r6-next->r7", "r7-next->r8", "r8-next->r9", "r9-next->r0"}, false},
		{"LabelFilter", graph.TraverseArgs{Start: "r0", Direction: graph.Out, Labels: []string{"chord"}, MaxDepth: 5, Limit: 100},
			[]string{"r0@0", "r5@1"}, []string{`r0-chord->r5 {"c":1}`}, false},
		{"LimitKeepsLowestIDsOfLastLevel", graph.TraverseArgs{Start: "r0", Direction: graph.Both, MaxDepth: 2, Limit: 5},
			[]string{"r0@0", "r1@1", "r5@1", "r9@1", "r2@2"},
			[]string{"r0-next->r1", `r0-chord->r5 {"c":1}`, "r1-next->r2", "r9-next->r0"}, true},
		{"LimitOneIsTheStart", graph.TraverseArgs{Start: "r0", Direction: graph.Out, MaxDepth: 3, Limit: 1},
			[]string{"r0@0"}, nil, true},
		{"LimitEqualToReachIsNotTruncated", graph.TraverseArgs{Start: "r0", Direction: graph.Out, MaxDepth: 1, Limit: 3},
			[]string{"r0@0", "r1@1", "r5@1"}, []string{"r0-next->r1", `r0-chord->r5 {"c":1}`}, false},
		{"SelfLoopOnly", graph.TraverseArgs{Start: "r3", Direction: graph.Out, Labels: []string{"next"}, MaxDepth: 1, Limit: 100},
			[]string{"r3@0", "r4@1"}, []string{"r3-next->r3", "r3-next->r4"}, false},
		{"IsolatedNode", graph.TraverseArgs{Start: "alone", Direction: graph.Both, MaxDepth: 10, Limit: 100},
			[]string{"alone@0"}, nil, false},
	} {
		res := c.traverse(tc.args)
		if got := visitStrings(res.Nodes); !slices.Equal(got, tc.nodes) {
			t.Errorf("%s: nodes = %q, want %q", tc.name, got, tc.nodes)
		}
		want := slices.Clone(tc.edges)
		slices.SortFunc(want, func(a, b string) int { return result.CompareEdges(parseEdge(a), parseEdge(b)) })
		if got := edgeStrings(res.Edges); !slices.Equal(got, want) {
			t.Errorf("%s: edges = %q, want %q", tc.name, got, want)
		}
		if res.Truncated != tc.trunc {
			t.Errorf("%s: Truncated = %v, want %v", tc.name, res.Truncated, tc.trunc)
		}
	}
	res := c.traverse(graph.TraverseArgs{Start: "r2", Direction: graph.Out, MaxDepth: 1, Limit: 10})
	if n := res.Nodes[0]; n.Label != "ring" || string(n.Props) != `{"i":2}` {
		t.Errorf("traversal start = {Label:%q Props:%s}, want {ring {\"i\":2}}", n.Label, n.Props)
	}
}

// parseEdge reads the form of edgeStrings back, for sorting expectations.
func parseEdge(s string) graph.Edge {
	s, _, _ = strings.Cut(s, " ")
	from, rest, _ := strings.Cut(s, "-")
	label, to, _ := strings.Cut(rest, "->")
	return graph.Edge{From: from, To: to, Label: label}
}

func testTraverseAbsent(t *testing.T, c *client) {
	c.putNode("a", "", "")
	_, err := c.s.Traverse(c.ctx, c.ns, graph.TraverseArgs{Start: "absent", Direction: graph.Out, MaxDepth: 2, Limit: 10})
	wantErr(t, "Traverse from an absent node", err, graph.ErrNotFound)
}

func testLongIDs(t *testing.T, c *client) {
	ascii := strings.Repeat("x", graph.MaxIDBytes)
	multi := strings.Repeat("é", graph.MaxIDBytes/2) // 2 bytes each
	label := strings.Repeat("l", graph.MaxLabelBytes)
	c.putNode(ascii, label, "")
	c.putNode(multi, "", "")
	c.putEdge(ascii, multi, label, "")
	if n := c.getNode(multi); n.ID != multi {
		t.Errorf("GetNode of a %d-byte ID returned ID %q", len(multi), n.ID)
	}
	c.wantEdges(multi, graph.In, label, ascii+"-"+label+"->"+multi)
	res := c.traverse(graph.TraverseArgs{Start: ascii, Direction: graph.Out, Labels: []string{label}, MaxDepth: 1, Limit: 10})
	if got := visitStrings(res.Nodes); !slices.Equal(got, []string{ascii + "@0", multi + "@1"}) {
		t.Errorf("traversal over long IDs = %q", got)
	}
}

func testBadInput(t *testing.T, c *client) {
	c.putNode("a", "", "")
	c.putNode("b", "", "")
	long := strings.Repeat("x", graph.MaxIDBytes+1)
	longLabel := strings.Repeat("l", graph.MaxLabelBytes+1)
	trav := func(mod func(*graph.TraverseArgs)) func() error {
		return func() error {
			args := graph.TraverseArgs{Start: "a", Direction: graph.Out, MaxDepth: 2, Limit: 10}
			mod(&args)
			_, err := c.s.Traverse(c.ctx, c.ns, args)
			return err
		}
	}
	putNode := func(n graph.Node) func() error { return func() error { return c.s.PutNode(c.ctx, c.ns, n) } }
	putEdge := func(e graph.Edge) func() error { return func() error { return c.s.PutEdge(c.ctx, c.ns, e) } }
	edges := func(id string, dir graph.Direction, label string) func() error {
		return func() error { _, err := c.s.Edges(c.ctx, c.ns, id, dir, label); return err }
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"TraverseDepth11", trav(func(a *graph.TraverseArgs) { a.MaxDepth = graph.MaxDepth + 1 })},
		{"TraverseDepth0", trav(func(a *graph.TraverseArgs) { a.MaxDepth = 0 })},
		{"TraverseNegativeDepth", trav(func(a *graph.TraverseArgs) { a.MaxDepth = -1 })},
		{"TraverseUnknownDirection", trav(func(a *graph.TraverseArgs) { a.Direction = "sideways" })},
		{"TraverseEmptyDirection", trav(func(a *graph.TraverseArgs) { a.Direction = "" })},
		{"TraverseUppercaseDirection", trav(func(a *graph.TraverseArgs) { a.Direction = "OUT" })},
		{"TraverseEmptyStart", trav(func(a *graph.TraverseArgs) { a.Start = "" })},
		{"TraverseLongStart", trav(func(a *graph.TraverseArgs) { a.Start = long })},
		{"TraverseLimit0", trav(func(a *graph.TraverseArgs) { a.Limit = 0 })},
		{"TraverseLimitOverMax", trav(func(a *graph.TraverseArgs) { a.Limit = graph.MaxLimit + 1 })},
		{"TraverseEmptyLabel", trav(func(a *graph.TraverseArgs) { a.Labels = []string{"knows", ""} })},
		{"TraverseTooManyLabels", trav(func(a *graph.TraverseArgs) { a.Labels = make([]string, graph.MaxLabels+1) })},
		{"PutNodeEmptyID", putNode(graph.Node{})},
		{"PutNodeLongID", putNode(graph.Node{ID: long})},
		{"PutNodeInvalidUTF8", putNode(graph.Node{ID: "a\xff"})},
		{"PutNodeNUL", putNode(graph.Node{ID: "a\x00b"})},
		{"PutNodeLongLabel", putNode(graph.Node{ID: "c", Label: longLabel})},
		{"PutNodePropsArray", putNode(graph.Node{ID: "c", Props: json.RawMessage(`[1]`)})},
		{"PutNodePropsString", putNode(graph.Node{ID: "c", Props: json.RawMessage(`"x"`)})},
		{"PutNodePropsBroken", putNode(graph.Node{ID: "c", Props: json.RawMessage(`{"a":`)})},
		{"PutEdgeEmptyFrom", putEdge(graph.Edge{To: "b", Label: "knows"})},
		{"PutEdgeLongTo", putEdge(graph.Edge{From: "a", To: long, Label: "knows"})},
		{"PutEdgeEmptyLabel", putEdge(graph.Edge{From: "a", To: "b"})},
		{"PutEdgePropsBroken", putEdge(graph.Edge{From: "a", To: "b", Label: "knows", Props: json.RawMessage(`{`)})},
		{"GetNodeEmptyID", func() error { _, err := c.s.GetNode(c.ctx, c.ns, ""); return err }},
		{"GetNodeLongID", func() error { _, err := c.s.GetNode(c.ctx, c.ns, long); return err }},
		{"DeleteNodeEmptyID", func() error { return c.s.DeleteNode(c.ctx, c.ns, "") }},
		{"DeleteEdgeEmptyLabel", func() error { return c.s.DeleteEdge(c.ctx, c.ns, "a", "b", "") }},
		{"DeleteEdgeLongFrom", func() error { return c.s.DeleteEdge(c.ctx, c.ns, long, "b", "knows") }},
		{"EdgesUnknownDirection", edges("a", "up", "")},
		{"EdgesEmptyDirection", edges("a", "", "")},
		{"EdgesEmptyID", edges("", graph.Out, "")},
		{"EdgesLongLabel", edges("a", graph.Out, longLabel)},
	} {
		if err := tc.call(); !errors.Is(err, graph.ErrInvalid) {
			t.Errorf("%s: error = %v, want graph.ErrInvalid", tc.name, err)
		}
	}
	c.wantNotFound("c")
	c.wantEdges("a", graph.Both, "")
}

func testNamespaces(t *testing.T, c *client) {
	other := &client{t: t, ctx: c.ctx, s: c.s, ns: c.ns + "-other"}
	c.putNode("a", "mine", "")
	c.putNode("b", "mine", "")
	c.putEdge("a", "b", "knows", "")
	other.putNode("a", "theirs", "")
	other.putNode("c", "theirs", "")
	other.putEdge("a", "c", "knows", "")
	if n := c.getNode("a"); n.Label != "mine" {
		t.Errorf("node a has label %q in its namespace, want mine", n.Label)
	}
	c.wantNotFound("c")
	c.wantEdges("a", graph.Both, "", "a-knows->b")
	other.wantEdges("a", graph.Both, "", "a-knows->c")
	err := c.s.PutEdge(c.ctx, c.ns, graph.Edge{From: "a", To: "c", Label: "knows"})
	wantErr(t, "PutEdge to a node of another namespace", err, graph.ErrNotFound)
	res := c.traverse(graph.TraverseArgs{Start: "a", Direction: graph.Both, MaxDepth: 5, Limit: 10})
	if got := visitStrings(res.Nodes); !slices.Equal(got, []string{"a@0", "b@1"}) {
		t.Errorf("traversal in one namespace reached %q, want [a@0 b@1]", got)
	}
	if err := other.s.DeleteNode(c.ctx, other.ns, "a"); err != nil {
		t.Fatal(err)
	}
	c.wantEdges("a", graph.Both, "", "a-knows->b")
}

// testConcurrentDelete races edge puts to nodes against the deletion of
// those nodes: whatever wins, no edge may outlive its node.
func testConcurrentDelete(t *testing.T, c *client) {
	const n = 16
	c.putNode("hub", "", "")
	for i := range n {
		c.putNode(fmt.Sprintf("x%d", i), "", "")
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	start := make(chan struct{})
	for i := range n {
		id := fmt.Sprintf("x%d", i)
		wg.Go(func() {
			<-start
			for j := range 5 {
				err := c.s.PutEdge(c.ctx, c.ns, graph.Edge{From: "hub", To: id, Label: fmt.Sprint("l", j)})
				if err != nil && !errors.Is(err, graph.ErrNotFound) {
					errs[i] = err
					return
				}
			}
		})
		wg.Go(func() {
			<-start
			errs[n+i] = c.s.DeleteNode(c.ctx, c.ns, id)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	c.wantEdges("hub", graph.Both, "")
	res := c.traverse(graph.TraverseArgs{Start: "hub", Direction: graph.Both, MaxDepth: 1, Limit: 100})
	if len(res.Nodes) != 1 || len(res.Edges) != 0 {
		t.Errorf("traversal after the race = %q %q, want only the hub", visitStrings(res.Nodes), edgeStrings(res.Edges))
	}
}

func testLoad(t *testing.T, c *client) {
	l, ok := c.s.(graph.Loader)
	if !ok {
		t.Skip("store does not implement graph.Loader")
	}
	nodes := []graph.Node{{ID: "a", Label: "old"}, {ID: "b"}, {ID: "a", Label: "new", Props: json.RawMessage(`{"v":2}`)}}
	edges := []graph.Edge{{From: "a", To: "b", Label: "knows", Props: json.RawMessage(`{"v":1}`)}, {From: "a", To: "b", Label: "knows"}, {From: "b", To: "a", Label: "x"}}
	if err := l.Load(c.ctx, c.ns, nodes, edges); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n := c.getNode("a"); n.Label != "new" || string(n.Props) != `{"v":2}` {
		t.Errorf("node given twice to Load = {Label:%q Props:%s}, want the last one", n.Label, n.Props)
	}
	c.wantEdges("a", graph.Both, "", "a-knows->b", "b-x->a")
	err := l.Load(c.ctx, c.ns, []graph.Node{{ID: "c"}}, []graph.Edge{{From: "c", To: "missing", Label: "knows"}})
	wantErr(t, "Load with an edge to a missing node", err, graph.ErrNotFound)
	err = l.Load(c.ctx, c.ns, []graph.Node{{ID: "d"}}, []graph.Edge{{From: "d", To: "a"}})
	wantErr(t, "Load with an invalid edge", err, graph.ErrInvalid)
	c.wantNotFound("d")
}

func testCancelled(t *testing.T, c *client) {
	c.putNode("a", "", "")
	c.putNode("b", "", "")
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
			{"PutNode", func(ctx context.Context) error { return c.s.PutNode(ctx, c.ns, graph.Node{ID: "new"}) }},
			{"GetNode", func(ctx context.Context) error { _, err := c.s.GetNode(ctx, c.ns, "a"); return err }},
			{"DeleteNode", func(ctx context.Context) error { return c.s.DeleteNode(ctx, c.ns, "a") }},
			{"PutEdge", func(ctx context.Context) error {
				return c.s.PutEdge(ctx, c.ns, graph.Edge{From: "a", To: "b", Label: "new"})
			}},
			{"DeleteEdge", func(ctx context.Context) error { return c.s.DeleteEdge(ctx, c.ns, "a", "b", "knows") }},
			{"Edges", func(ctx context.Context) error { _, err := c.s.Edges(ctx, c.ns, "a", graph.Both, ""); return err }},
			{"Traverse", func(ctx context.Context) error {
				_, err := c.s.Traverse(ctx, c.ns, graph.TraverseArgs{Start: "a", Direction: graph.Both, MaxDepth: 2, Limit: 10})
				return err
			}},
		}
		if l, ok := c.s.(graph.Loader); ok {
			calls = append(calls, struct {
				name string
				call func(ctx context.Context) error
			}{"Load", func(ctx context.Context) error { return l.Load(ctx, c.ns, []graph.Node{{ID: "new"}}, nil) }})
		}
		for _, call := range calls {
			err := call.call(tc.ctx)
			if !errors.Is(err, graph.ErrUnavailable) || !errors.Is(err, tc.want) {
				t.Errorf("%s with %v context: error = %v, want one matching both graph.ErrUnavailable and %v", call.name, tc.want, err, tc.want)
			}
		}
	}
	c.getNode("a")
	c.wantNotFound("new")
	c.wantEdges("a", graph.Both, "")
}

// bigCase is one traversal of the big graph.
type bigCase struct {
	name string
	args graph.TraverseArgs
}

// bigCases are the traversals of the big graph: every depth 1..6 in every
// direction with and without label filters from an ordinary node, then the
// unusual starts (a hub, the longest ID, IDs with query metacharacters and
// non-ASCII bytes) and limits that cut levels.
func bigCases(g *Graph) []bigCase {
	var cases []bigCase
	filters := [][]string{nil, {"knows"}, {"likes", "blocked by"}}
	start := nodeID(123) // a node whose neighbourhood is rich in every direction and label
	for depth := 1; depth <= 6; depth++ {
		for _, dir := range []graph.Direction{graph.Out, graph.In, graph.Both} {
			for _, labels := range filters {
				cases = append(cases, bigCase{
					name: fmt.Sprintf("depth=%d/dir=%s/labels=%s", depth, dir, strings.Join(labels, "+")),
					args: graph.TraverseArgs{Start: start, Direction: dir, Labels: labels, MaxDepth: depth, Limit: graph.MaxLimit},
				})
			}
		}
	}
	for _, tc := range []struct {
		name string
		node int
		dir  graph.Direction
		deep int
	}{
		{"hub", 0, graph.Out, 2},
		{"hub-in", 1000, graph.In, 3},
		{"longest-id", 4242, graph.Both, 3},
		{"metacharacters", 991, graph.Both, 4},
		{"non-ascii", 983, graph.In, 5},
	} {
		cases = append(cases, bigCase{
			name: "start=" + tc.name,
			args: graph.TraverseArgs{Start: nodeID(tc.node), Direction: tc.dir, MaxDepth: tc.deep, Limit: graph.MaxLimit},
		})
	}
	full := g.Traverse(graph.TraverseArgs{Start: start, Direction: graph.Both, MaxDepth: 4, Limit: graph.MaxLimit})
	for _, limit := range []int{1, 2, 37, len(full.Nodes) - 1, len(full.Nodes)} {
		cases = append(cases, bigCase{
			name: fmt.Sprintf("limit=%d", limit),
			args: graph.TraverseArgs{Start: start, Direction: graph.Both, MaxDepth: 4, Limit: limit},
		})
	}
	cases = append(cases, bigCase{
		name: "limit=100/depth=10",
		args: graph.TraverseArgs{Start: start, Direction: graph.Both, MaxDepth: graph.MaxDepth, Limit: 100},
	})
	return cases
}

func testBigTraversals(t *testing.T, open Opener) {
	ctx, cancel := context.WithTimeout(t.Context(), traversalTimeout)
	t.Cleanup(cancel) // after the parallel subtests, unlike a defer
	s, ns := open(t), Namespace(t)
	g := Generate(BigGraphNodes, BigGraphSeed)
	start := time.Now()
	if err := Load(ctx, s, ns, g); err != nil {
		t.Fatalf("load the %d-node graph: %v", len(g.Nodes), err)
	}
	t.Logf("loaded %d nodes and %d edges in %v", len(g.Nodes), len(g.Edges), time.Since(start))
	sawTruncated, sawWhole := false, false
	for _, tc := range bigCases(g) {
		want := g.Traverse(tc.args)
		sawTruncated = sawTruncated || want.Truncated
		sawWhole = sawWhole || !want.Truncated
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Traverse(ctx, ns, tc.args)
			if err != nil {
				t.Fatalf("Traverse(%+v): %v", tc.args, err)
			}
			compareTraversal(t, got, want)
		})
	}
	if !sawTruncated || !sawWhole {
		t.Errorf("the cases must include truncated and whole traversals (truncated: %v, whole: %v)", sawTruncated, sawWhole)
	}
}

// compareTraversal fails with the first differences between got and want.
func compareTraversal(t *testing.T, got, want graph.Traversal) {
	t.Helper()
	if got.Truncated != want.Truncated {
		t.Errorf("Truncated = %v, want %v", got.Truncated, want.Truncated)
	}
	if len(got.Nodes) != len(want.Nodes) {
		t.Errorf("%d nodes, want %d", len(got.Nodes), len(want.Nodes))
		reportSetDiff(t, "node", visitStrings(got.Nodes), visitStrings(want.Nodes))
		return
	}
	for i := range want.Nodes {
		g, w := got.Nodes[i], want.Nodes[i]
		if g.ID != w.ID || g.Depth != w.Depth || g.Label != w.Label || !bytes.Equal(g.Props, w.Props) {
			t.Errorf("node %d = {%q depth %d label %q props %s}, want {%q depth %d label %q props %s}",
				i, g.ID, g.Depth, g.Label, g.Props, w.ID, w.Depth, w.Label, w.Props)
			reportSetDiff(t, "node", visitStrings(got.Nodes), visitStrings(want.Nodes))
			return
		}
	}
	if gs, ws := edgeStrings(got.Edges), edgeStrings(want.Edges); !slices.Equal(gs, ws) {
		t.Errorf("%d edges, want %d", len(gs), len(ws))
		reportSetDiff(t, "edge", gs, ws)
	}
}

// reportSetDiff logs a few elements that only one side has, or, when both
// have the same elements, that the order differs.
func reportSetDiff(t *testing.T, what string, got, want []string) {
	t.Helper()
	in := func(s []string) map[string]bool {
		m := make(map[string]bool, len(s))
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var extra, missing []string
	for _, x := range got {
		if !w[x] && len(extra) < 5 {
			extra = append(extra, x)
		}
	}
	for _, x := range want {
		if !g[x] && len(missing) < 5 {
			missing = append(missing, x)
		}
	}
	if len(extra)+len(missing) == 0 {
		t.Errorf("same %ss, different order (want depth, then ID in byte order)", what)
		return
	}
	t.Errorf("unexpected %ss (first 5): %q; missing %ss (first 5): %q", what, extra, what, missing)
}
