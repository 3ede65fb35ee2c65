// Package neptune is the Graph driver for Amazon Neptune, registered as
// "neptune". It speaks openCypher over Neptune's HTTPS endpoint
// (POST /openCypher with the form fields query and parameters), signing
// requests with SigV4 (service neptune-db) when a region is configured.
//
// Why openCypher and not Gremlin: Neptune binds openCypher parameters
// (`$name`, sent as JSON beside the query), so every query here is a
// constant and user input is only ever data. Neptune's Gremlin endpoints do
// not support bindings or parameterized scripts, so Gremlin over HTTP means
// building query text from IDs and labels (an injection surface no escaping
// makes comfortable), and Gremlin bytecode needs a WebSocket driver. The
// openCypher answers are plain JSON rows, too, not GraphSON.
//
// Data model: see queries.go. Neptune has no namespaces; the namespace is
// part of every vertex and edge ~id, so namespaces never meet.
//
// Traversal: breadth first, one query per level (stepOutQuery...), with the
// visited set kept here, then one query for the returned nodes and one for
// the edges between them: MaxDepth+3 requests at most. A single
// variable-length MATCH ((a)-[*1..d]->(b)) would enumerate every path,
// exponential in d on a cyclic graph, to then keep each node once;
// level by level each node and edge is read once. Unlike the SQL drivers,
// a traversal here is not one snapshot: a write landing between levels may
// or may not be seen, and a node deleted meanwhile is left out.
//
// Load is not atomic either: it sends chunks of Options.LoadChunk, each its
// own transaction, and an edge whose endpoint is missing is skipped by its
// chunk (Load then fails with graph.ErrNotFound).
package neptune

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/internal/result"
)

func init() {
	graph.Register("neptune", func(ctx context.Context, dsn string) (graph.Store, error) {
		endpoint, opts, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return Open(endpoint, opts), nil
	})
}

// Store is a graph.Store in an Amazon Neptune cluster.
type Store struct {
	url    string // the openCypher endpoint
	opts   Options
	signer *signer // nil: requests are not signed
}

var (
	_ graph.Store  = (*Store)(nil)
	_ graph.Loader = (*Store)(nil)
)

// Open returns a store for the cluster at endpoint (scheme, host and port,
// e.g. https://my-cluster.cluster-abc.us-east-1.neptune.amazonaws.com:8182).
// It does not contact the cluster: an unreachable cluster shows as
// graph.ErrUnavailable on the first call.
func Open(endpoint *url.URL, opts Options) *Store {
	opts = opts.withDefaults()
	u := *endpoint
	u.Path += "/openCypher"
	s := &Store{url: u.String(), opts: opts}
	if opts.Region != "" {
		s.signer = &signer{region: opts.Region, service: "neptune-db", creds: opts.Credentials, now: time.Now}
	}
	return s
}

// Close releases nothing: the HTTP client's idle connections time out.
func (s *Store) Close() error { return nil }

// vertexID is the ~id of node id of namespace ns. The namespace is
// length-prefixed, so no pair of (ns, id) shares a vertex.
func vertexID(ns, id string) string {
	return "prism:" + strconv.Itoa(len(ns)) + ":" + ns + ":" + id
}

// vertexIDs maps vertexID over ids.
func vertexIDs(ns string, ids []string) []string {
	vids := make([]string, len(ids))
	for i, id := range ids {
		vids[i] = vertexID(ns, id)
	}
	return vids
}

// edgeID is the ~id of an edge: a hash, as the key is up to three IDs and a
// label long.
func edgeID(ns, from, to, label string) string {
	h := sha256.New()
	for _, part := range []string{ns, from, to, label} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return "prism-e:" + hex.EncodeToString(h.Sum(nil))
}

// props is the parameter value for props: the JSON text, or null (which
// removes the property).
func props(p json.RawMessage) any {
	if len(p) == 0 {
		return nil
	}
	return string(p)
}

// rawProps turns a props property back into props.
func rawProps(p *string) json.RawMessage {
	if p == nil || *p == "" {
		return nil
	}
	return json.RawMessage(*p)
}

// PutNode creates the node or replaces its label and props.
func (s *Store) PutNode(ctx context.Context, ns string, n graph.Node) error {
	if err := n.Validate(); err != nil {
		return fmt.Errorf("neptune graph: put node: %w", err)
	}
	_, err := query[struct{}](ctx, s, putNodeQuery, map[string]any{
		"vid": vertexID(ns, n.ID), "ns": ns, "id": n.ID, "label": n.Label, "props": props(n.Props),
	})
	if err != nil {
		return fail(ctx, "put node", err)
	}
	return nil
}

