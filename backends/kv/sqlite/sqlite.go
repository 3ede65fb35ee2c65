// Package sqlite is the embedded KV driver, registered as "sqlite". All
// namespaces share one table in one database file; as a kv.Replica it keeps
// the tombstones of a migration's target in a second table.
//
// Writes go through a single connection whose transactions begin IMMEDIATE,
// so a batch takes the write lock up front instead of upgrading a read lock
// (which fails with SQLITE_BUSY under concurrency); reads use a separate pool
// and, thanks to WAL, never wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prism-gw/prism/backends/internal/sqlitedb"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/internal/kvsql"
)

func init() {
	kv.Register("sqlite", func(ctx context.Context, dsn string) (kv.Store, error) {
		path, opts, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return Open(ctx, path, opts)
	})
}

// Store is a kv.Store in a SQLite database file.
type Store struct {
	w, r  *sql.DB // w has exactly one connection: SQLite has one writer
	stmt  statements
	clock kvsql.Clock

	stopSweeper context.CancelFunc
	sweeper     sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error
}

var _ kv.Replica = (*Store)(nil)

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(path); err != nil {
		return nil, err
	}
	w, r, err := sqlitedb.Open(ctx, "sqlite kv", path, opts.common(), nil, schemaSQL, fail)
	if err != nil {
		return nil, err
	}
	s := &Store{w: w, r: r}
	if err := s.stmt.prepare(ctx, w, r); err != nil {
		s.stmt.close()
		r.Close()
		w.Close()
		return nil, fail(ctx, "prepare", err)
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	s.stopSweeper = stop
	if opts.SweepInterval > 0 {
		s.sweeper.Go(func() { s.sweepEvery(sweepCtx, opts.SweepInterval) })
	}
	return s, nil
}

// Close stops the sweeper, checkpoints the WAL into the database file (so
// the file alone holds all data) and closes the connections. It is safe to
// call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopSweeper()
		s.sweeper.Wait()
		errS := s.stmt.close()
		errR := s.r.Close()
		// With the readers gone the checkpoint can copy every frame and
		// truncate the WAL.
		_, errC := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errW := s.w.Close()
		if err := errors.Join(errS, errR, errC, errW); err != nil {
			s.closeErr = fmt.Errorf("sqlite kv: close: %w", err)
		}
	})
	return s.closeErr
}

// Get returns the live item at key.
func (s *Store) Get(ctx context.Context, ns, key string) (kv.Item, error) {
	if err := ctx.Err(); err != nil {
		return kv.Item{}, fail(ctx, "get", err)
	}
	it := kv.Item{Key: key}
	var version int64
	var expires *int64
	err := s.stmt.get.QueryRowContext(ctx, ns, []byte(key), time.Now().UnixNano()).
		Scan(&it.Value, &it.ContentType, &version, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return kv.Item{}, fmt.Errorf("sqlite kv: get: %w", kv.ErrNotFound)
	}
	if err != nil {
		return kv.Item{}, fail(ctx, "get", err)
	}
	return finish(it, version, expires), nil
}

// Put writes op.Value at op.Key if op.Cond holds.
func (s *Store) Put(ctx context.Context, ns string, op kv.PutOp) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fail(ctx, "put", err)
	}
	v, err := s.put(ctx, nil, ns, op)
	if err != nil {
		return "", fmt.Errorf("sqlite kv: put: %w", err)
	}
	return v, nil
}

// Delete removes key if cond holds.
func (s *Store) Delete(ctx context.Context, ns, key string, cond kv.Cond) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "delete", err)
	}
	if _, err := s.delete(ctx, nil, ns, key, cond); err != nil {
		return fmt.Errorf("sqlite kv: delete: %w", err)
	}
	return nil
}

