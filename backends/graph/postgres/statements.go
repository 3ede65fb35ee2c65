package postgres

// schemaSQL creates the two tables all namespaces share, in the first
// schema of the connection's search_path. IDs and labels use the "C"
// collation, so ORDER BY is the API's byte order whatever the database's
// default collation, and comparisons never depend on the locale.
//
// Edges are indexed both ways, (ns, src, label, dst) for out and
// (ns, dst, label, src) for in; a traversal step reads only the index. The
// foreign keys make an edge to a missing node impossible, also against a
// concurrent DeleteNode (the check locks the node row), and delete a node's
// edges with it. Props are bytea, NULL when empty, stored byte for byte
// (jsonb would reorder keys and drop whitespace and duplicates).
const schemaSQL = `
CREATE TABLE IF NOT EXISTS prism_graph_nodes (
	ns    text COLLATE "C" NOT NULL,
	id    text COLLATE "C" NOT NULL,
	label text COLLATE "C" NOT NULL,
	props bytea,
	PRIMARY KEY (ns, id)
);
CREATE TABLE IF NOT EXISTS prism_graph_edges (
	ns    text COLLATE "C" NOT NULL,
	src   text COLLATE "C" NOT NULL,
	dst   text COLLATE "C" NOT NULL,
	label text COLLATE "C" NOT NULL,
	props bytea,
	PRIMARY KEY (ns, src, label, dst),
	FOREIGN KEY (ns, src) REFERENCES prism_graph_nodes (ns, id) ON DELETE CASCADE,
	FOREIGN KEY (ns, dst) REFERENCES prism_graph_nodes (ns, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS prism_graph_edges_in ON prism_graph_edges (ns, dst, label, src)`

// schemaLock serializes schema creation between gateways starting at once:
// concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's unique
// indexes. The key is arbitrary but fixed ("prism_gr" in ASCII, as an int8).
const schemaLock = `SELECT pg_advisory_xact_lock(8102654624054600306)`

// Write statements. Parameters: $1 ns, then the node ($2 id, $3 label,
// $4 props) or the edge ($2 src, $3 dst, $4 label, $5 props).
const (
	putNodeSQL = `
INSERT INTO prism_graph_nodes (ns, id, label, props) VALUES ($1, $2, $3, $4)
ON CONFLICT (ns, id) DO UPDATE SET label = EXCLUDED.label, props = EXCLUDED.props`

	// deleteNodeSQL deletes the node's edges through the foreign keys'
	// ON DELETE CASCADE.
	deleteNodeSQL = `DELETE FROM prism_graph_nodes WHERE ns = $1 AND id = $2`

	// putEdgeSQL relies on the foreign keys: an edge to a missing node
	// fails with foreign_key_violation, reported as graph.ErrNotFound.
	putEdgeSQL = `
INSERT INTO prism_graph_edges (ns, src, dst, label, props) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (ns, src, label, dst) DO UPDATE SET props = EXCLUDED.props`

	deleteEdgeSQL = `DELETE FROM prism_graph_edges WHERE ns = $1 AND src = $2 AND label = $4 AND dst = $3`

	// loadNodesSQL and loadEdgesSQL write a chunk of a Load: $2.. are
	// parallel arrays, one element per row, without duplicate keys (ON
	// CONFLICT cannot update a row twice in one statement).
	loadNodesSQL = `
INSERT INTO prism_graph_nodes (ns, id, label, props)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bytea[])
ON CONFLICT (ns, id) DO UPDATE SET label = EXCLUDED.label, props = EXCLUDED.props`

	loadEdgesSQL = `
INSERT INTO prism_graph_edges (ns, src, dst, label, props)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[])
ON CONFLICT (ns, src, label, dst) DO UPDATE SET props = EXCLUDED.props`
)

// Read statements.
const (
	getNodeSQL = `SELECT label, props FROM prism_graph_nodes WHERE ns = $1 AND id = $2`

	// edgesSQL: $1 ns, $2 node, $3 label or NULL, $4 follow out, $5 follow
	// in. With both directions a self-loop comes from the first branch
	// only. The last branch yields a row of NULLs when the node is absent,
	// so that one statement (one snapshot) tells "no edges" from "no node".
	edgesSQL = `
SELECT src, dst, label, props FROM prism_graph_edges
WHERE $4 AND ns = $1 AND src = $2 AND ($3::text IS NULL OR label = $3)
UNION ALL
SELECT src, dst, label, props FROM prism_graph_edges
WHERE $5 AND ns = $1 AND dst = $2 AND ($3::text IS NULL OR label = $3) AND NOT ($4 AND src = $2)
UNION ALL
SELECT NULL, NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM prism_graph_nodes WHERE ns = $1 AND id = $2)`
)

