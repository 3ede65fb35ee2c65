package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// SQLLog is a Log kept in a SQL database (SQLite or Postgres): one row per
// record in prism_audit, whose id is the record's sequence number, and the
// chain's head in the single row of prism_audit_head. Each batch of appends
// is one transaction that first locks the head row (SELECT ... FOR UPDATE on
// Postgres, BEGIN IMMEDIATE on SQLite), so appends from several processes
// sharing the database still form one linear chain. Concurrent Appends of
// one process are committed together (group commit), like FileLog's.
type SQLLog struct {
	db      *sql.DB
	dialect sqlDialect
	now     func() time.Time

	g *group

	mu     sync.Mutex
	closed bool // Close was called
}

// sqlDialect is what differs between SQLite and Postgres.
type sqlDialect struct {
	name string
	// lockHead reads the head row and locks it for the transaction.
	lockHead string
	// numbered placeholders ($1) instead of ?.
	numbered bool
}

var (
	sqliteAudit = sqlDialect{name: "sqlite", lockHead: `SELECT seq, hash FROM prism_audit_head WHERE one = 1`}
	pgAudit     = sqlDialect{name: "postgres", lockHead: `SELECT seq, hash FROM prism_audit_head WHERE one = 1 FOR UPDATE`, numbered: true}
)

// auditSchema is valid in both dialects. The record's time is kept as the
// RFC 3339 text that was hashed, so it reads back exactly.
var auditSchema = []string{
	`CREATE TABLE IF NOT EXISTS prism_audit (
		id         BIGINT PRIMARY KEY,
		time       TEXT NOT NULL,
		subject    TEXT NOT NULL,
		namespace  TEXT NOT NULL,
		record_key TEXT NOT NULL,
		operation  TEXT NOT NULL,
		fields     TEXT NOT NULL,
		decision   TEXT NOT NULL,
		request_id TEXT NOT NULL,
		prev       TEXT NOT NULL,
		hash       TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS prism_audit_namespace ON prism_audit (namespace, id)`,
	`CREATE TABLE IF NOT EXISTS prism_audit_head (one INTEGER PRIMARY KEY CHECK (one = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)`,
	`INSERT INTO prism_audit_head (one, seq, hash) VALUES (1, 0, '') ON CONFLICT (one) DO NOTHING`,
}

// IsSQLSpec reports whether an --audit-log value names a database rather
// than a JSON-lines file: a postgres:// or sqlite:// URL, or a path ending
// in .db, .sqlite or .sqlite3.
func IsSQLSpec(spec string) bool {
	_, _, ok := sqlTarget(spec)
	return ok
}

// sqlTarget splits a spec into driver and DSN.
func sqlTarget(spec string) (driver, dsn string, ok bool) {
	switch {
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return "pgx", spec, true
	case strings.HasPrefix(spec, "sqlite://"):
		return "sqlite", strings.TrimPrefix(spec, "sqlite://"), true
	}
	switch strings.ToLower(filepath.Ext(spec)) {
	case ".db", ".sqlite", ".sqlite3":
		return "sqlite", spec, true
	}
	return "", "", false
}

// OpenSQL opens (creating its tables if needed) the audit log in the
// database spec names: postgres://... (a DSN, search_path honoured),
// sqlite://PATH or a PATH ending in .db.
func OpenSQL(ctx context.Context, spec string) (*SQLLog, error) {
	db, d, err := openDB(ctx, spec)
	if err != nil {
		return nil, err
	}
	for _, stmt := range auditSchema {
		if _, err := execSchema(ctx, db, d, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("audit: create tables: %w", err)
		}
	}
	l := &SQLLog{db: db, dialect: d, now: time.Now}
	l.g = newGroup(l.commit)
	return l, nil
}

