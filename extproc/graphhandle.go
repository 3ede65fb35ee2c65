package extproc

import (
	"context"
	"net/http"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/policies"
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

// graphOperations names each Graph operation as the policy sees it.
var graphOperations = [...]string{
	graphPutNode:    policies.OpPutNode,
	graphGetNode:    policies.OpGetNode,
	graphDeleteNode: policies.OpDeleteNode,
	graphPutEdge:    policies.OpPutEdge,
	graphDeleteEdge: policies.OpDeleteEdge,
	graphEdges:      policies.OpGetEdges,
	graphTraverse:   policies.OpTraverse,
}

// runGraph performs one Graph call on the namespace's store. On a namespace
// with a policy it is decided first; on one with a PII schema, node props are
// encrypted (bound to the node id) before the store sees them and read nodes
// get the policy's field actions. Edge props are not classified.
func (s *Server) runGraph(ctx context.Context, c *call, body []byte) (*reply, error) {
	ns, store, g := c.ns.cfg.GetNamespace(), c.ns.graph, &c.graph
	key := g.id
	if g.op == graphDeleteEdge {
		key = g.edgeKey.From
	}
	a, err := s.authorize(ctx, c, graphOperations[g.op], key)
	if err != nil {
		return nil, err
	}
	switch g.op {
	case graphPutNode:
		n, e := decodeNode(g.id, body)
		if e != nil {
			return nil, e
		}
		stored := n
		var touched []string
		if stored.Props, touched, err = c.sealDoc(ctx, n.ID, n.Props, nil, map[string]bool{}); err != nil {
			return nil, err
		}
		if err := s.auditAccess(ctx, c, a, touched); err != nil {
			return nil, err
		}
		if err := store.PutNode(ctx, ns, stored); err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, nodeJSON{ID: n.ID, Label: n.Label, Props: n.Props}), nil
	case graphGetNode:
		n, err := store.GetNode(ctx, ns, g.id)
		if err != nil {
			return nil, err
		}
		var touched []string
		if n.Props, touched, err = c.openDoc(ctx, a, n.ID, n.Props, nil, map[string]bool{}); err != nil {
			return nil, err
		}
		if err := s.auditAccess(ctx, c, a, touched); err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, nodeJSON{ID: n.ID, Label: n.Label, Props: n.Props}), nil
	case graphDeleteNode:
		if err := s.auditAccess(ctx, c, a, nil); err != nil {
			return nil, err
		}
		if err := store.DeleteNode(ctx, ns, g.id); err != nil {
			return nil, err
		}
		return &reply{status: http.StatusNoContent}, nil
	case graphPutEdge:
		ed, e := decodeEdge(body)
		if e != nil {
			return nil, e
		}
		if err := s.auditAccess(ctx, c, a, nil); err != nil {
			return nil, err
		}
		if err := store.PutEdge(ctx, ns, ed); err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, edgeJSON(ed)), nil
	case graphDeleteEdge:
		if err := s.auditAccess(ctx, c, a, nil); err != nil {
			return nil, err
		}
		if err := store.DeleteEdge(ctx, ns, g.edgeKey.From, g.edgeKey.To, g.edgeKey.Label); err != nil {
			return nil, err
		}
		return &reply{status: http.StatusNoContent}, nil
	case graphEdges:
		edges, err := store.Edges(ctx, ns, g.id, g.direction, g.label)
		if err != nil {
			return nil, err
		}
		if err := s.auditAccess(ctx, c, a, nil); err != nil {
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
		var touched []string
		seen := map[string]bool{}
		for i, v := range tr.Nodes {
			props := v.Props
			if props, touched, err = c.openDoc(ctx, a, v.ID, props, touched, seen); err != nil {
				return nil, err
			}
			d := v.Depth
			res.Nodes[i] = nodeJSON{ID: v.ID, Label: v.Label, Props: props, Depth: &d}
		}
		if err := s.auditAccess(ctx, c, a, touched); err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, res), nil
	}
	return nil, invalid("unsupported operation")
}
