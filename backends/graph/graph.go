// Package graph defines the Graph abstraction that every graph driver
// implements, the registry that opens drivers by name, the validation every
// driver applies, and the errors the data API maps to its status codes.
//
// A graph lives in a namespace. Nodes are identified by their ID; an edge is
// identified by (From, To, Label), so two nodes may be joined by several
// edges with different labels, and re-putting an edge replaces its props.
// Edges always join nodes of the same namespace, and never dangle: putting
// an edge needs both nodes, deleting a node deletes its edges.
package graph

import (
	"context"
	"encoding/json"
	"errors"
)

// Limits of the data API. Drivers validate every call against them (see
// Validate*), so a driver never sees an ID or a traversal it cannot serve.
const (
	// MaxIDBytes bounds a node ID: 1..MaxIDBytes bytes of UTF-8 without NUL.
	MaxIDBytes = 512
	// MaxLabelBytes bounds a node or edge label (UTF-8 without NUL). An edge
	// label has at least one byte; a node label may be empty.
	MaxLabelBytes = 256
	// MaxLabels bounds the label filter of a traversal.
	MaxLabels = 64
	// MaxDepth bounds TraverseArgs.MaxDepth: a deeper breadth-first
	// traversal of a connected graph is the whole graph anyway, and its cost
	// grows with every level.
	MaxDepth = 10
	// MaxLimit bounds TraverseArgs.Limit. 10,000 nodes (with their props and
	// the edges between them) is what one JSON response can carry without
	// streaming; a client that needs more narrows the traversal.
	MaxLimit = 10000
	// DefaultLimit and DefaultMaxDepth are what the API applies when a
	// request leaves them out; drivers never default silently.
	DefaultLimit    = 1000
	DefaultMaxDepth = 1
)

// Errors returned by drivers. They are mapped to API codes in one place
// (extproc): ErrInvalid to 400 INVALID_ARGUMENT, ErrNotFound to 404
// NOT_FOUND, ErrUnavailable to 503 UNAVAILABLE. Drivers wrap them with %w
// and never put IDs, labels or props in the message (they may be personal
// data).
var (
	// ErrNotFound: the node is absent (GetNode, Edges, Traverse's start),
	// or an endpoint of an edge being put is absent.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the call breaks a rule of the API (an ID too long, an
	// unknown direction, a depth over MaxDepth, props that are not a JSON
	// object...). Nothing was read or written.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the backend could not be reached or timed out; the
	// operation was not applied (transactions roll back). It has the
	// semantics of kv.ErrUnavailable: retry-safe.
	ErrUnavailable = errors.New("backend unavailable")
)

// Node is a vertex. Props is a JSON object, or empty; it is stored and
// returned byte for byte.
type Node struct {
	ID    string
	Label string
	// Props is nil when the node was put without props.
	Props json.RawMessage
}

// Edge is a directed, labelled edge; (From, To, Label) identifies it.
type Edge struct {
	From  string
	To    string
	Label string
	// Props is nil when the edge was put without props.
	Props json.RawMessage
}

// Direction is the way edges are followed from a node.
type Direction string

// The directions of the API.
const (
	// Out follows edges from their From to their To.
	Out Direction = "out"
	// In follows edges from their To to their From.
	In Direction = "in"
	// Both follows edges either way.
	Both Direction = "both"
)

// TraverseArgs describe a breadth-first traversal.
type TraverseArgs struct {
	// Start is the ID of the node the traversal starts from (depth 0).
	Start string
	// Direction is required: Out, In or Both.
	Direction Direction
	// Labels, when not empty, restricts the edges followed to these labels.
	Labels []string
	// MaxDepth is the number of hops, 1..MaxDepth.
	MaxDepth int
	// Limit is the maximum number of nodes returned, the start included,
	// 1..MaxLimit.
	Limit int
}

// Visit is a node reached by a traversal, at its least depth.
type Visit struct {
	Node
	Depth int
}

// Traversal is the result of Traverse.
type Traversal struct {
	// Nodes holds each reached node once, at its least depth, ordered by
	// (Depth, ID) in byte order; Nodes[0] is the start at depth 0. When
	// more nodes are reachable than Limit, Nodes is the first Limit of that
	// order: whole levels, then the lowest IDs of the last one.
	Nodes []Visit
	// Edges holds every edge that matches the label filter and joins two
	// nodes of Nodes (the subgraph the traversal returns, self-loops
	// included), ordered by (From, To, Label).
	Edges []Edge
	// Truncated is set when Limit cut off reachable nodes.
	Truncated bool
}

// Store is a Graph backend. Namespaces share a store; nodes and edges of
// different namespaces never meet. Every method validates its arguments and
// fails with ErrInvalid before touching the backend. Implementations are
// safe for concurrent use.
type Store interface {
	// PutNode creates the node or replaces its label and props; its edges
	// stay.
	PutNode(ctx context.Context, ns string, n Node) error
	// GetNode returns the node, or ErrNotFound.
	GetNode(ctx context.Context, ns, id string) (Node, error)
	// DeleteNode deletes the node and every edge from or to it. Deleting an
	// absent node is not an error.
	DeleteNode(ctx context.Context, ns, id string) error
	// PutEdge creates the edge (From, To, Label) or replaces its props. Both
	// nodes must exist, else ErrNotFound and nothing is written.
	PutEdge(ctx context.Context, ns string, e Edge) error
	// DeleteEdge deletes the edge; deleting an absent edge is not an error.
	DeleteEdge(ctx context.Context, ns, from, to, label string) error
	// Edges lists the edges of node id in direction dir (Both: each edge
	// once, self-loops included), only those labelled label unless label
	// is empty, ordered by (From, To, Label). ErrNotFound if the node is
	// absent.
	Edges(ctx context.Context, ns, id string, dir Direction, label string) ([]Edge, error)
	// Traverse walks breadth first from args.Start; see Traversal for what
	// it returns. ErrNotFound if the start node is absent.
	Traverse(ctx context.Context, ns string, args TraverseArgs) (Traversal, error)
	// Close releases the store's connections.
	Close() error
}

// Loader is implemented by stores that can write many nodes and edges in
// one call, much faster than one call per item (tests, imports). Load has
// the effect of PutNode for every node and then PutEdge for every edge, in
// order; a node or edge given twice ends up as its last occurrence. The
// drivers document whether a failed Load may leave part of it written.
type Loader interface {
	Load(ctx context.Context, ns string, nodes []Node, edges []Edge) error
}
