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
CREATE UNIQUE INDEX IF NOT EXISTS prism_ts_events_id ON prism_ts_events (ns, series, id) WHERE id IS NOT NULL`

// schemaLock serializes schema creation between gateways starting at once:
// concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's unique
// indexes. The key is arbitrary but fixed ("prism_ts" in ASCII, as an int8).
const schemaLock = `SELECT pg_advisory_xact_lock(8102654624087045235)`

// channel is the LISTEN/NOTIFY channel; the payload is the tag of the
// series (cursor.Tag.String()), which also names the waiters to wake.
const channel = "prism_ts"

// appendSQL appends the events of one series in one statement: $1 ns,
// $2 series, $3 the number of events, $4.. their times, ids, data and tags
// as arrays, $8 the notification payload. It reserves $3 seqs in the
// series' counter (taking its row lock), inserts the events with the
// reserved seqs in order, skipping duplicate ids (a duplicate leaves a gap
// in seq, which is fine: positions need only grow), and notifies tails on
// commit when anything was inserted.
const appendSQL = `
WITH counter AS (
	INSERT INTO prism_ts_series AS s (ns, series, last_seq) VALUES ($1, $2, $3)
	ON CONFLICT (ns, series) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq
	RETURNING s.last_seq - $3 AS base
), inserted AS (
	INSERT INTO prism_ts_events (ns, series, seq, time, id, data, tags)
	SELECT $1, $2, counter.base + e.ord, e.time, e.id, e.data, e.tags
	FROM counter, unnest($4::bigint[], $5::text[], $6::bytea[], $7::jsonb[]) WITH ORDINALITY AS e(time, id, data, tags, ord)
	ON CONFLICT (ns, series, id) WHERE id IS NOT NULL DO NOTHING
	RETURNING 1
)
SELECT n, CASE WHEN n > 0 THEN pg_notify('` + channel + `', $8) END::text
FROM (SELECT count(*) AS n FROM inserted) AS c`

const (
	dropEventsSQL = `DELETE FROM prism_ts_events WHERE ns = $1`
	dropSeriesSQL = `DELETE FROM prism_ts_series WHERE ns = $1`

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

	// tailSQL: $3 the last seq seen, $4 the row limit.
	tailSQL = `
SELECT seq, time, id, data, tags::text FROM prism_ts_events
WHERE ns = $1 AND series = $2 AND seq > $3
ORDER BY seq LIMIT $4`

	endSQL = `SELECT coalesce((SELECT last_seq FROM prism_ts_series WHERE ns = $1 AND series = $2), 0)`

	// exportSQL: after ($2 series, $3 seq), $4..$5 the time bounds, $6 the
	// row limit; (series, seq) order follows the primary key.
	exportSQL = `
SELECT series, seq, time, id, data, tags::text FROM prism_ts_events
WHERE ns = $1 AND (series, seq) > ($2, $3) AND time >= $4 AND time < $5
ORDER BY series, seq LIMIT $6`

	countSQL = `SELECT count(*) FROM prism_ts_events WHERE ns = $1 AND time >= $2 AND time < $3`
)
