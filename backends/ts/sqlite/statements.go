package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// schemaSQL creates the one table all namespaces share. seq is the rowid
// with AUTOINCREMENT, so it never goes back even when the newest rows are
// deleted, and since SQLite has one writer at a time (across processes
// too), seq order is commit order: a tail that has read up to seq n never
// misses a later commit with a smaller seq. time is unix nanoseconds; id is
// NULL when the event has none, so the partial unique index de-duplicates
// only events with an id, for as long as they are kept.
const schemaSQL = `
CREATE TABLE IF NOT EXISTS prism_ts_events (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	ns     TEXT    NOT NULL,
	series TEXT    NOT NULL,
	time   INTEGER NOT NULL,
	id     TEXT,
	data   BLOB    NOT NULL,
	tags   BLOB
);
CREATE INDEX IF NOT EXISTS prism_ts_events_time ON prism_ts_events (ns, series, time, seq);
CREATE INDEX IF NOT EXISTS prism_ts_events_seq ON prism_ts_events (ns, series, seq);
CREATE UNIQUE INDEX IF NOT EXISTS prism_ts_events_id ON prism_ts_events (ns, series, id) WHERE id IS NOT NULL;
`

const (
	// insertSQL: ?1 ns, ?2 series, ?3 time, ?4 id or NULL, ?5 data,
	// ?6 tags. A duplicate id changes no row.
	insertSQL = `
INSERT INTO prism_ts_events (ns, series, time, id, data, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (ns, series, id) WHERE id IS NOT NULL DO NOTHING`

	dropSQL = `DELETE FROM prism_ts_events WHERE ns = ?1`

	// sweepSQL deletes a bounded number of expired events of a namespace
	// (?1 ns, ?2 oldest time kept, ?3 batch size).
	sweepSQL = `
DELETE FROM prism_ts_events WHERE seq IN (
	SELECT seq FROM prism_ts_events WHERE ns = ?1 AND time < ?2 LIMIT ?3
)`
)

// Read statements. Query bounds: ?3 lowest time (inclusive), ?4 highest
// time (exclusive), ?5 and ?6 the cursor's (time, seq), ?7 the row limit.
// The cursor condition only filters the rows at the cursor's time; the
// time range does the seeking in the (ns, series, time, seq) index.
const (
	queryAscSQL = `
SELECT seq, time, id, data, tags FROM prism_ts_events
WHERE ns = ?1 AND series = ?2 AND time >= ?3 AND time < ?4 AND (time > ?5 OR seq > ?6)
ORDER BY time, seq LIMIT ?7`

	queryDescSQL = `
SELECT seq, time, id, data, tags FROM prism_ts_events
WHERE ns = ?1 AND series = ?2 AND time >= ?3 AND time < ?4 AND (time < ?5 OR seq < ?6)
ORDER BY time DESC, seq DESC LIMIT ?7`

	// tailSQL: ?3 the last seq seen, ?4 the row limit.
	tailSQL = `
SELECT seq, time, id, data, tags FROM prism_ts_events
WHERE ns = ?1 AND series = ?2 AND seq > ?3
ORDER BY seq LIMIT ?4`

	endSQL = `SELECT coalesce(max(seq), 0) FROM prism_ts_events WHERE ns = ?1 AND series = ?2`

	// exportSQL: after (?2 series, ?3 seq), ?4..?5 the time bounds, ?6 the
	// row limit; (series, seq) order follows the prism_ts_events_seq index.
	exportSQL = `
SELECT series, seq, time, id, data, tags FROM prism_ts_events
WHERE ns = ?1 AND (series, seq) > (?2, ?3) AND time >= ?4 AND time < ?5
ORDER BY series, seq LIMIT ?6`

	countSQL = `SELECT count(*) FROM prism_ts_events WHERE ns = ?1 AND time >= ?2 AND time < ?3`
)

// statements are prepared once per store: writes on the writer connection,
// reads on the reader pool.
type statements struct {
	insert, drop, sweep       *sql.Stmt
	queryAsc, queryDesc, tail *sql.Stmt
	end, export, count        *sql.Stmt
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
	st.insert = prep(w, insertSQL)
	st.drop = prep(w, dropSQL)
	st.sweep = prep(w, sweepSQL)
	st.queryAsc = prep(r, queryAscSQL)
	st.queryDesc = prep(r, queryDescSQL)
	st.tail = prep(r, tailSQL)
	st.end = prep(r, endSQL)
	st.export = prep(r, exportSQL)
	st.count = prep(r, countSQL)
	return err
}

func (st *statements) close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{st.insert, st.drop, st.sweep, st.queryAsc, st.queryDesc, st.tail, st.end, st.export, st.count} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
