// Package sqlite is the embedded Graph driver, registered as "sqlite". All
// namespaces share two tables, nodes and edges, in one database file (which
// may be the file of the KV driver: the tables do not collide).
//
// Writes go through a single connection whose transactions begin IMMEDIATE;
// reads use a separate pool and, thanks to WAL, never wait for the writer.
// A traversal is one recursive CTE (see traverseSQL), so it reads one
// snapshot and costs one statement whatever its depth.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/internal/result"
	"github.com/prism-gw/prism/backends/internal/sqlitedb"
	modsqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func init() {
	graph.Register("sqlite", func(ctx context.Context, dsn string) (graph.Store, error) {
		path, opts, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return Open(ctx, path, opts)
	})
}

// Store is a graph.Store in a SQLite database file.
type Store struct {
	w, r *sql.DB // w has exactly one connection: SQLite has one writer
	stmt statements

	closeOnce sync.Once
	closeErr  error
}

var (
	_ graph.Store  = (*Store)(nil)
	_ graph.Loader = (*Store)(nil)
)

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(path); err != nil {
		return nil, err
	}
	w, r, err := sqlitedb.Open(ctx, "sqlite graph", path, opts.common(), writerExtra, schemaSQL, fail)
	if err != nil {
		return nil, err
	}
	s := &Store{w: w, r: r}
	if err := s.stmt.prepare(ctx, w, r); err != nil {
		s.stmt.close()
		r.Close()
		w.Close()
		return nil, fail(ctx, "prepare", err)
	}
	return s, nil
}

// Close checkpoints the WAL into the database file and closes the
// connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		errS := s.stmt.close()
		errR := s.r.Close()
		// With the readers gone the checkpoint can copy every frame and
		// truncate the WAL.
		_, errC := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errW := s.w.Close()
		if err := errors.Join(errS, errR, errC, errW); err != nil {
			s.closeErr = fmt.Errorf("sqlite graph: close: %w", err)
		}
	})
	return s.closeErr
}

