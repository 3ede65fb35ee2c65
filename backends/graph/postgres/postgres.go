// Package postgres is the Graph driver for PostgreSQL, registered as
// "postgres". The DSN is a pgx connection string; the tables live in the
// first schema of its search_path (e.g. "postgres://host/db?search_path=prism")
// and are created when missing. They do not collide with the KV driver's, so
// both may share a database.
//
// Every operation is one statement, so it reads or writes one snapshot
// under READ COMMITTED; a traversal is one recursive CTE (see traverseSQL)
// whatever its depth. Foreign keys keep edges from dangling, also under
// concurrent writers.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/internal/result"
	"github.com/prism-gw/prism/backends/internal/pgerr"
)

func init() {
	graph.Register("postgres", func(ctx context.Context, dsn string) (graph.Store, error) {
		return Open(ctx, dsn, Options{})
	})
}

// Options tune a store beyond what the DSN says. The zero value of each
// field selects its default.
type Options struct {
	// ConnectTimeout bounds connecting to the server when the DSN has no
	// connect_timeout, so a down server fails fast as graph.ErrUnavailable.
	// Default 5s.
	ConnectTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	return o
}

// Store is a graph.Store in two PostgreSQL tables.
type Store struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

var (
	_ graph.Store  = (*Store)(nil)
	_ graph.Loader = (*Store)(nil)
)

// Open connects to the database of dsn and creates the tables if missing.
// The pool reconnects on its own after a server restart.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres graph: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if cfg.PingTimeout == 0 {
		// A ping to a server that stopped answering would otherwise wait
		// for the caller's deadline on every acquire.
		cfg.PingTimeout = cfg.ConnConfig.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(ctx, "open", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, schemaLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fail(ctx, "create tables", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool, waiting for connections in use to be returned. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// PutNode creates the node or replaces its label and props.
func (s *Store) PutNode(ctx context.Context, ns string, n graph.Node) error {
	if err := n.Validate(); err != nil {
		return fmt.Errorf("postgres graph: put node: %w", err)
	}
	if _, err := s.pool.Exec(ctx, putNodeSQL, ns, n.ID, n.Label, props(n.Props)); err != nil {
		return fail(ctx, "put node", err)
	}
	return nil
}

// GetNode returns the node with id.
func (s *Store) GetNode(ctx context.Context, ns, id string) (graph.Node, error) {
	if err := graph.ValidateID(id); err != nil {
		return graph.Node{}, fmt.Errorf("postgres graph: get node: %w", err)
	}
	n := graph.Node{ID: id}
	var p []byte
	err := s.pool.QueryRow(ctx, getNodeSQL, ns, id).Scan(&n.Label, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return graph.Node{}, fmt.Errorf("postgres graph: get node: %w", graph.ErrNotFound)
	}
	if err != nil {
		return graph.Node{}, fail(ctx, "get node", err)
	}
	n.Props = rawProps(p)
	return n, nil
}

// DeleteNode deletes the node and its edges.
func (s *Store) DeleteNode(ctx context.Context, ns, id string) error {
	if err := graph.ValidateID(id); err != nil {
		return fmt.Errorf("postgres graph: delete node: %w", err)
	}
	if _, err := s.pool.Exec(ctx, deleteNodeSQL, ns, id); err != nil {
		return fail(ctx, "delete node", err)
	}
	return nil
}

// PutEdge creates the edge or replaces its props.
func (s *Store) PutEdge(ctx context.Context, ns string, e graph.Edge) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("postgres graph: put edge: %w", err)
	}
	if _, err := s.pool.Exec(ctx, putEdgeSQL, ns, e.From, e.To, e.Label, props(e.Props)); err != nil {
		return fail(ctx, "put edge", err)
	}
	return nil
}

// DeleteEdge deletes the edge (from, to, label).
func (s *Store) DeleteEdge(ctx context.Context, ns, from, to, label string) error {
	if err := graph.ValidateEdgeKey(from, to, label); err != nil {
		return fmt.Errorf("postgres graph: delete edge: %w", err)
	}
	if _, err := s.pool.Exec(ctx, deleteEdgeSQL, ns, from, to, label); err != nil {
		return fail(ctx, "delete edge", err)
	}
	return nil
}

// Edges lists the edges of node id.
func (s *Store) Edges(ctx context.Context, ns, id string, dir graph.Direction, label string) ([]graph.Edge, error) {
	if err := graph.ValidateEdgesQuery(id, dir, label); err != nil {
		return nil, fmt.Errorf("postgres graph: edges: %w", err)
	}
	var labelArg *string
	if label != "" {
		labelArg = &label
	}
	rows, err := s.pool.Query(ctx, edgesSQL, ns, id, labelArg, dir != graph.In, dir != graph.Out)
	if err != nil {
		return nil, fail(ctx, "edges", err)
	}
	defer rows.Close()
	edges := []graph.Edge{}
	for rows.Next() {
		var src, dst, lbl *string
		var p []byte
		if err := rows.Scan(&src, &dst, &lbl, &p); err != nil {
			return nil, fail(ctx, "edges", err)
		}
		if src == nil {
			return nil, fmt.Errorf("postgres graph: edges: node: %w", graph.ErrNotFound)
		}
		edges = append(edges, graph.Edge{From: *src, To: *dst, Label: *lbl, Props: rawProps(p)})
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "edges", err)
	}
	result.SortEdges(edges)
	return edges, nil
}