// nodeRow is a row of getNodeQuery and nodesQuery.
type nodeRow struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Props *string `json:"props"`
}

// GetNode returns the node with id.
func (s *Store) GetNode(ctx context.Context, ns, id string) (graph.Node, error) {
	if err := graph.ValidateID(id); err != nil {
		return graph.Node{}, fmt.Errorf("neptune graph: get node: %w", err)
	}
	rows, err := query[nodeRow](ctx, s, getNodeQuery, map[string]any{"vid": vertexID(ns, id)})
	if err != nil {
		return graph.Node{}, fail(ctx, "get node", err)
	}
	if len(rows) == 0 {
		return graph.Node{}, fmt.Errorf("neptune graph: get node: %w", graph.ErrNotFound)
	}
	return graph.Node{ID: id, Label: rows[0].Label, Props: rawProps(rows[0].Props)}, nil
}

// DeleteNode deletes the node and its edges.
func (s *Store) DeleteNode(ctx context.Context, ns, id string) error {
	if err := graph.ValidateID(id); err != nil {
		return fmt.Errorf("neptune graph: delete node: %w", err)
	}
	if _, err := query[struct{}](ctx, s, deleteNodeQuery, map[string]any{"vid": vertexID(ns, id)}); err != nil {
		return fail(ctx, "delete node", err)
	}
	return nil
}

// countRow is a row of the queries that RETURN count(...) AS n.
type countRow struct {
	N int `json:"n"`
}

// PutEdge creates the edge or replaces its props.
func (s *Store) PutEdge(ctx context.Context, ns string, e graph.Edge) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("neptune graph: put edge: %w", err)
	}
	rows, err := query[countRow](ctx, s, putEdgeQuery, map[string]any{
		"src": vertexID(ns, e.From), "dst": vertexID(ns, e.To), "eid": edgeID(ns, e.From, e.To, e.Label),
		"label": e.Label, "props": props(e.Props),
	})
	if err != nil {
		return fail(ctx, "put edge", err)
	}
	if len(rows) == 0 || rows[0].N == 0 {
		return fmt.Errorf("neptune graph: put edge: an endpoint of the edge: %w", graph.ErrNotFound)
	}
	return nil
}

// DeleteEdge deletes the edge (from, to, label).
func (s *Store) DeleteEdge(ctx context.Context, ns, from, to, label string) error {
	if err := graph.ValidateEdgeKey(from, to, label); err != nil {
		return fmt.Errorf("neptune graph: delete edge: %w", err)
	}
	if _, err := query[struct{}](ctx, s, deleteEdgeQuery, map[string]any{"eid": edgeID(ns, from, to, label)}); err != nil {
		return fail(ctx, "delete edge", err)
	}
	return nil
}

// edgeRow is a row of the edges and subgraph queries.
type edgeRow struct {
	Src   *string `json:"src"`
	Dst   *string `json:"dst"`
	Label *string `json:"label"`
	Props *string `json:"props"`
}

// edgesOf turns rows into edges, skipping the null rows of OPTIONAL MATCH
// and duplicates (a self-loop matched from both ends).
func edgesOf(rows []edgeRow) []graph.Edge {
	out := make([]graph.Edge, 0, len(rows))
	seen := make(map[[3]string]bool, len(rows))
	for _, r := range rows {
		if r.Src == nil || r.Dst == nil || r.Label == nil {
			continue
		}
		k := [3]string{*r.Src, *r.Dst, *r.Label}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, graph.Edge{From: k[0], To: k[1], Label: k[2], Props: rawProps(r.Props)})
	}
	return out
}

