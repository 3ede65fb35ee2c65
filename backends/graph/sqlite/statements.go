package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// schemaSQL creates the two tables all namespaces share. TEXT compares with
// the BINARY collation (memcmp), so ORDER BY id is the API's byte order.
//
// Edges are indexed both ways, (ns, src, label, dst) for out and
// (ns, dst, label, src) for in; both indexes cover a traversal step, which
// never reads an edge's row. The foreign keys make an edge to a missing node
// impossible and delete a node's edges with it (the writer connection turns
// foreign_keys on). Props are BLOBs, NULL when empty, stored byte for byte.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS prism_graph_nodes (
	ns    TEXT NOT NULL,
	id    TEXT NOT NULL,
	label TEXT NOT NULL,
	props BLOB,
	PRIMARY KEY (ns, id)
);
CREATE TABLE IF NOT EXISTS prism_graph_edges (
	ns    TEXT NOT NULL,
	src   TEXT NOT NULL,
	dst   TEXT NOT NULL,
	label TEXT NOT NULL,
	props BLOB,
	PRIMARY KEY (ns, src, label, dst),
	FOREIGN KEY (ns, src) REFERENCES prism_graph_nodes (ns, id) ON DELETE CASCADE,
	FOREIGN KEY (ns, dst) REFERENCES prism_graph_nodes (ns, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS prism_graph_edges_in ON prism_graph_edges (ns, dst, label, src);
`

// Write statements. Parameters: ?1 ns, then the node (?2 id, ?3 label,
// ?4 props) or the edge (?2 src, ?3 dst, ?4 label, ?5 props).
const (
	putNodeSQL = `
INSERT INTO prism_graph_nodes (ns, id, label, props) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (ns, id) DO UPDATE SET label = excluded.label, props = excluded.props`

	// deleteNodeSQL deletes the node's edges through the foreign keys'
	// ON DELETE CASCADE.
	deleteNodeSQL = `DELETE FROM prism_graph_nodes WHERE ns = ?1 AND id = ?2`

	// putEdgeSQL relies on the foreign keys: an edge to a missing node
	// fails with SQLITE_CONSTRAINT_FOREIGNKEY, which the driver reports as
	// graph.ErrNotFound. (A separate existence check would cost two more
	// index probes per edge for nothing: SQLite has one writer.)
	putEdgeSQL = `
INSERT INTO prism_graph_edges (ns, src, dst, label, props) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (ns, src, label, dst) DO UPDATE SET props = excluded.props`

	deleteEdgeSQL = `DELETE FROM prism_graph_edges WHERE ns = ?1 AND src = ?2 AND label = ?4 AND dst = ?3`
)

// Read statements.
const (
	getNodeSQL = `SELECT label, props FROM prism_graph_nodes WHERE ns = ?1 AND id = ?2`

	// edgesSQL: ?1 ns, ?2 node, ?3 label or NULL, ?4 follow out, ?5 follow
	// in. With both directions a self-loop comes from the first branch
	// only. The last branch yields a row of NULLs when the node is absent,
	// so that one statement (one snapshot) tells "no edges" from "no node".
	edgesSQL = `
SELECT src, dst, label, props FROM prism_graph_edges
WHERE ?4 AND ns = ?1 AND src = ?2 AND (?3 IS NULL OR label = ?3)
UNION ALL
SELECT src, dst, label, props FROM prism_graph_edges
WHERE ?5 AND ns = ?1 AND dst = ?2 AND (?3 IS NULL OR label = ?3) AND NOT (?4 AND src = ?2)
UNION ALL
SELECT NULL, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM prism_graph_nodes WHERE ns = ?1 AND id = ?2)`
)

// traverseSQL is a whole traversal in one statement, so it reads one
// snapshot. Parameters: ?1 ns, ?2 start, ?3 max depth, ?4 follow out,
// ?5 follow in, ?6 the label filter as a JSON array or NULL, ?7 limit.
//
// bfs produces one row per level: the level's nodes (frontier) and every
// node of the levels before it (seen), both as JSON arrays. The next
// frontier is the neighbours of the frontier minus the frontier and seen,
// so each node is expanded once, at its least depth, and cycles end. That
// visited set is what a row-per-(node, depth) recursion cannot have: there
// a node is reached again at every depth a walk can come back to it (at
// d+2 through any edge when following both ways) and is expanded again each
// time, up to MaxDepth times over on a dense cyclic graph. The cost here is
// one index probe per frontier node and edge followed plus re-reading seen
// once per level (MaxDepth × reached nodes at most, in C, no I/O).
//
// The recursion stops below MaxDepth, at an empty frontier, or once more
// than limit nodes are known: the level that crossed the limit is complete,
// so found holds the first limit+1 nodes in (depth, id) order and the
// driver reports Truncated when it gets limit+1. The edges returned are
// those between the first limit nodes (kept): each kept node's out edges
// whose other end is kept, found through the out index.
//
// Rows: (kind, id or src, dst, depth, label, props); kind 0 is a node
// (dst NULL), kind 1 an edge (depth NULL).
const traverseSQL = `
WITH RECURSIVE
bfs(depth, frontier, seen) AS (
	SELECT 0, json_array(id), '[]' FROM prism_graph_nodes WHERE ns = ?1 AND id = ?2
	UNION ALL
	SELECT depth + 1,
		(SELECT json_group_array(id) FROM (
			SELECT e.dst AS id FROM json_each(bfs.frontier) AS f
				CROSS JOIN prism_graph_edges AS e ON e.ns = ?1 AND e.src = f.value
				WHERE ?4 AND (?6 IS NULL OR e.label IN (SELECT value FROM json_each(?6)))
			UNION
			SELECT e.src FROM json_each(bfs.frontier) AS f
				CROSS JOIN prism_graph_edges AS e ON e.ns = ?1 AND e.dst = f.value
				WHERE ?5 AND (?6 IS NULL OR e.label IN (SELECT value FROM json_each(?6)))
			EXCEPT SELECT value FROM json_each(bfs.frontier)
			EXCEPT SELECT value FROM json_each(bfs.seen)
		)),
		CASE WHEN seen = '[]' THEN frontier
			ELSE substr(seen, 1, length(seen) - 1) || ',' || substr(frontier, 2) END
	FROM bfs
	WHERE depth < ?3 AND frontier <> '[]'
		AND json_array_length(seen) + json_array_length(frontier) <= ?7
),
found(id, depth) AS MATERIALIZED (
	SELECT f.value, bfs.depth FROM bfs, json_each(bfs.frontier) AS f
	ORDER BY bfs.depth, f.value LIMIT ?7 + 1
),
kept(id) AS MATERIALIZED (
	SELECT id FROM found ORDER BY depth, id LIMIT ?7
)
SELECT 0, f.id, NULL, f.depth, n.label, n.props
FROM found AS f CROSS JOIN prism_graph_nodes AS n ON n.ns = ?1 AND n.id = f.id
UNION ALL
SELECT 1, e.src, e.dst, NULL, e.label, e.props
FROM kept AS k CROSS JOIN prism_graph_edges AS e ON e.ns = ?1 AND e.src = k.id
WHERE e.dst IN (SELECT id FROM kept)
	AND (?6 IS NULL OR e.label IN (SELECT value FROM json_each(?6)))`

// statements are prepared once per store: writes on the writer connection,
// reads on the reader pool.
type statements struct {
	putNode, deleteNode, putEdge, deleteEdge *sql.Stmt
	getNode, edges, traverse                 *sql.Stmt
}

func (st *statements) prepare(ctx context.Context, w, r *sql.DB) error {
	var err error
	prep := func(db *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var stmt *sql.Stmt
		stmt, err = db.PrepareContext(ctx, query)
		return stmt
	}
	st.putNode = prep(w, putNodeSQL)
	st.deleteNode = prep(w, deleteNodeSQL)
	st.putEdge = prep(w, putEdgeSQL)
	st.deleteEdge = prep(w, deleteEdgeSQL)
	st.getNode = prep(r, getNodeSQL)
	st.edges = prep(r, edgesSQL)
	st.traverse = prep(r, traverseSQL)
	return err
}

func (st *statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.putNode, st.deleteNode, st.putEdge, st.deleteEdge, st.getNode, st.edges, st.traverse} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
