package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// schemaSQL creates the one table all namespaces share, and the table of
// the tombstones a kv.Replica keeps while it is a migration's target (their
// own table, so that reads never look at them). Every statement is
// idempotent: opening a database made by an older version adds what is
// missing. Keys are BLOBs so
// that SQLite compares them with memcmp: byte order, whatever the encoding.
// expires_at is unix nanoseconds, NULL for no expiry; an expired row counts
// as absent everywhere until the sweeper deletes it.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS prism_kv (
	ns           TEXT    NOT NULL,
	key          BLOB    NOT NULL,
	value        BLOB    NOT NULL,
	content_type TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	expires_at   INTEGER,
	PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS prism_kv_expires_at ON prism_kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS prism_kv_tombstones (
	ns      TEXT    NOT NULL,
	key     BLOB    NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (ns, key)
) WITHOUT ROWID;
`

// Parameters of the write statements: ?1 ns, ?2 key, ?3 value,
// ?4 content_type, ?5 now (unix nanos from the store's clock, also the
// candidate version), ?6 expires_at, ?7 the If-Match version.
//
// The version rule max(now, old + 1) keeps versions growing per key even
// when the clock is behind the stored version (clock stepped back, or
// another process with a faster clock wrote the key).
const (
	putSQL = `
INSERT INTO prism_kv (ns, key, value, content_type, version, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (ns, key) DO UPDATE SET
	value = excluded.value,
	content_type = excluded.content_type,
	version = max(excluded.version, prism_kv.version + 1),
	expires_at = excluded.expires_at
RETURNING version`

	// createSQL overwrites only an expired row; a live row makes the
	// upsert a no-op that returns no row, which the driver reports as
	// kv.ErrExists.
	createSQL = `
INSERT INTO prism_kv (ns, key, value, content_type, version, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (ns, key) DO UPDATE SET
	value = excluded.value,
	content_type = excluded.content_type,
	version = max(excluded.version, prism_kv.version + 1),
	expires_at = excluded.expires_at
WHERE prism_kv.expires_at IS NOT NULL AND prism_kv.expires_at <= ?5
RETURNING version`

	// updateSQL writes only a live row at the expected version; no row
	// returned means kv.ErrVersionMismatch.
	updateSQL = `
UPDATE prism_kv SET
	value = ?3,
	content_type = ?4,
	version = max(?5, version + 1),
	expires_at = ?6
WHERE ns = ?1 AND key = ?2 AND version = ?7 AND (expires_at IS NULL OR expires_at > ?5)
RETURNING version`

	// The deletes return the deleted row's version, from which
	// DeleteVersioned computes the delete's own.
	deleteSQL = `DELETE FROM prism_kv WHERE ns = ?1 AND key = ?2 RETURNING version`

	deleteIfMatchSQL = `
DELETE FROM prism_kv
WHERE ns = ?1 AND key = ?2 AND version = ?3 AND (expires_at IS NULL OR expires_at > ?4)
RETURNING version`

	sweepSQL = `
DELETE FROM prism_kv WHERE (ns, key) IN (
	SELECT ns, key FROM prism_kv WHERE expires_at <= ?1 LIMIT ?2
)`
)

// Statements of kv.Replica, run two to a transaction on the writer. A copy
// is compared with the stored row whether or not it has expired: until the
// sweeper removes it, an expired row keeps an older copy from resurrecting
// the key.
const (
	// putVersionSQL: ?1 ns, ?2 key, ?3 value, ?4 content_type, ?5 version,
	// ?6 expires_at. It writes unless a tombstone or the row holds a
	// version >= ?5, and returns a row only when it wrote.
	putVersionSQL = `
INSERT INTO prism_kv (ns, key, value, content_type, version, expires_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6
WHERE NOT EXISTS (SELECT 1 FROM prism_kv_tombstones WHERE ns = ?1 AND key = ?2 AND version >= ?5)
ON CONFLICT (ns, key) DO UPDATE SET
	value = excluded.value,
	content_type = excluded.content_type,
	version = excluded.version,
	expires_at = excluded.expires_at
WHERE prism_kv.version < excluded.version
RETURNING version`

	// replaceVersionSQL: ?1 ns, ?2 key, ?3 value, ?4 content_type, ?5
	// version, ?6 expires_at, ?7 the version the row must still have.
	replaceVersionSQL = `
UPDATE prism_kv SET value = ?3, content_type = ?4, version = ?5, expires_at = ?6
WHERE ns = ?1 AND key = ?2 AND version = ?7
RETURNING version`

	// clearTombstoneSQL: ?1 ns, ?2 key, ?3 version of the applied copy.
	clearTombstoneSQL = `DELETE FROM prism_kv_tombstones WHERE ns = ?1 AND key = ?2 AND version < ?3`

	// tombstoneSQL: ?1 ns, ?2 key, ?3 version. It records or raises the
	// tombstone unless the row or the tombstone holds a version >= ?3, and
	// returns a row only when it did.
	tombstoneSQL = `
INSERT INTO prism_kv_tombstones (ns, key, version)
SELECT ?1, ?2, ?3
WHERE NOT EXISTS (SELECT 1 FROM prism_kv WHERE ns = ?1 AND key = ?2 AND version >= ?3)
ON CONFLICT (ns, key) DO UPDATE SET version = excluded.version
WHERE prism_kv_tombstones.version < excluded.version
RETURNING version`

	// deleteOlderSQL: ?1 ns, ?2 key, ?3 version of the applied delete.
	deleteOlderSQL = `DELETE FROM prism_kv WHERE ns = ?1 AND key = ?2 AND version < ?3`

	// dropTombstonesSQL: ?1 ns, ?2 batch size; bounded like sweepSQL.
	dropTombstonesSQL = `
DELETE FROM prism_kv_tombstones WHERE ns = ?1 AND key IN (
	SELECT key FROM prism_kv_tombstones WHERE ns = ?1 LIMIT ?2
)`
)

// Read statements; "now" is the wall clock in unix nanos.
const (
	getSQL = `
SELECT value, content_type, version, expires_at FROM prism_kv
WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)`

	// scanFromSQL: ?1 ns, ?2 lowest key, ?3 now, ?4 row limit.
	scanFromSQL = `
SELECT key, value, content_type, version, expires_at FROM prism_kv
WHERE ns = ?1 AND key >= ?2 AND (expires_at IS NULL OR expires_at > ?3)
ORDER BY key LIMIT ?4`

	// scanRangeSQL: ?1 ns, ?2 lowest key, ?3 key bound (exclusive), ?4 now,
	// ?5 row limit.
	scanRangeSQL = `
SELECT key, value, content_type, version, expires_at FROM prism_kv
WHERE ns = ?1 AND key >= ?2 AND key < ?3 AND (expires_at IS NULL OR expires_at > ?4)
ORDER BY key LIMIT ?5`

	// multiGetSQL is completed with one placeholder per key and ")".
	multiGetSQL = `
SELECT key, value, content_type, version, expires_at FROM prism_kv
WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?) AND key IN (`
)

// statements are prepared once per store: writes on the writer connection,
// reads on the reader pool.
type statements struct {
	put, create, update, del, delIfMatch, sweep                                        *sql.Stmt
	putVersion, replaceVersion, clearTombstone, tombstone, deleteOlder, dropTombstones *sql.Stmt
	get, scanFrom, scanRange                                                           *sql.Stmt
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
	st.put = prep(w, putSQL)
	st.create = prep(w, createSQL)
	st.update = prep(w, updateSQL)
	st.del = prep(w, deleteSQL)
	st.delIfMatch = prep(w, deleteIfMatchSQL)
	st.sweep = prep(w, sweepSQL)
	st.putVersion = prep(w, putVersionSQL)
	st.replaceVersion = prep(w, replaceVersionSQL)
	st.clearTombstone = prep(w, clearTombstoneSQL)
	st.tombstone = prep(w, tombstoneSQL)
	st.deleteOlder = prep(w, deleteOlderSQL)
	st.dropTombstones = prep(w, dropTombstonesSQL)
	st.get = prep(r, getSQL)
	st.scanFrom = prep(r, scanFromSQL)
	st.scanRange = prep(r, scanRangeSQL)
	return err
}

func (st *statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{
		st.put, st.create, st.update, st.del, st.delIfMatch, st.sweep,
		st.putVersion, st.replaceVersion, st.clearTombstone, st.tombstone, st.deleteOlder, st.dropTombstones,
		st.get, st.scanFrom, st.scanRange,
	} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