// Edges lists the edges of node id.
func (s *Store) Edges(ctx context.Context, ns, id string, dir graph.Direction, label string) ([]graph.Edge, error) {
	if err := graph.ValidateEdgesQuery(id, dir, label); err != nil {
		return nil, fmt.Errorf("neptune graph: edges: %w", err)
	}
	q := map[graph.Direction]string{graph.Out: edgesOutQuery, graph.In: edgesInQuery, graph.Both: edgesBothQuery}[dir]
	rows, err := query[edgeRow](ctx, s, q, map[string]any{"vid": vertexID(ns, id), "label": label})
	if err != nil {
		return nil, fail(ctx, "edges", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("neptune graph: edges: node: %w", graph.ErrNotFound)
	}
	out := edgesOf(rows)
	result.SortEdges(out)
	return out, nil
}

// stepQueries are the level queries by direction.
var stepQueries = map[graph.Direction]string{graph.Out: stepOutQuery, graph.In: stepInQuery, graph.Both: stepBothQuery}

// Traverse walks breadth first from args.Start, one request per level.
func (s *Store) Traverse(ctx context.Context, ns string, args graph.TraverseArgs) (graph.Traversal, error) {
	if err := args.Validate(); err != nil {
		return graph.Traversal{}, fmt.Errorf("neptune graph: traverse: %w", err)
	}
	start, err := query[nodeRow](ctx, s, getNodeQuery, map[string]any{"vid": vertexID(ns, args.Start)})
	if err != nil {
		return graph.Traversal{}, fail(ctx, "traverse: start", err)
	}
	if len(start) == 0 {
		return graph.Traversal{}, fmt.Errorf("neptune graph: traverse: start node: %w", graph.ErrNotFound)
	}
	labels := args.Labels
	if labels == nil {
		labels = []string{}
	}
	depth := map[string]int{args.Start: 0}
	order, frontier := []string{args.Start}, []string{args.Start}
	// Stop below MaxDepth, at an empty frontier, or once more than Limit
	// nodes are known: the last level is complete, so its lowest IDs are
	// known, and one node more than Limit tells that Limit truncated.
	for d := 1; d <= args.MaxDepth && len(frontier) > 0 && len(order) <= args.Limit; d++ {
		rows, err := query[struct {
			ID string `json:"id"`
		}](ctx, s, stepQueries[args.Direction], map[string]any{"frontier": vertexIDs(ns, frontier), "labels": labels})
		if err != nil {
			return graph.Traversal{}, fail(ctx, "traverse", err)
		}
		var next []string
		for _, r := range rows {
			if _, ok := depth[r.ID]; !ok {
				depth[r.ID] = d
				next = append(next, r.ID)
			}
		}
		slices.Sort(next)
		order = append(order, next...)
		frontier = next
	}
	truncated := len(order) > args.Limit
	if truncated {
		order = order[:args.Limit]
	}
	vids := vertexIDs(ns, order)
	nodes, err := query[nodeRow](ctx, s, nodesQuery, map[string]any{"vids": vids})
	if err != nil {
		return graph.Traversal{}, fail(ctx, "traverse: nodes", err)
	}
	rows, err := query[edgeRow](ctx, s, subgraphQuery, map[string]any{"vids": vids, "labels": labels})
	if err != nil {
		return graph.Traversal{}, fail(ctx, "traverse: edges", err)
	}
	t := graph.Traversal{Truncated: truncated, Edges: edgesOf(rows)}
	for _, n := range nodes {
		if d, ok := depth[n.ID]; ok {
			t.Nodes = append(t.Nodes, graph.Visit{Node: graph.Node{ID: n.ID, Label: n.Label, Props: rawProps(n.Props)}, Depth: d})
		}
	}
	// Edges to a node deleted after its level was read are left out with
	// the node.
	present := make(map[string]bool, len(t.Nodes))
	for _, n := range t.Nodes {
		present[n.ID] = true
	}
	t.Edges = slices.DeleteFunc(t.Edges, func(e graph.Edge) bool { return !present[e.From] || !present[e.To] })
	return result.Finish(t, args.Limit), nil
}

// Load writes nodes and then edges, Options.LoadChunk per request. It is
// not atomic: see the package documentation.
func (s *Store) Load(ctx context.Context, ns string, nodes []graph.Node, edges []graph.Edge) error {
	if err := graph.ValidateLoad(nodes, edges); err != nil {
		return fmt.Errorf("neptune graph: load: %w", err)
	}
	for chunk := range slices.Chunk(nodes, s.opts.LoadChunk) {
		rows := make([]map[string]any, len(chunk))
		for i, n := range chunk {
			rows[i] = map[string]any{"vid": vertexID(ns, n.ID), "id": n.ID, "label": n.Label, "props": props(n.Props)}
		}
		if _, err := query[struct{}](ctx, s, loadNodesQuery, map[string]any{"ns": ns, "nodes": rows}); err != nil {
			return fail(ctx, "load nodes", err)
		}
	}
	for chunk := range slices.Chunk(edges, s.opts.LoadChunk) {
		rows := make([]map[string]any, len(chunk))
		for i, e := range chunk {
			rows[i] = map[string]any{
				"src": vertexID(ns, e.From), "dst": vertexID(ns, e.To), "eid": edgeID(ns, e.From, e.To, e.Label),
				"label": e.Label, "props": props(e.Props),
			}
		}
		n, err := query[countRow](ctx, s, loadEdgesQuery, map[string]any{"edges": rows})
		if err != nil {
			return fail(ctx, "load edges", err)
		}
		if len(n) == 0 || n[0].N < len(chunk) {
			return fmt.Errorf("neptune graph: load edges: an endpoint of an edge: %w", graph.ErrNotFound)
		}
	}
	return nil
}
