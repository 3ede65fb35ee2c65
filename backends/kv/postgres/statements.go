package postgres

// schemaSQL creates the one table all namespaces share, in the first schema
// of the connection's search_path, and the table of the tombstones a
// kv.Replica keeps while it is a migration's target (their own table, so
// that reads never look at them). Every statement is idempotent: opening a
// database made by an older version adds what is missing. bytea compares
// bytewise, so index order is the API's byte order of keys whatever the
// database's collation.
// expires_at is unix nanoseconds, NULL for no expiry; an expired row counts
// as absent everywhere until the sweeper deletes it.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS prism_kv (
	ns           text   NOT NULL,
	key          bytea  NOT NULL,
	value        bytea  NOT NULL,
	content_type text   NOT NULL,
	version      bigint NOT NULL,
	expires_at   bigint,
	PRIMARY KEY (ns, key)
);
CREATE INDEX IF NOT EXISTS prism_kv_expires_at ON prism_kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS prism_kv_tombstones (
	ns      text   NOT NULL,
	key     bytea  NOT NULL,
	version bigint NOT NULL,
	PRIMARY KEY (ns, key)
)`

// schemaLock serializes schema creation between gateways starting at once:
// concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's unique
// indexes. The key is arbitrary but fixed ("prism_kv" in ASCII, as an int8).
const schemaLock = `SELECT pg_advisory_xact_lock(8102654624070069110)`

// Parameters of the write statements: $1 ns, $2 key, $3 value,
// $4 content_type, $5 now (unix nanos from the store's clock, also the
// candidate version), $6 expires_at, $7 the If-Match version.
//
// Each write is one statement, so under READ COMMITTED the row lock taken
// by the first writer makes the others wait and then re-evaluate their
// conditions against the committed row (INSERT ... ON CONFLICT DO UPDATE
// WHERE locks the conflicting row first; UPDATE/DELETE re-check WHERE on the
// newest row version). That makes If-Match and If-None-Match exactly-once.
//
// The version rule GREATEST(now, old + 1) keeps versions growing per key
// when the clock is behind the stored version (clock stepped back, or
// another gateway with a faster clock wrote the key).
const (
	putSQL = `
INSERT INTO prism_kv AS t (ns, key, value, content_type, version, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (ns, key) DO UPDATE SET
	value = EXCLUDED.value,
	content_type = EXCLUDED.content_type,
	version = GREATEST(EXCLUDED.version, t.version + 1),
	expires_at = EXCLUDED.expires_at
RETURNING version`

	// createSQL overwrites only an expired row; a live row makes the
	// upsert a no-op that returns no row, which the driver reports as
	// kv.ErrExists.
	createSQL = `
INSERT INTO prism_kv AS t (ns, key, value, content_type, version, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (ns, key) DO UPDATE SET
	value = EXCLUDED.value,
	content_type = EXCLUDED.content_type,
	version = GREATEST(EXCLUDED.version, t.version + 1),
	expires_at = EXCLUDED.expires_at
WHERE t.expires_at IS NOT NULL AND t.expires_at <= $5
RETURNING version`

	// updateSQL writes only a live row at the expected version; no row
	// returned means kv.ErrVersionMismatch.
	updateSQL = `
UPDATE prism_kv SET
	value = $3,
	content_type = $4,
	version = GREATEST($5, version + 1),
	expires_at = $6
WHERE ns = $1 AND key = $2 AND version = $7 AND (expires_at IS NULL OR expires_at > $5)
RETURNING version`

	// The deletes return the deleted row's version, from which
	// DeleteVersioned computes the delete's own.
	deleteSQL = `DELETE FROM prism_kv WHERE ns = $1 AND key = $2 RETURNING version`

	deleteIfMatchSQL = `
DELETE FROM prism_kv
WHERE ns = $1 AND key = $2 AND version = $3 AND (expires_at IS NULL OR expires_at > $4)
RETURNING version`

	// lockSQL locks a batch's existing rows in key order before its ops
	// run, so that two batches over the same keys queue instead of
	// deadlocking on rows they touch in different orders.
	lockSQL = `
SELECT 1 FROM prism_kv WHERE ns = $1 AND key = ANY($2) ORDER BY key FOR UPDATE`

	// sweepSQL deletes a bounded number of expired rows, skipping rows a
	// writer holds (it may be reviving them); the outer condition is
	// re-checked on the newest row version.
	sweepSQL = `
DELETE FROM prism_kv WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM prism_kv WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)) AND expires_at <= $1`
)

// Statements of kv.Replica. A copy touches two tables (the row and the
// tombstone), and a row lock cannot order it against a copy that is
// inserting the key's first row or tombstone: neither sees the other's
// uncommitted insert. So every copy of a key first takes a transaction-level
// advisory lock on the key (replicaLockSQL) and then, in a new snapshot,
// runs one statement that checks and writes both tables. Both are sent as
// one pipeline, which PostgreSQL runs as one implicit transaction: one
// round trip, all or nothing.
//
// A copy is compared with the stored row whether or not it has expired:
// until the sweeper removes it, an expired row keeps an older copy from
// resurrecting the key.
const (
	// replicaLockSQL: $1 the key's lock id (replicaLockID).
	replicaLockSQL = `SELECT pg_advisory_xact_lock($1)`

	// putVersionSQL: $1 ns, $2 key, $3 value, $4 content_type, $5 version,
	// $6 expires_at. It writes unless a tombstone or the row holds a
	// version >= $5, then drops the older tombstone; it returns whether it
	// wrote.
	putVersionSQL = `