// traverseSQL is a whole traversal in one statement, so it reads one
// snapshot. Parameters: $1 ns, $2 start, $3 max depth, $4 follow out,
// $5 follow in, $6 the label filter or NULL, $7 limit.
//
// bfs produces one row per level: the level's nodes (frontier) and every
// node of the levels before it (seen), as arrays. The next frontier is the
// neighbours of the frontier minus the frontier and seen, so each node is
// expanded once, at its least depth, and cycles end. That visited set is
// what a row-per-(node, depth) recursion with UNION cannot have: there a
// node is reached again at every depth a walk can come back to it (at d+2
// through any edge when following both ways) and is expanded again each
// time, up to MaxDepth times over on a dense cyclic graph. Here a level
// costs one index probe per frontier node (= ANY on the edge indexes) and
// hashing the candidates against seen.
//
// The recursion stops below MaxDepth, at an empty frontier, or once more
// than limit nodes are known: the level that crossed the limit is complete,
// so found holds the first limit+1 nodes in (depth, id) order and the
// driver reports Truncated when it gets limit+1. The edges returned are
// those between the first limit nodes (kept): each kept node's out edges
// whose other end is kept.
//
// The planner cannot estimate how many rows a recursive CTE yields (it
// guesses a handful), so the last stage leaves it no join to choose: node
// rows and out edges are fetched per found node through LATERAL
// subqueries (LIMIT 1 and OFFSET 0 keep them from being flattened into a
// hash join over the whole namespace), and "the other end is kept" is a
// key lookup in a jsonb object of the kept IDs (a binary search), not a
// semi-join. With joins there, a generic plan took 22 s instead of 0.3 s
// for 10,000 nodes (a nested-loop semi-join), and with nested loops turned
// off a depth-1 traversal read every node and edge of its namespace.
//
// Rows: (kind, id or src, dst, depth, label, props); kind 0 is a node
// (dst NULL), kind 1 an edge (depth NULL).
const traverseSQL = `
WITH RECURSIVE
bfs (depth, frontier, seen) AS (
	SELECT 0, ARRAY[id], ARRAY[]::text[] COLLATE "C" FROM prism_graph_nodes WHERE ns = $1 AND id = $2
	UNION ALL
	SELECT b.depth + 1, nxt.ids, b.seen || b.frontier
	FROM bfs AS b
	CROSS JOIN LATERAL (
		SELECT COALESCE(array_agg(c.id), ARRAY[]::text[] COLLATE "C") AS ids FROM (
			SELECT e.dst AS id FROM prism_graph_edges AS e
			WHERE $4 AND e.ns = $1 AND e.src = ANY (b.frontier) AND ($6::text[] IS NULL OR e.label = ANY ($6))
			UNION
			SELECT e.src FROM prism_graph_edges AS e
			WHERE $5 AND e.ns = $1 AND e.dst = ANY (b.frontier) AND ($6::text[] IS NULL OR e.label = ANY ($6))
			EXCEPT SELECT unnest(b.frontier)
			EXCEPT SELECT unnest(b.seen)
		) AS c
	) AS nxt
	WHERE b.depth < $3 AND cardinality(b.frontier) > 0
		AND cardinality(b.seen) + cardinality(b.frontier) <= $7
),
found (id, depth) AS (
	SELECT f.id, b.depth FROM bfs AS b CROSS JOIN LATERAL unnest(b.frontier) AS f (id)
	ORDER BY b.depth, f.id COLLATE "C" LIMIT $7 + 1
),
kept (ids) AS (
	SELECT jsonb_object_agg(id, depth) FROM (
		SELECT id, depth FROM found ORDER BY depth, id COLLATE "C" LIMIT $7
	) AS k
)
SELECT 0, f.id, NULL, f.depth, n.label, n.props
FROM found AS f
CROSS JOIN LATERAL (
	SELECT label, props FROM prism_graph_nodes WHERE ns = $1 AND id = f.id LIMIT 1
) AS n
UNION ALL
SELECT 1, e.src, e.dst, NULL, e.label, e.props
FROM (SELECT jsonb_object_keys(ids) AS id FROM kept) AS k
CROSS JOIN LATERAL (
	SELECT src, dst, label, props FROM prism_graph_edges
	WHERE ns = $1 AND src = k.id AND ($6::text[] IS NULL OR label = ANY ($6))
	OFFSET 0
) AS e
WHERE (SELECT ids FROM kept) ? e.dst`
