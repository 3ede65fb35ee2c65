package extproc

import (
	"context"
	"net/http"

	"github.com/prism-gw/prism/backends/graph"
)

type edgesResult struct {
	Edges []edgeJSON `json:"edges"`
}

type traverseResult struct {
	Nodes     []nodeJSON `json:"nodes"`
	Edges     []edgeJSON `json:"edges"`
	Truncated bool       `json:"truncated"`
}

func toEdgesJSON(edges []graph.Edge) []edgeJSON {
	out := make([]edgeJSON, len(edges))
	for i, e := range edges {
		out[i] = edgeJSON(e)
	}
	return out
}

// runGraph performs one Graph call on the namespace's store.
func (s *Server) runGraph(ctx context.Context, c *call, body []byte) (*reply, error) {
	ns, store, g := c.ns.cfg.GetNamespace(), c.ns.graph, &c.graph
	switch g.op {
	case graphPutNode:
		n, e := decodeNode(g.id, body)
		if e != nil {
			return nil, e
		}
		if err := store.PutNode(ctx, ns, n); err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, nodeJSON{ID: n.ID, Label: n.Label, Props: n.Props}), nil
	case graphGetNode:
		n, err := store.GetNode(ctx, ns, g.id)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, nodeJSON{ID: n.ID, Label: n.Label, Props: n.Props}), nil
	case graphDeleteNode:
		if err := store.DeleteNode(ctx, ns, g.id); err != nil {
			return nil, err
		}
		return &reply{status: http.StatusNoContent}, nil
	case graphPutEdge:
		ed, e := decodeEdge(body)
		if e != nil {
			return nil, e
		}
		if err := store.PutEdge(ctx, ns, ed); err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, edgeJSON(ed)), nil
	case graphDeleteEdge:
		if err := store.DeleteEdge(ctx, ns, g.edgeKey.From, g.edgeKey.To, g.edgeKey.Label); err != nil {
			return nil, err
		}
		return &reply{status: http.StatusNoContent}, nil
	case graphEdges:
		edges, err := store.Edges(ctx, ns, g.id, g.direction, g.label)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, edgesResult{Edges: toEdgesJSON(edges)}), nil
	case graphTraverse:
		args, e := decodeTraverse(body)
		if e != nil {
			return nil, e
		}
		tr, err := store.Traverse(ctx, ns, args)
		if err != nil {
			return nil, err
		}
		res := traverseResult{Nodes: make([]nodeJSON, len(tr.Nodes)), Edges: toEdgesJSON(tr.Edges), Truncated: tr.Truncated}
		for i, v := range tr.Nodes {
			d := v.Depth
			res.Nodes[i] = nodeJSON{ID: v.ID, Label: v.Label, Props: v.Props, Depth: &d}
		}
		return jsonReply(http.StatusOK, res), nil
	}
	return nil, invalid("unsupported operation")
}
