package neptune

// The openCypher queries the driver sends: constants, every value bound as
// a parameter. Labels in Cypher (`:Label`, `[:TYPE]`) cannot be
// parameters, so the vertex label PrismNode and the relationship type
// PrismEdge are fixed, and the API's node and edge labels are the string
// properties `label`; no user input ever reaches the query text, whatever
// its characters.
//
// A vertex has ~id vertexID(ns, id) and the properties ns, id, label and
// props (the JSON text, absent when empty). An edge has ~id
// edgeID(ns, from, to, label) and the properties label and props. Custom
// ~ids (Neptune engine 1.2.0.2 and later) make MERGE exact under
// concurrency (Neptune enforces their uniqueness, not that of properties)
// and every lookup an ID lookup.
const (
	putNodeQuery = "MERGE (n:PrismNode {`~id`: $vid}) " +
		"SET n.ns = $ns, n.id = $id, n.label = $label, n.props = $props"

	getNodeQuery = "MATCH (n:PrismNode {`~id`: $vid}) RETURN n.label AS label, n.props AS props"

	deleteNodeQuery = "MATCH (n:PrismNode {`~id`: $vid}) DETACH DELETE n"

	// putEdgeQuery returns n = 0 when an endpoint is missing: the MATCH
	// finds no row and nothing is merged.
	putEdgeQuery = "MATCH (a:PrismNode {`~id`: $src}), (b:PrismNode {`~id`: $dst}) " +
		"MERGE (a)-[e:PrismEdge {`~id`: $eid}]->(b) " +
		"SET e.label = $label, e.props = $props RETURN count(e) AS n"

	deleteEdgeQuery = "MATCH ()-[e:PrismEdge {`~id`: $eid}]->() DELETE e"

	// The edges queries return no row when the node is absent and one row
	// with a null label when it has no (matching) edge. $label is "" for
	// no filter.
	edgesOutQuery = "MATCH (a:PrismNode {`~id`: $vid}) " +
		"OPTIONAL MATCH (a)-[e:PrismEdge]->(b:PrismNode) WHERE $label = '' OR e.label = $label " +
		"RETURN a.id AS src, b.id AS dst, e.label AS label, e.props AS props"
	edgesInQuery = "MATCH (a:PrismNode {`~id`: $vid}) " +
		"OPTIONAL MATCH (a)<-[e:PrismEdge]-(b:PrismNode) WHERE $label = '' OR e.label = $label " +
		"RETURN b.id AS src, a.id AS dst, e.label AS label, e.props AS props"
	// edgesBothQuery may return a self-loop twice (once per end); the
	// driver keeps one.
	edgesBothQuery = "MATCH (a:PrismNode {`~id`: $vid}) " +
		"OPTIONAL MATCH (a)-[e:PrismEdge]-(b:PrismNode) WHERE $label = '' OR e.label = $label " +
		"RETURN startNode(e).id AS src, endNode(e).id AS dst, e.label AS label, e.props AS props"

	// The step queries expand one level of a traversal: the IDs of the
	// neighbours of the frontier (vertex ~ids). $labels is [] for no
	// filter. The driver keeps the visited set, so a step never returns
	// more than the frontier's neighbours.
	stepOutQuery = "UNWIND $frontier AS v MATCH (:PrismNode {`~id`: v})-[e:PrismEdge]->(b:PrismNode) " +
		"WHERE size($labels) = 0 OR e.label IN $labels RETURN DISTINCT b.id AS id"
	stepInQuery = "UNWIND $frontier AS v MATCH (:PrismNode {`~id`: v})<-[e:PrismEdge]-(b:PrismNode) " +
		"WHERE size($labels) = 0 OR e.label IN $labels RETURN DISTINCT b.id AS id"
	stepBothQuery = "UNWIND $frontier AS v MATCH (:PrismNode {`~id`: v})-[e:PrismEdge]-(b:PrismNode) " +
		"WHERE size($labels) = 0 OR e.label IN $labels RETURN DISTINCT b.id AS id"

	// nodesQuery reads the nodes a traversal returns.
	nodesQuery = "UNWIND $vids AS v MATCH (n:PrismNode {`~id`: v}) " +
		"RETURN n.id AS id, n.label AS label, n.props AS props"

	// subgraphQuery reads the edges between the nodes a traversal returns.
	subgraphQuery = "UNWIND $vids AS v MATCH (a:PrismNode {`~id`: v})-[e:PrismEdge]->(b:PrismNode) " +
		"WHERE (size($labels) = 0 OR e.label IN $labels) AND id(b) IN $vids " +
		"RETURN a.id AS src, b.id AS dst, e.label AS label, e.props AS props"

	// The load queries write a chunk of a Load; loadEdgesQuery counts the
	// edges it merged, fewer than sent when an endpoint is missing.
	loadNodesQuery = "UNWIND $nodes AS x MERGE (n:PrismNode {`~id`: x.vid}) " +
		"SET n.ns = $ns, n.id = x.id, n.label = x.label, n.props = x.props"
	loadEdgesQuery = "UNWIND $edges AS x " +
		"MATCH (a:PrismNode {`~id`: x.src}), (b:PrismNode {`~id`: x.dst}) " +
		"MERGE (a)-[e:PrismEdge {`~id`: x.eid}]->(b) " +
		"SET e.label = x.label, e.props = x.props RETURN count(e) AS n"
)
