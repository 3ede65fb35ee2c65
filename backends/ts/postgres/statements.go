package postgres

// schemaSQL creates the tables all namespaces share, in the first schema of
// the connection's search_path. time is unix nanoseconds (timestamptz
// keeps only microseconds); data is the event's JSON as sent (bytea keeps
// it byte for byte); id is NULL when the event has none, so the partial
// unique index de-duplicates only events with an id, for as long as they
// are kept.
//
// prism_ts_series holds each series' last seq. An append takes its row
// lock for the rest of its transaction, so appends to one series commit in
// seq order and a tail that has read up to seq n never misses a later
// commit with a smaller seq (seqs are visible before the lock is released).
// Appends to different series do not wait for each other.
//
// prism_ts_namespaces holds the seal state of a namespace in a migration
// (ts.Replica); no row is not sealed with floor 0, as in databases made
// before it existed. floor is where Seal stopped appends, or the highest
// floor Unseal was given: every append positions events above it (and
// above the series' last_seq), so a new series too starts above it.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS prism_ts_series (
	ns       text   NOT NULL,
	series   text   NOT NULL,
	last_seq bigint NOT NULL,
	PRIMARY KEY (ns, series)
);
CREATE TABLE IF NOT EXISTS prism_ts_events (
	ns     text   NOT NULL,
	series text   NOT NULL,
	seq    bigint NOT NULL,
	time   bigint NOT NULL,
	id     text,
	data   bytea  NOT NULL,
	tags   jsonb,
	PRIMARY KEY (ns, series, seq)
);
CREATE INDEX IF NOT EXISTS prism_ts_events_time ON prism_ts_events (ns, series, time, seq);
CREATE UNIQUE INDEX IF NOT EXISTS prism_ts_events_id ON prism_ts_events (ns, series, id) WHERE id IS NOT NULL;
CREATE TABLE IF NOT EXISTS prism_ts_namespaces (
	ns     text    PRIMARY KEY,
	sealed boolean NOT NULL,
	floor  bigint  NOT NULL
)`

// schemaLock serializes schema creation between gateways starting at once:
// concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's unique
// indexes. The key is arbitrary but fixed ("prism_ts" in ASCII, as an int8).
const schemaLock = `SELECT pg_advisory_xact_lock(8102654624087045235)`

// channel is the LISTEN/NOTIFY channel; the payload is the tag of the
// series (cursor.Tag.String()), which also names the waiters to wake.
const channel = "prism_ts"

// Seal and appends meet on a per-namespace advisory lock (sealLock): an
// append batch takes it shared as its first statement and holds it to its
// commit; Seal and Unseal take it exclusive. So Seal waits for the appends
// in flight to commit, and an append that comes later waits for Seal to
// commit and then reads the seal state in its next statement, with a fresh
// snapshot (READ COMMITTED, which Open requires). The lock statement adds
// no round trip: it is pipelined with the append's statements.
const (
	lockSharedSQL    = `SELECT pg_advisory_xact_lock_shared($1)`
	lockExclusiveSQL = `SELECT pg_advisory_xact_lock($1)`
)

// appendSQL appends the events of one series in one statement: $1 ns,
// $2 series, $3 the number of events, $4.. their times, ids, data and tags
// as arrays, $8 the notification payload. Unless the namespace is sealed,
// it reserves $3 seqs in the series' counter (taking its row lock) above
// both the counter and the namespace's floor, inserts the events with the
// reserved seqs in order, skipping duplicate ids (a duplicate leaves a gap
// in seq, which is fine: positions need only grow), and notifies tails on
// commit when anything was inserted. It returns whether the namespace is
// sealed, the base of the reserved seqs and the seqs inserted: event i of
// the arrays (from 1) got base+i.
const appendSQL = `
WITH state AS (
	SELECT coalesce(bool_or(sealed), false) AS sealed, coalesce(max(floor), 0) AS floor
	FROM prism_ts_namespaces WHERE ns = $1
), counter AS (
	INSERT INTO prism_ts_series AS s (ns, series, last_seq)
	SELECT $1, $2, state.floor + $3 FROM state WHERE NOT state.sealed
	ON CONFLICT (ns, series) DO UPDATE SET last_seq = greatest(s.last_seq + $3, EXCLUDED.last_seq)
	RETURNING s.last_seq - $3 AS base
), inserted AS (
	INSERT INTO prism_ts_events (ns, series, seq, time, id, data, tags)
	SELECT $1, $2, counter.base + e.ord, e.time, e.id, e.data, e.tags
	FROM counter, unnest($4::bigint[], $5::text[], $6::bytea[], $7::jsonb[]) WITH ORDINALITY AS e(time, id, data, tags, ord)
	ON CONFLICT (ns, series, id) WHERE id IS NOT NULL DO NOTHING
	RETURNING seq
)
SELECT state.sealed, coalesce((SELECT base FROM counter), 0), c.seqs,
	CASE WHEN c.n > 0 THEN pg_notify('` + channel + `', $8) END::text