// Scan returns one page of live items in byte order of key.
func (s *Store) Scan(ctx context.Context, ns string, q kv.ScanQuery) (kv.Page, error) {
	if err := ctx.Err(); err != nil {
		return kv.Page{}, fail(ctx, "scan", err)
	}
	rng, ok := kvsql.RangeOf(q)
	if !ok {
		return kv.Page{}, nil
	}
	pager := kvsql.NewPager(q)
	now := time.Now().UnixNano()
	var rows *sql.Rows
	var err error
	if rng.Hi == nil {
		rows, err = s.stmt.scanFrom.QueryContext(ctx, ns, rng.Lo, now, pager.Limit()+1)
	} else {
		rows, err = s.stmt.scanRange.QueryContext(ctx, ns, rng.Lo, rng.Hi, now, pager.Limit()+1)
	}
	if err != nil {
		return kv.Page{}, fail(ctx, "scan", err)
	}
	defer rows.Close()
	// Rows are stepped lazily, so stopping at a full page reads no further
	// than the one row that tells whether more remain.
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return kv.Page{}, fail(ctx, "scan", err)
		}
		if !pager.Add(it) {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return kv.Page{}, fail(ctx, "scan", err)
	}
	return pager.Page(), nil
}

// MultiGet returns the live items among keys, in the order of keys; a key
// requested twice is returned once.
func (s *Store) MultiGet(ctx context.Context, ns string, keys []string) ([]kv.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "multiget", err)
	}
	order, args := make([]string, 0, len(keys)), make([]any, 0, len(keys)+2)
	args = append(args, ns, time.Now().UnixNano())
	seen := make(map[string]kv.Item, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = kv.Item{}
			order = append(order, k)
			args = append(args, []byte(k))
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	// The IN list has one placeholder per key; SQLite allows 32766 and the
	// API at most kv.MaxMultiGet.
	query := multiGetSQL + strings.Repeat(",?", len(order))[1:] + ")"
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fail(ctx, "multiget", err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fail(ctx, "multiget", err)
		}
		seen[it.Key] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "multiget", err)
	}
	items := make([]kv.Item, 0, len(order))
	for _, k := range order {
		if it := seen[k]; it.Version != "" {
			items = append(items, it)
		}
	}
	return items, nil
}

// Batch applies ops in one IMMEDIATE transaction, in order. Deletes have no
// version ("").
func (s *Store) Batch(ctx context.Context, ns string, ops []kv.Op) ([]string, error) {
	return s.batch(ctx, ns, ops, false)
}

// batch is Batch, and BatchVersioned when deleteVersions is set.
func (s *Store) batch(ctx context.Context, ns string, ops []kv.Op, deleteVersions bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "batch", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fail(ctx, "batch: begin", err)
	}
	defer tx.Rollback() // no-op after Commit
	versions := make([]string, len(ops))
	for i, op := range ops {
		if op.Delete {
			var v string
			v, err = s.delete(ctx, tx, ns, op.Put.Key, op.Put.Cond)
			if deleteVersions {
				versions[i] = v
			}
		} else {
			versions[i], err = s.put(ctx, tx, ns, op.Put)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite kv: batch: %w", &kv.OpError{Index: i, Err: err})
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fail(ctx, "batch: commit", err)
	}
	return versions, nil
}

// put runs one put, in tx when it is not nil. Errors are returned without
// the package prefix so that Batch can wrap them in kv.OpError.
func (s *Store) put(ctx context.Context, tx *sql.Tx, ns string, op kv.PutOp) (string, error) {
	now := s.clock.Next()
	value := op.Value
	if value == nil {
		value = []byte{} // NULL would violate NOT NULL; empty is what was meant
	}
	args := []any{ns, []byte(op.Key), value, op.ContentType, now, kvsql.ExpiresAt(now, op.TTL)}
	var stmt *sql.Stmt
	var condErr error
	switch {
	case op.Cond.IfNoneMatch && op.Cond.IfMatch != "":
		return "", fmt.Errorf("%w: If-Match and If-None-Match together never hold", kv.ErrVersionMismatch)
	case op.Cond.IfNoneMatch:
		stmt, condErr = s.stmt.create, kv.ErrExists
	case op.Cond.IfMatch != "":
		want, ok := kvsql.ParseVersion(op.Cond.IfMatch)
		if !ok {
			return "", kv.ErrVersionMismatch // no version of ours looks like this
		}
		stmt, condErr = s.stmt.update, kv.ErrVersionMismatch
		args = append(args, want)
	default:
		stmt = s.stmt.put
	}
	var version int64
	err := inTx(ctx, tx, stmt).QueryRowContext(ctx, args...).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return "", condErr
	}
	if err != nil {
		return "", fail(ctx, "", err)
	}
	return kvsql.FormatVersion(version), nil
}