// execSchema runs one schema statement; on Postgres under an advisory lock,
// because CREATE TABLE IF NOT EXISTS races with a concurrent twin.
func execSchema(ctx context.Context, db *sql.DB, d sqlDialect, stmt string) (sql.Result, error) {
	if !d.numbered {
		return db.ExecContext(ctx, stmt)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7431077)`); err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	return res, tx.Commit()
}

// openDB connects to the database of spec.
func openDB(ctx context.Context, spec string) (*sql.DB, sqlDialect, error) {
	driver, dsn, ok := sqlTarget(spec)
	if !ok {
		return nil, sqlDialect{}, fmt.Errorf("audit: %q is not a database (postgres://, sqlite:// or a .db path)", spec)
	}
	d := pgAudit
	if driver == "sqlite" {
		d = sqliteAudit
		if dir := filepath.Dir(dsn); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, d, fmt.Errorf("audit: %w", err)
			}
		}
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate") // the write lock before the head is read
		dsn = "file:" + dsn + "?" + q.Encode()
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, d, fmt.Errorf("audit: open: %w", err)
	}
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, d, fmt.Errorf("audit: connect: %w", err)
	}
	return db, d, nil
}

// q rewrites ? placeholders for the dialect.
func (d sqlDialect) q(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Append writes r durably, chained to the last record in the database.
// Appends from many goroutines are committed in one transaction. When ctx
// ends first Append returns its error at once, but the record may still be
// written.
func (l *SQLLog) Append(ctx context.Context, r Record) error {
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	return l.g.append(ctx, r)
}

// commit appends a batch in one transaction that holds the head row.
func (l *SQLLog) commit(ctx context.Context, batch []*pending) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	defer tx.Rollback()
	var (
		seq  int64
		prev string
	)
	if err := tx.QueryRowContext(ctx, l.dialect.lockHead).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("audit: append: read head: %w", err)
	}
	ins := l.dialect.q(`INSERT INTO prism_audit (id, time, subject, namespace, record_key, operation, fields, decision, request_id, prev, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	for _, p := range batch {
		seq++
		rec := p.rec
		rec.Seq, rec.Prev = uint64(seq), prev
		_, hash := encode(rec)
		fields, _ := json.Marshal(rec.Fields) // a []string always marshals
		if _, err := tx.ExecContext(ctx, ins, seq, rec.Time.Format(time.RFC3339Nano), rec.Subject, rec.Namespace, rec.Key,
			rec.Operation, string(fields), rec.Decision, rec.RequestID, rec.Prev, hash); err != nil {
			return fmt.Errorf("audit: append record %d: %w", seq, err)
		}
		prev = hash
	}
	if _, err := tx.ExecContext(ctx, l.dialect.q(`UPDATE prism_audit_head SET seq = ?, hash = ? WHERE one = 1`), seq, prev); err != nil {
		return fmt.Errorf("audit: append: move head: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: append: commit: %w", err)
	}
	return nil
}

// Verify checks the whole chain in the database.
func (l *SQLLog) Verify(ctx context.Context) (int, error) {
	return verifyDB(ctx, l.db)
}

// Recent returns up to limit of the newest records of a namespace, newest
// first (the admin UI's "recent audit records"). It does not verify them.
func (l *SQLLog) Recent(ctx context.Context, namespace string, limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := l.db.QueryContext(ctx, l.dialect.q(`SELECT `+recordColumns+` FROM prism_audit WHERE namespace = ? ORDER BY id DESC LIMIT ?`), namespace, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: recent: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: recent: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: recent: %w", err)
	}
	return out, nil
}

// Close waits for a running batch and closes the database; later Appends
// fail with ErrClosed.
func (l *SQLLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.g.close()
	return l.db.Close()
}

const recordColumns = `id, time, subject, namespace, record_key, operation, fields, decision, request_id, prev, hash`

// scanRecord reads one row of recordColumns. A row whose time or fields
// do not parse is returned with what did, and an error.
func scanRecord(rows *sql.Rows) (Record, error) {
	var (
		r            Record
		id           int64
		when, fields string
	)
	if err := rows.Scan(&id, &when, &r.Subject, &r.Namespace, &r.Key, &r.Operation, &fields, &r.Decision, &r.RequestID, &r.Prev, &r.Hash); err != nil {
		return r, err
	}
	r.Seq = uint64(id)
	t, err := time.Parse(time.RFC3339Nano, when)
	if err != nil {
		return r, fmt.Errorf("row %d: time %q: %w", id, when, err)
	}
	r.Time = t.UTC()
	if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil || r.Fields == nil {
		return r, fmt.Errorf("row %d: fields %q are not a JSON array", id, fields)
	}
	return r, nil
}

// VerifySQL checks the audit log in the database spec names (`prism audit
// verify DSN`), which running processes may be appending to.
func VerifySQL(ctx context.Context, spec string) (int, error) {
	if driver, path, _ := sqlTarget(spec); driver == "sqlite" {
		if _, err := os.Stat(path); err != nil {
			return 0, fmt.Errorf("audit: verify: %w", err)
		}
	}
	db, _, err := openDB(ctx, spec)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return verifyDB(ctx, db)
}

// verifyDB walks the rows in id order. The head is read first: it never
// runs ahead of the committed rows, so the rows read afterwards include
// every record it names.
func verifyDB(ctx context.Context, db *sql.DB) (int, error) {
	var head Head
	if err := db.QueryRowContext(ctx, `SELECT seq, hash FROM prism_audit_head WHERE one = 1`).Scan(&head.Seq, &head.Hash); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, &BrokenError{Line: 1, Seq: 1, Reason: "the head row of prism_audit_head is missing"}
		}
		return 0, fmt.Errorf("audit: verify: read head: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT `+recordColumns+` FROM prism_audit ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var (
		prev string
		seq  uint64
		n    int
	)
	for rows.Next() {
		want := seq + 1
		broken := func(row uint64, reason string) (int, error) {
			return n, &BrokenError{Line: n + 1, Row: int64(row), Seq: want, Reason: reason}
		}
		r, err := scanRecord(rows)
		if err != nil {
			if r.Seq == 0 {
				return n, fmt.Errorf("audit: verify: %w", err)
			}
			return broken(r.Seq, "not a valid record: "+err.Error())
		}
		_, hash := encode(canonical(r))
		switch {
		case r.Seq != want:
			return broken(r.Seq, fmt.Sprintf("found record %d: records were deleted or inserted", r.Seq))
		case hash != r.Hash:
			return broken(r.Seq, "hash does not match the record: it was altered")
		case r.Prev != prev:
			return broken(r.Seq, fmt.Sprintf("prev is not the hash of record %d: that record was altered and rehashed, or records were deleted", seq))
		case r.Seq == head.Seq && r.Hash != head.Hash:
			return broken(r.Seq, "the record differs from the one the log's head names: it was replaced")
		}
		prev, seq = r.Hash, r.Seq
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("audit: verify: %w", err)
	}
	if head.Seq > seq {
		return n, &BrokenError{Line: n + 1, Row: int64(seq + 1), Seq: seq + 1, Reason: fmt.Sprintf("the log ends at record %d but its head is at record %d: records were removed from the end", seq, head.Seq)}
	}
	return n, nil
}