WITH put AS (
	INSERT INTO prism_kv AS t (ns, key, value, content_type, version, expires_at)
	SELECT $1, $2, $3, $4, $5, $6
	WHERE NOT EXISTS (SELECT 1 FROM prism_kv_tombstones WHERE ns = $1 AND key = $2 AND version >= $5)
	ON CONFLICT (ns, key) DO UPDATE SET
		value = EXCLUDED.value,
		content_type = EXCLUDED.content_type,
		version = EXCLUDED.version,
		expires_at = EXCLUDED.expires_at
	WHERE t.version < EXCLUDED.version
	RETURNING 1
), cleared AS (
	DELETE FROM prism_kv_tombstones
	WHERE ns = $1 AND key = $2 AND version < $5 AND EXISTS (SELECT 1 FROM put)
)
SELECT EXISTS (SELECT 1 FROM put)`

	// replaceVersionSQL: $1 ns, $2 key, $3 value, $4 content_type, $5
	// version, $6 expires_at, $7 the version the row must still have. It
	// drops the key's older tombstones when it writes and returns whether
	// it wrote.
	replaceVersionSQL = `
WITH put AS (
	UPDATE prism_kv SET value = $3, content_type = $4, version = $5, expires_at = $6
	WHERE ns = $1 AND key = $2 AND version = $7
	RETURNING 1
), cleared AS (
	DELETE FROM prism_kv_tombstones
	WHERE ns = $1 AND key = $2 AND version < $5 AND EXISTS (SELECT 1 FROM put)
)
SELECT EXISTS (SELECT 1 FROM put)`

	// deleteVersionSQL: $1 ns, $2 key, $3 version. It records or raises
	// the tombstone unless the row or the tombstone holds a version >= $3,
	// then deletes the older row; it returns whether it did.
	deleteVersionSQL = `
WITH tomb AS (
	INSERT INTO prism_kv_tombstones AS tb (ns, key, version)
	SELECT $1, $2, $3
	WHERE NOT EXISTS (SELECT 1 FROM prism_kv WHERE ns = $1 AND key = $2 AND version >= $3)
	ON CONFLICT (ns, key) DO UPDATE SET version = EXCLUDED.version
	WHERE tb.version < EXCLUDED.version
	RETURNING 1
), deleted AS (
	DELETE FROM prism_kv
	WHERE ns = $1 AND key = $2 AND version < $3 AND EXISTS (SELECT 1 FROM tomb)
)
SELECT EXISTS (SELECT 1 FROM tomb)`

	dropTombstonesSQL = `DELETE FROM prism_kv_tombstones WHERE ns = $1`
)

// Read statements; "now" is the wall clock in unix nanos.
const (
	getSQL = `
SELECT value, content_type, version, expires_at FROM prism_kv
WHERE ns = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)`

	multiGetSQL = `
SELECT key, value, content_type, version, expires_at FROM prism_kv
WHERE ns = $1 AND key = ANY($2) AND (expires_at IS NULL OR expires_at > $3)`

	// scanFromSQL and scanRangeSQL: $1 ns, $2 lowest key, $3 now, $4 page
	// limit, $5 MaxBytes, and for the range $6 the exclusive upper key.
	//
	// It returns up to limit+1 rows so the last tells whether more remain,
	// but sends a value only for rows that can be on the page: within the
	// limit and with the values before them under MaxBytes (the same cut
	// kvsql.Pager makes). Otherwise a page of 1000 keys with 1 MiB values
	// would ship a gigabyte to keep one mebibyte.
	scanFromSQL  = scanHead + scanTail
	scanRangeSQL = scanHead + ` AND key < $6` + scanTail

	scanHead = `
SELECT key, content_type, version, expires_at,
	CASE WHEN n <= $4 AND before < $5 THEN value END
FROM (
	SELECT key, value, content_type, version, expires_at,
		row_number() OVER w AS n,
		COALESCE(sum(octet_length(value)) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
	FROM prism_kv
	WHERE ns = $1 AND key >= $2 AND (expires_at IS NULL OR expires_at > $3)`
	scanTail = `
	WINDOW w AS (ORDER BY key)
	ORDER BY key
	LIMIT $4 + 1
) AS page
ORDER BY key`
)
