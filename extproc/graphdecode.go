package extproc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/prism-gw/prism/backends/graph"
)

// graphOp is a Graph operation of the data API.
type graphOp int

const (
	graphPutNode graphOp = iota
	graphGetNode
	graphDeleteNode
	graphPutEdge
	graphDeleteEdge
	graphEdges
	graphTraverse
)

// graphRequest is a decoded Graph request; bodies (node, edge, traversal)
// are decoded once they arrive.
type graphRequest struct {
	op        graphOp
	id        string
	edgeKey   graph.Edge // from, to, label of DELETE /edges
	direction graph.Direction
	label     string
}

func (g *graphRequest) needsBody() bool {
	return g.op == graphPutNode || g.op == graphPutEdge || g.op == graphTraverse
}

// decodeGraph decodes /v1/graph/{ns}/nodes/{id}[/edges], /edges and
// /traverse. A node id is one path segment: a '/' in an id is sent as %2F.
func decodeGraph(r *httpRequest, rt route) (graphRequest, *apiError) {
	q, err := url.ParseQuery(r.rawQuery)
	if err != nil {
		return graphRequest{}, invalid("malformed query string: %v", err)
	}
	parts := strings.Split(rt.rest, "/")
	switch {
	case len(parts) == 1 && parts[0] == "edges":
		switch r.method {
		case http.MethodPut:
			return graphRequest{op: graphPutEdge}, onlyParams(q)
		case http.MethodDelete:
			if e := onlyParams(q, "from", "to", "label"); e != nil {
				return graphRequest{}, e
			}
			k := graph.Edge{From: q.Get("from"), To: q.Get("to"), Label: q.Get("label")}
			if err := graph.ValidateEdgeKey(k.From, k.To, k.Label); err != nil {
				return graphRequest{}, invalid("%v", err)
			}
			return graphRequest{op: graphDeleteEdge, edgeKey: k}, nil
		}
		return graphRequest{}, methodNotAllowed(r.method, "edges (PUT or DELETE)")
	case len(parts) == 1 && parts[0] == "traverse":
		if r.method != http.MethodPost {
			return graphRequest{}, methodNotAllowed(r.method, "traverse (use POST)")
		}
		return graphRequest{op: graphTraverse}, onlyParams(q)
	case (len(parts) == 2 || len(parts) == 3) && parts[0] == "nodes":
		id, err := url.PathUnescape(parts[1])
		if err != nil {
			return graphRequest{}, invalid("malformed percent-encoding in node id: %v", err)
		}
		if err := graph.ValidateID(id); err != nil {
			return graphRequest{}, invalid("%v", err)
		}
		if len(parts) == 3 {
			if parts[2] != "edges" {
				return graphRequest{}, notFound("no Graph route %q", rt.rest)
			}
			if r.method != http.MethodGet {
				return graphRequest{}, methodNotAllowed(r.method, "a node's edges (use GET)")
			}
			if e := onlyParams(q, "direction", "label"); e != nil {
				return graphRequest{}, e
			}
			g := graphRequest{op: graphEdges, id: id, direction: graph.Direction(q.Get("direction")), label: q.Get("label")}
			if g.direction == "" {
				g.direction = graph.Both
			}
			if err := graph.ValidateEdgesQuery(id, g.direction, g.label); err != nil {
				return graphRequest{}, invalid("%v", err)
			}
			return g, nil
		}
		if e := onlyParams(q); e != nil {
			return graphRequest{}, e
		}
		switch r.method {
		case http.MethodPut:
			return graphRequest{op: graphPutNode, id: id}, nil
		case http.MethodGet:
			return graphRequest{op: graphGetNode, id: id}, nil
		case http.MethodDelete:
			return graphRequest{op: graphDeleteNode, id: id}, nil
		}
		return graphRequest{}, methodNotAllowed(r.method, "a node")
	}
	return graphRequest{}, notFound("no Graph route %q: want nodes/{id}, nodes/{id}/edges, edges or traverse", rt.rest)
}

// nodeJSON is a node as the data API writes and reads it.
type nodeJSON struct {
	ID    string          `json:"id,omitempty"`
	Label string          `json:"label"`
	Props json.RawMessage `json:"props,omitempty"`
	Depth *int            `json:"depth,omitempty"`
}

// edgeJSON is an edge as the data API writes and reads it.
type edgeJSON struct {
	From  string          `json:"from"`
	To    string          `json:"to"`
	Label string          `json:"label"`
	Props json.RawMessage `json:"props,omitempty"`
}

// traverseBody is the body of POST /traverse.
type traverseBody struct {
	Start     string   `json:"start"`
	Direction string   `json:"direction"`
	Labels    []string `json:"labels"`
	MaxDepth  int      `json:"max_depth"`
	Limit     int      `json:"limit"`
}

func decodeNode(id string, body []byte) (graph.Node, *apiError) {
	var b nodeJSON
	if e := decodeJSONBody(body, &b); e != nil {
		return graph.Node{}, e
	}
	if b.ID != "" && b.ID != id {
		return graph.Node{}, invalid("body id %q differs from the id in the path", b.ID)
	}
	if b.Depth != nil {
		return graph.Node{}, invalid(`unknown field "depth"`)
	}
	n := graph.Node{ID: id, Label: b.Label, Props: b.Props}
	if err := n.Validate(); err != nil {
		return graph.Node{}, invalid("%v", err)
	}
	return n, nil
}

func decodeEdge(body []byte) (graph.Edge, *apiError) {
	var b edgeJSON
	if e := decodeJSONBody(body, &b); e != nil {
		return graph.Edge{}, e
	}
	ed := graph.Edge(b)
	if err := ed.Validate(); err != nil {
		return graph.Edge{}, invalid("%v", err)
	}
	return ed, nil
}

func decodeTraverse(body []byte) (graph.TraverseArgs, *apiError) {
	var b traverseBody
	if e := decodeJSONBody(body, &b); e != nil {
		return graph.TraverseArgs{}, e
	}
	a := graph.TraverseArgs{Start: b.Start, Direction: graph.Direction(b.Direction), Labels: b.Labels, MaxDepth: b.MaxDepth, Limit: b.Limit}
	if a.Direction == "" {
		a.Direction = graph.Out
	}
	if a.MaxDepth == 0 {
		a.MaxDepth = graph.DefaultMaxDepth
	}
	if a.Limit == 0 {
		a.Limit = graph.DefaultLimit
	}
	if err := a.Validate(); err != nil {
		return graph.TraverseArgs{}, invalid("%v", err)
	}
	return a, nil
}