// PutNode creates the node or replaces its label and props.
func (s *Store) PutNode(ctx context.Context, ns string, n graph.Node) error {
	if err := n.Validate(); err != nil {
		return fmt.Errorf("sqlite graph: put node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "put node", err)
	}
	if _, err := s.stmt.putNode.ExecContext(ctx, ns, n.ID, n.Label, props(n.Props)); err != nil {
		return fail(ctx, "put node", err)
	}
	return nil
}

// GetNode returns the node with id.
func (s *Store) GetNode(ctx context.Context, ns, id string) (graph.Node, error) {
	if err := graph.ValidateID(id); err != nil {
		return graph.Node{}, fmt.Errorf("sqlite graph: get node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return graph.Node{}, fail(ctx, "get node", err)
	}
	n := graph.Node{ID: id}
	var p []byte
	err := s.stmt.getNode.QueryRowContext(ctx, ns, id).Scan(&n.Label, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return graph.Node{}, fmt.Errorf("sqlite graph: get node: %w", graph.ErrNotFound)
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
		return fmt.Errorf("sqlite graph: delete node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "delete node", err)
	}
	if _, err := s.stmt.deleteNode.ExecContext(ctx, ns, id); err != nil {
		return fail(ctx, "delete node", err)
	}
	return nil
}

// PutEdge creates the edge or replaces its props.
func (s *Store) PutEdge(ctx context.Context, ns string, e graph.Edge) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("sqlite graph: put edge: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "put edge", err)
	}
	if err := putEdge(ctx, s.stmt.putEdge, ns, e); err != nil {
		return fmt.Errorf("sqlite graph: put edge: %w", err)
	}
	return nil
}

// putEdge runs stmt (putEdgeSQL, possibly bound to a transaction) for e.
// Errors carry no package prefix.
func putEdge(ctx context.Context, stmt *sql.Stmt, ns string, e graph.Edge) error {
	if _, err := stmt.ExecContext(ctx, ns, e.From, e.To, e.Label, props(e.Props)); err != nil {
		return fail(ctx, "", err)
	}
	return nil
}

// DeleteEdge deletes the edge (from, to, label).
func (s *Store) DeleteEdge(ctx context.Context, ns, from, to, label string) error {
	if err := graph.ValidateEdgeKey(from, to, label); err != nil {
		return fmt.Errorf("sqlite graph: delete edge: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "delete edge", err)
	}
	if _, err := s.stmt.deleteEdge.ExecContext(ctx, ns, from, to, label); err != nil {
		return fail(ctx, "delete edge", err)
	}
	return nil
}

// Edges lists the edges of node id.
func (s *Store) Edges(ctx context.Context, ns, id string, dir graph.Direction, label string) ([]graph.Edge, error) {
	if err := graph.ValidateEdgesQuery(id, dir, label); err != nil {
		return nil, fmt.Errorf("sqlite graph: edges: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "edges", err)
	}
	var labelArg any
	if label != "" {
		labelArg = label
	}
	rows, err := s.stmt.edges.QueryContext(ctx, ns, id, labelArg, dir != graph.In, dir != graph.Out)
	if err != nil {
		return nil, fail(ctx, "edges", err)
	}
	defer rows.Close()
	edges := []graph.Edge{}
	for rows.Next() {
		var src, dst, lbl sql.NullString
		var p []byte
		if err := rows.Scan(&src, &dst, &lbl, &p); err != nil {
			return nil, fail(ctx, "edges", err)
		}
		if !src.Valid {
			return nil, fmt.Errorf("sqlite graph: edges: node: %w", graph.ErrNotFound)
		}
		edges = append(edges, graph.Edge{From: src.String, To: dst.String, Label: lbl.String, Props: rawProps(p)})
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
		return graph.Traversal{}, fmt.Errorf("sqlite graph: traverse: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return graph.Traversal{}, fail(ctx, "traverse", err)
	}
	var labels any
	if len(args.Labels) > 0 {
		b, err := json.Marshal(args.Labels)
		if err != nil {
			return graph.Traversal{}, fmt.Errorf("sqlite graph: traverse: labels: %w", err)
		}
		labels = string(b)
	}
	rows, err := s.stmt.traverse.QueryContext(ctx, ns, args.Start, args.MaxDepth,
		args.Direction != graph.In, args.Direction != graph.Out, labels, args.Limit)
	if err != nil {
		return graph.Traversal{}, fail(ctx, "traverse", err)
	}
	defer rows.Close()
	var t graph.Traversal
	for rows.Next() {
		var kind int
		var a, label string
		var b sql.NullString
		var depth sql.NullInt64
		var p []byte
		if err := rows.Scan(&kind, &a, &b, &depth, &label, &p); err != nil {
			return graph.Traversal{}, fail(ctx, "traverse", err)
		}
		if kind == 0 {
			t.Nodes = append(t.Nodes, graph.Visit{Node: graph.Node{ID: a, Label: label, Props: rawProps(p)}, Depth: int(depth.Int64)})
		} else {
			t.Edges = append(t.Edges, graph.Edge{From: a, To: b.String, Label: label, Props: rawProps(p)})
		}
	}
	if err := rows.Err(); err != nil {
		return graph.Traversal{}, fail(ctx, "traverse", err)
	}
	if len(t.Nodes) == 0 {
		return graph.Traversal{}, fmt.Errorf("sqlite graph: traverse: start node: %w", graph.ErrNotFound)
	}
	return result.Finish(t, args.Limit), nil
}

// Load writes nodes and then edges in one IMMEDIATE transaction: all of
// them or, on any error, none.
func (s *Store) Load(ctx context.Context, ns string, nodes []graph.Node, edges []graph.Edge) error {
	if err := graph.ValidateLoad(nodes, edges); err != nil {
		return fmt.Errorf("sqlite graph: load: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "load", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, "load: begin", err)
	}
	defer tx.Rollback() // no-op after Commit
	putNode, putEdgeStmt := tx.StmtContext(ctx, s.stmt.putNode), tx.StmtContext(ctx, s.stmt.putEdge)
	for _, n := range nodes {
		if _, err := putNode.ExecContext(ctx, ns, n.ID, n.Label, props(n.Props)); err != nil {
			return fail(ctx, "load", err)
		}
	}
	for i, e := range edges {
		if err := putEdge(ctx, putEdgeStmt, ns, e); err != nil {
			return fmt.Errorf("sqlite graph: load: edge %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, "load: commit", err)
	}
	return nil
}

// props is the value bound for props: NULL when empty.
func props(p json.RawMessage) any {
	if len(p) == 0 {
		return nil
	}
	return []byte(p)
}

// rawProps turns a scanned props column back into props: nil when NULL.
func rawProps(p []byte) json.RawMessage {
	if len(p) == 0 {
		return nil
	}
	return json.RawMessage(p)
}

// fail wraps err from the database, marking it graph.ErrUnavailable when
// the operation could not run (cancelled, timed out, locked, I/O or
// resource failure) and graph.ErrNotFound for a foreign key violation (an
// edge to a missing node), as opposed to a definite SQL error.
func fail(ctx context.Context, op string, err error) error {
	// Without op the error is for a caller that adds the prefix itself.
	prefix := ""
	if op != "" {
		prefix = "sqlite graph: " + op + ": "
	}
	// A foreign key failure is never transient; it means a missing node,
	// unless the context ended meanwhile.
	var e *modsqlite.Error
	if ctx.Err() == nil && errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return fmt.Errorf("%san endpoint of the edge: %w: %w", prefix, graph.ErrNotFound, err)
	}
	return sqlitedb.Wrap(ctx, prefix, graph.ErrUnavailable, err)
}