// Traverse walks breadth first from args.Start in one statement.
func (s *Store) Traverse(ctx context.Context, ns string, args graph.TraverseArgs) (graph.Traversal, error) {
	if err := args.Validate(); err != nil {
		return graph.Traversal{}, fmt.Errorf("postgres graph: traverse: %w", err)
	}
	var labels []string // nil is NULL: no filter
	if len(args.Labels) > 0 {
		labels = args.Labels
	}
	rows, err := s.pool.Query(ctx, traverseSQL, ns, args.Start, args.MaxDepth,
		args.Direction != graph.In, args.Direction != graph.Out, labels, args.Limit)
	if err != nil {
		return graph.Traversal{}, fail(ctx, "traverse", err)
	}
	defer rows.Close()
	var t graph.Traversal
	for rows.Next() {
		var kind int
		var a, label string
		var b *string
		var depth *int
		var p []byte
		if err := rows.Scan(&kind, &a, &b, &depth, &label, &p); err != nil {
			return graph.Traversal{}, fail(ctx, "traverse", err)
		}
		if kind == 0 {
			t.Nodes = append(t.Nodes, graph.Visit{Node: graph.Node{ID: a, Label: label, Props: rawProps(p)}, Depth: *depth})
		} else {
			t.Edges = append(t.Edges, graph.Edge{From: a, To: *b, Label: label, Props: rawProps(p)})
		}
	}
	if err := rows.Err(); err != nil {
		return graph.Traversal{}, fail(ctx, "traverse", err)
	}
	if len(t.Nodes) == 0 {
		return graph.Traversal{}, fmt.Errorf("postgres graph: traverse: start node: %w", graph.ErrNotFound)
	}
	return result.Finish(t, args.Limit), nil
}

// loadChunk bounds the rows of one statement of a Load, so that a big load
// never builds a parameter message of hundreds of megabytes.
const loadChunk = 5000

// Load writes nodes and then edges in one transaction, loadChunk rows per
// statement, sent as one pipeline: all of them or, on any error, none.
func (s *Store) Load(ctx context.Context, ns string, nodes []graph.Node, edges []graph.Edge) error {
	if err := graph.ValidateLoad(nodes, edges); err != nil {
		return fmt.Errorf("postgres graph: load: %w", err)
	}
	var b pgx.Batch
	nodes = lastOfEach(nodes, func(n graph.Node) string { return n.ID })
	for chunk := range chunks(nodes) {
		ids, labels, ps := make([]string, len(chunk)), make([]string, len(chunk)), make([][]byte, len(chunk))
		for i, n := range chunk {
			ids[i], labels[i], ps[i] = n.ID, n.Label, props(n.Props)
		}
		b.Queue(loadNodesSQL, ns, ids, labels, ps)
	}
	edges = lastOfEach(edges, func(e graph.Edge) [3]string { return [3]string{e.From, e.To, e.Label} })
	for chunk := range chunks(edges) {
		src, dst, labels, ps := make([]string, len(chunk)), make([]string, len(chunk)), make([]string, len(chunk)), make([][]byte, len(chunk))
		for i, e := range chunk {
			src[i], dst[i], labels[i], ps[i] = e.From, e.To, e.Label, props(e.Props)
		}
		b.Queue(loadEdgesSQL, ns, src, dst, labels, ps)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fail(ctx, "load", err)
	}
	return nil
}

// lastOfEach drops every item whose key comes again later, keeping the
// order of the rest: a Load applies the last occurrence of a key.
func lastOfEach[T any, K comparable](items []T, key func(T) K) []T {
	last := make(map[K]int, len(items))
	for i, it := range items {
		last[key(it)] = i
	}
	if len(last) == len(items) {
		return items
	}
	out := make([]T, 0, len(last))
	for i, it := range items {
		if last[key(it)] == i {
			out = append(out, it)
		}
	}
	return out
}

// chunks yields items loadChunk at a time.
func chunks[T any](items []T) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(items) > 0 {
			n := min(len(items), loadChunk)
			if !yield(items[:n]) {
				return
			}
			items = items[n:]
		}
	}
}

// props is the value bound for props: NULL when empty.
func props(p json.RawMessage) []byte {
	if len(p) == 0 {
		return nil
	}
	return p
}

// rawProps turns a scanned props column back into props: nil when NULL.
func rawProps(p []byte) json.RawMessage {
	if len(p) == 0 {
		return nil
	}
	return json.RawMessage(p)
}

// fail wraps err from the database. A foreign key violation (an edge to a
// missing node) is graph.ErrNotFound. Anything but a definite SQL error — a
// connection that failed or broke, a timeout, a cancelled context, a server
// shutting down, a deadlock or serialization failure (rolled back) — is
// marked graph.ErrUnavailable: the operation may succeed when retried.
func fail(ctx context.Context, op string, err error) error {
	prefix := "postgres graph: " + op + ": "
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return fmt.Errorf("%san endpoint of the edge: %w", prefix, graph.ErrNotFound)
	}
	return pgerr.Wrap(ctx, prefix, graph.ErrUnavailable, err)
}