FROM state, (SELECT count(*) AS n, array_agg(seq) AS seqs FROM inserted) AS c`

// copySQL stores copies of events of one series at their seqs: $1 ns,
// $2 series, $3 the largest seq of the copies, $4.. their seqs, times,
// ids, data and tags as arrays, $9 the notification payload. It first
// raises the series' counter to $3 (taking its row lock, as appends do),
// so a later append positions above the copies, then inserts them,
// skipping any whose seq or id the series holds already: that is the same
// event, copied before. It ignores the seal: copies are what a sealed
// namespace takes.
const copySQL = `
WITH counter AS (
	INSERT INTO prism_ts_series AS s (ns, series, last_seq) VALUES ($1, $2, $3)
	ON CONFLICT (ns, series) DO UPDATE SET last_seq = greatest(s.last_seq, EXCLUDED.last_seq)
	RETURNING 1
), inserted AS (
	INSERT INTO prism_ts_events (ns, series, seq, time, id, data, tags)
	SELECT $1, $2, e.seq, e.time, e.id, e.data, e.tags
	FROM counter, unnest($4::bigint[], $5::bigint[], $6::text[], $7::bytea[], $8::jsonb[]) AS e(seq, time, id, data, tags)
	ON CONFLICT DO NOTHING
	RETURNING 1
)
SELECT n, CASE WHEN n > 0 THEN pg_notify('` + channel + `', $9) END::text
FROM (SELECT count(*) AS n FROM inserted) AS c`

// sealSQL seals $1 (under the exclusive lock) at the highest seq of its
// series, or at its floor when that is higher, and returns the floor;
// sealed again it keeps its floor, so Seal is idempotent.
const sealSQL = `
INSERT INTO prism_ts_namespaces AS n (ns, sealed, floor)
SELECT $1, true, coalesce(max(last_seq), 0) FROM prism_ts_series WHERE ns = $1
ON CONFLICT (ns) DO UPDATE SET sealed = true,
	floor = CASE WHEN n.sealed THEN n.floor ELSE greatest(n.floor, EXCLUDED.floor) END
RETURNING floor`

// unsealSQL: $1 ns, $2 floor; a floor never goes down.
const unsealSQL = `
INSERT INTO prism_ts_namespaces AS n (ns, sealed, floor) VALUES ($1, false, $2)
ON CONFLICT (ns) DO UPDATE SET sealed = false, floor = greatest(n.floor, EXCLUDED.floor)`

const (
	dropEventsSQL = `DELETE FROM prism_ts_events WHERE ns = $1`
	dropSeriesSQL = `DELETE FROM prism_ts_series WHERE ns = $1`
	dropStateSQL  = `DELETE FROM prism_ts_namespaces WHERE ns = $1`

	// sweepSQL deletes a bounded number of expired events of a namespace
	// ($1 ns, $2 oldest time kept, $3 batch size).
	sweepSQL = `
DELETE FROM prism_ts_events WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM prism_ts_events WHERE ns = $1 AND time < $2 LIMIT $3
))`
)

// Read statements. Query bounds: $3 lowest time (inclusive), $4 highest
// time (exclusive), $5 and $6 the cursor's (time, seq), $7 the row limit.
const (
	queryAscSQL = `
SELECT seq, time, id, data, tags::text FROM prism_ts_events
WHERE ns = $1 AND series = $2 AND time >= $3 AND time < $4 AND (time > $5 OR seq > $6)
ORDER BY time, seq LIMIT $7`

	queryDescSQL = `
SELECT seq, time, id, data, tags::text FROM prism_ts_events
WHERE ns = $1 AND series = $2 AND time >= $3 AND time < $4 AND (time < $5 OR seq < $6)
ORDER BY time DESC, seq DESC LIMIT $7`

	// tailSQL: $3 the last seq seen, $4 the row limit. A sealed namespace
	// is tailed up to its floor: copies stored above it are not in its
	// append order.
	tailSQL = `
SELECT seq, time, id, data, tags::text FROM prism_ts_events
WHERE ns = $1 AND series = $2 AND seq > $3
	AND seq <= coalesce((SELECT floor FROM prism_ts_namespaces WHERE ns = $1 AND sealed), 9223372036854775807)
ORDER BY seq LIMIT $4`

	// endSQL is where a tail without cursor starts: the series' counter,
	// or the floor of a sealed namespace when copies raised the counter
	// above it (appends after the handover are positioned above the floor
	// in the other store).
	endSQL = `
SELECT least(
	coalesce((SELECT last_seq FROM prism_ts_series WHERE ns = $1 AND series = $2), 0),
	coalesce((SELECT floor FROM prism_ts_namespaces WHERE ns = $1 AND sealed), 9223372036854775807))`

	// exportSQL: after ($2 series, $3 seq), $4..$5 the time bounds, $6 the
	// row limit; (series, seq) order follows the primary key.
	exportSQL = `
SELECT series, seq, time, id, data, tags::text FROM prism_ts_events
WHERE ns = $1 AND (series, seq) > ($2, $3) AND time >= $4 AND time < $5
ORDER BY series, seq LIMIT $6`

	countSQL = `SELECT count(*) FROM prism_ts_events WHERE ns = $1 AND time >= $2 AND time < $3`
)
