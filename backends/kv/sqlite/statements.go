package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// schemaSQL creates the one table all namespaces share. Keys are BLOBs so
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

	deleteSQL = `DELETE FROM prism_kv WHERE ns = ?1 AND key = ?2`

	deleteIfMatchSQL = `
DELETE FROM prism_kv
WHERE ns = ?1 AND key = ?2 AND version = ?3 AND (expires_at IS NULL OR expires_at > ?4)`

	sweepSQL = `
DELETE FROM prism_kv WHERE (ns, key) IN (
	SELECT ns, key FROM prism_kv WHERE expires_at <= ?1 LIMIT ?2
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
	put, create, update, del, delIfMatch, sweep *sql.Stmt
	get, scanFrom, scanRange                    *sql.Stmt
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
	st.get = prep(r, getSQL)
	st.scanFrom = prep(r, scanFromSQL)
	st.scanRange = prep(r, scanRangeSQL)
	return err
}

func (st *statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.put, st.create, st.update, st.del, st.delIfMatch, st.sweep, st.get, st.scanFrom, st.scanRange} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