// delete runs one delete, in tx when it is not nil, and returns its
// version (see kvsql.DeleteVersion), which only DeleteVersioned and
// BatchVersioned report.
func (s *Store) delete(ctx context.Context, tx *sql.Tx, ns, key string, cond kv.Cond) (string, error) {
	now := s.clock.Next()
	var row *sql.Row
	if cond.IfMatch == "" {
		row = inTx(ctx, tx, s.stmt.del).QueryRowContext(ctx, ns, []byte(key))
	} else {
		want, ok := kvsql.ParseVersion(cond.IfMatch)
		if !ok {
			return "", kv.ErrVersionMismatch
		}
		row = inTx(ctx, tx, s.stmt.delIfMatch).QueryRowContext(ctx, ns, []byte(key), want, now)
	}
	var last int64
	switch err := row.Scan(&last); {
	case errors.Is(err, sql.ErrNoRows) && cond.IfMatch != "":
		return "", kv.ErrVersionMismatch
	case errors.Is(err, sql.ErrNoRows):
		return kvsql.FormatVersion(kvsql.DeleteVersion(now, nil)), nil
	case err != nil:
		return "", fail(ctx, "", err)
	}
	return kvsql.FormatVersion(kvsql.DeleteVersion(now, &last)), nil
}

// inTx returns stmt bound to tx, or stmt itself outside a transaction.
func inTx(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt) *sql.Stmt {
	if tx == nil {
		return stmt
	}
	return tx.StmtContext(ctx, stmt)
}

// scanItem reads a row of (key, value, content_type, version, expires_at).
func scanItem(rows *sql.Rows) (kv.Item, error) {
	var it kv.Item
	var key []byte
	var version int64
	var expires *int64
	if err := rows.Scan(&key, &it.Value, &it.ContentType, &version, &expires); err != nil {
		return kv.Item{}, err
	}
	it.Key = string(key)
	return finish(it, version, expires), nil
}

// finish fills in the derived fields of an item read from a row.
func finish(it kv.Item, version int64, expires *int64) kv.Item {
	if it.Value == nil {
		// The driver reads a zero-length BLOB as nil; callers rely on
		// non-nil (JSON renders nil as null).
		it.Value = []byte{}
	}
	it.Version = kvsql.FormatVersion(version)
	it.ExpiresAt = kvsql.ExpiryTime(expires)
	return it
}

// fail wraps err from the database, marking it kv.ErrUnavailable when the
// operation could not run (cancelled, timed out, locked, I/O or resource
// failure) as opposed to a definite SQL error.
func fail(ctx context.Context, op string, err error) error {
	prefix := "sqlite kv: "
	if op != "" {
		prefix += op + ": "
	}
	return sqlitedb.Wrap(ctx, prefix, kv.ErrUnavailable, err)
}

// sweepEvery deletes expired rows every interval until ctx ends. Expired
// rows are already invisible; sweeping only reclaims their space.
func (s *Store) sweepEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failed sweep (e.g. the file is locked by another process)
			// is retried at the next tick.
			_ = s.sweep(ctx)
		}
	}
}

// sweepBatch bounds each sweep statement so that it holds the write lock
// only briefly; writers queue behind it otherwise.
const sweepBatch = 256

// sweep deletes all rows expired by now, sweepBatch rows per statement.
func (s *Store) sweep(ctx context.Context) error {
	now := time.Now().UnixNano()
	for {
		res, err := s.stmt.sweep.ExecContext(ctx, now, sweepBatch)
		if err != nil {
			return fail(ctx, "sweep", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fail(ctx, "sweep", err)
		}
		if n < sweepBatch {
			return nil
		}
	}
}
