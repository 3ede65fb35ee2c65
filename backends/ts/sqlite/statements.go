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
//
// prism_ts_namespaces holds the seal state of a namespace in a migration
// (ts.Replica): no row is not sealed, as in files made before it existed.
// floor is the position Seal returned (or the highest Unseal was given);
// positions themselves live in sqlite_sequence, which AUTOINCREMENT keeps
// at the largest seq ever stored, also of deleted rows.
//
// prism_ts_moved remembers the copies (ts.Replica.Copy) that could not keep
// their seq (src_seq) because another series held it, and the seq they got:
// a copy repeated (a backfill resuming, a shadow copy racing the backfill)
// is then recognised even without an id. Its rows go with DropNamespace.
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
CREATE TABLE IF NOT EXISTS prism_ts_namespaces (
	ns     TEXT    NOT NULL PRIMARY KEY,
	sealed INTEGER NOT NULL,
	floor  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prism_ts_moved (
	ns      TEXT    NOT NULL,
	series  TEXT    NOT NULL,
	src_seq INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	PRIMARY KEY (ns, series, src_seq)
) WITHOUT ROWID;
`

const (
	// insertSQL: ?1 ns, ?2 series, ?3 time, ?4 id or NULL, ?5 data,
	// ?6 tags. A duplicate id changes no row.
	insertSQL = `
INSERT INTO prism_ts_events (ns, series, time, id, data, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (ns, series, id) WHERE id IS NOT NULL DO NOTHING`

	dropSQL      = `DELETE FROM prism_ts_events WHERE ns = ?1`
	dropStateSQL = `DELETE FROM prism_ts_namespaces WHERE ns = ?1`
	dropMovedSQL = `DELETE FROM prism_ts_moved WHERE ns = ?1`

	// sweepSQL deletes a bounded number of expired events of a namespace
	// (?1 ns, ?2 oldest time kept, ?3 batch size).
	sweepSQL = `
DELETE FROM prism_ts_events WHERE seq IN (
	SELECT seq FROM prism_ts_events WHERE ns = ?1 AND time < ?2 LIMIT ?3
)`
)

// Statements of ts.Replica, all on the writer: it is the only connection
// that writes, so the seal state an append reads in its transaction cannot
// change before it commits (another process on the file waits for the
// write lock too, as transactions begin IMMEDIATE).
const (
	// sealedSQL: ?1 ns; no row is not sealed.
	sealedSQL = `SELECT coalesce((SELECT sealed FROM prism_ts_namespaces WHERE ns = ?1), 0)`

	// sealSQL seals ?1 at the largest seq ever given (sqlite_sequence has
	// no row before the first insert) and returns the floor; sealed again
	// it keeps its floor, so Seal is idempotent.
	sealSQL = `
INSERT INTO prism_ts_namespaces (ns, sealed, floor)
VALUES (?1, 1, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'prism_ts_events'), 0))
ON CONFLICT (ns) DO UPDATE SET floor = CASE WHEN sealed THEN floor ELSE max(floor, excluded.floor) END, sealed = 1
RETURNING floor`

	// raiseSequenceSQL and raiseSequenceRowSQL make AUTOINCREMENT give
	// seqs above ?1 from now on (its row exists once a row was inserted).
	raiseSequenceSQL    = `UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'prism_ts_events'`
	raiseSequenceRowSQL = `
INSERT INTO sqlite_sequence (name, seq) SELECT 'prism_ts_events', ?1
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'prism_ts_events')`

	// unsealSQL: ?1 ns, ?2 floor; a floor never goes down.
	unsealSQL = `
INSERT INTO prism_ts_namespaces (ns, sealed, floor) VALUES (?1, 0, ?2)
ON CONFLICT (ns) DO UPDATE SET sealed = 0, floor = max(floor, excluded.floor)`

	// copySQL stores a copy at seq ?1 in (?2 ns, ?3 series) with ?4 time,
	// ?5 id, ?6 data, ?7 tags. seq is the rowid, shared by all series: when
	// another series' event holds it, the copy goes to a fresh rowid
	// (NULL: after every seq given), which the caller reads from
	// last_insert_rowid() and records with movedSQL. When the event is
	// there already (at its seq in its series, moved, or by its id),
	// nothing changes.
	copySQL = `
INSERT INTO prism_ts_events (seq, ns, series, time, id, data, tags)
SELECT CASE WHEN EXISTS (SELECT 1 FROM prism_ts_events WHERE seq = ?1) THEN NULL ELSE ?1 END, ?2, ?3, ?4, ?5, ?6, ?7
WHERE NOT EXISTS (SELECT 1 FROM prism_ts_events WHERE seq = ?1 AND ns = ?2 AND series = ?3)
	AND NOT EXISTS (SELECT 1 FROM prism_ts_moved WHERE ns = ?2 AND series = ?3 AND src_seq = ?1)
ON CONFLICT (ns, series, id) WHERE id IS NOT NULL DO NOTHING`

	// movedSQL: ?1 ns, ?2 series, ?3 the seq the copy came with, ?4 the
	// seq it got.
	movedSQL = `INSERT INTO prism_ts_moved (ns, series, src_seq, seq) VALUES (?1, ?2, ?3, ?4)`
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

	// tailSQL: ?3 the last seq seen, ?4 the row limit. A sealed namespace
	// is tailed up to its floor: copies stored above it are not in its
	// append order.
	tailSQL = `
SELECT seq, time, id, data, tags FROM prism_ts_events
WHERE ns = ?1 AND series = ?2 AND seq > ?3
	AND seq <= coalesce((SELECT floor FROM prism_ts_namespaces WHERE ns = ?1 AND sealed), 9223372036854775807)
ORDER BY seq LIMIT ?4`

	// endSQL is where a tail without cursor starts: the series' last seq,
	// or the floor of a sealed namespace when copies lie above it (appends
	// after the handover are positioned above it in the other store).
	// (max in a subquery of its own, where SQLite reads it off the index.)
	endSQL = `
SELECT min(
	coalesce((SELECT max(seq) FROM prism_ts_events WHERE ns = ?1 AND series = ?2), 0),
	coalesce((SELECT floor FROM prism_ts_namespaces WHERE ns = ?1 AND sealed), 9223372036854775807))`

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
	insert, drop, dropState, dropMoved, sweep *sql.Stmt
	sealed, seal, unseal, copy, moved         *sql.Stmt
	raiseSequence, raiseSequenceRow           *sql.Stmt
	queryAsc, queryDesc, tail                 *sql.Stmt
	end, export, count                        *sql.Stmt
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
	st.dropState = prep(w, dropStateSQL)
	st.dropMoved = prep(w, dropMovedSQL)
	st.moved = prep(w, movedSQL)
	st.sealed = prep(w, sealedSQL)
	st.seal = prep(w, sealSQL)
	st.unseal = prep(w, unsealSQL)
	st.copy = prep(w, copySQL)
	st.raiseSequence = prep(w, raiseSequenceSQL)
	st.raiseSequenceRow = prep(w, raiseSequenceRowSQL)
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
	for _, stmt := range []*sql.Stmt{st.insert, st.drop, st.dropState, st.dropMoved, st.sweep, st.sealed, st.seal, st.unseal, st.copy, st.moved,
		st.raiseSequence, st.raiseSequenceRow, st.queryAsc, st.queryDesc, st.tail, st.end, st.export, st.count} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}
