// Package postgres is the KV driver for PostgreSQL, registered as
// "postgres". The DSN is a pgx connection string; the table lives in the
// first schema of its search_path (e.g. "postgres://host/db?search_path=prism")
// and is created when missing.
//
// Writes are single statements whose conditions PostgreSQL re-checks under
// the row lock, so If-Match and If-None-Match are exactly-once under READ
// COMMITTED; a batch is one transaction whose statements are pipelined in one
// round trip.
//
// Versions and expiry use the gateway's clock (unix nanos), so gateways
// sharing a database should keep their clocks in sync (NTP); versions stay
// monotonic per key regardless, except across a delete: a key re-created
// after DeleteVersioned gets a greater version only if the writer's clock
// is not behind the one that wrote the key last.
//
// As a kv.Replica it keeps the tombstones of a migration's target in a
// second table, prism_kv_tombstones.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prism-gw/prism/backends/internal/pgerr"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/internal/kvsql"
)

func init() {
	kv.Register("postgres", func(ctx context.Context, dsn string) (kv.Store, error) {
		return Open(ctx, dsn, Options{})
	})
}

// Options tune a store beyond what the DSN says. The zero value of each
// field selects its default.
type Options struct {
	// ConnectTimeout bounds connecting to the server when the DSN has no
	// connect_timeout, so a down server fails fast as kv.ErrUnavailable.
	// Default 5s.
	ConnectTimeout time.Duration
	// SweepInterval is how often expired keys are physically deleted.
	// Default 1m; negative disables the sweeper.
	SweepInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Minute
	}
	return o
}

// Store is a kv.Store in a PostgreSQL table.
type Store struct {
	pool  *pgxpool.Pool
	clock kvsql.Clock

	stopSweeper context.CancelFunc
	sweeper     sync.WaitGroup
	closeOnce   sync.Once
}

var _ kv.Replica = (*Store)(nil)

// Open connects to the database of dsn and creates the table if missing.
// The pool reconnects on its own after a server restart: a broken
// connection is dropped when it fails, and idle ones are pinged before use.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres kv: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if cfg.PingTimeout == 0 {
		// A ping to a server that stopped answering would otherwise wait
		// for the caller's deadline on every acquire.
		cfg.PingTimeout = cfg.ConnConfig.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(ctx, "open", err)
	}
	if err := createSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	s := &Store{pool: pool, stopSweeper: stop}
	if opts.SweepInterval > 0 {
		s.sweeper.Go(func() { s.sweepEvery(sweepCtx, opts.SweepInterval) })
	}
	return s, nil
}

func createSchema(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, schemaLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL)
		return err
	})
	if err != nil {
		return fail(ctx, "create table prism_kv", err)
	}
	return nil
}

// Close stops the sweeper and closes the pool, waiting for connections in
// use to be returned. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopSweeper()
		s.sweeper.Wait()
		s.pool.Close()
	})
	return nil
}

// Get returns the live item at key.
func (s *Store) Get(ctx context.Context, ns, key string) (kv.Item, error) {
	it := kv.Item{Key: key}
	var version int64
	var expires *int64
	err := s.pool.QueryRow(ctx, getSQL, ns, []byte(key), time.Now().UnixNano()).
		Scan(&it.Value, &it.ContentType, &version, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return kv.Item{}, fmt.Errorf("postgres kv: get: %w", kv.ErrNotFound)
	}
	if err != nil {
		return kv.Item{}, fail(ctx, "get", err)
	}
	return finish(it, version, expires), nil
}

// Put writes op.Value at op.Key if op.Cond holds.
func (s *Store) Put(ctx context.Context, ns string, op kv.PutOp) (string, error) {
	w, err := s.plan(ns, kv.Op{Put: op})
	if err != nil {
		return "", fmt.Errorf("postgres kv: put: %w", err)
	}
	var version int64
	err = s.pool.QueryRow(ctx, w.sql, w.args...).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres kv: put: %w", w.condErr)
	}
	if err != nil {
		return "", fail(ctx, "put", err)
	}
	return kvsql.FormatVersion(version), nil
}

// Delete removes key if cond holds.
func (s *Store) Delete(ctx context.Context, ns, key string, cond kv.Cond) error {
	_, err := s.delete(ctx, ns, key, cond)
	return err
}

// delete runs one delete and returns its version (see
// kvsql.DeleteVersion), which only DeleteVersioned reports.
func (s *Store) delete(ctx context.Context, ns, key string, cond kv.Cond) (string, error) {
	w, err := s.plan(ns, kv.Op{Delete: true, Put: kv.PutOp{Key: key, Cond: cond}})
	if err != nil {
		return "", fmt.Errorf("postgres kv: delete: %w", err)
	}
	var last int64
	err = s.pool.QueryRow(ctx, w.sql, w.args...).Scan(&last)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fail(ctx, "delete", err)
	}
	v, err := w.deleted(last, err)
	if err != nil {
		return "", fmt.Errorf("postgres kv: delete: %w", err)
	}
	return v, nil
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
	args := []any{ns, rng.Lo, time.Now().UnixNano(), pager.Limit(), pager.MaxBytes()}
	query := scanFromSQL
	if rng.Hi != nil {
		query, args = scanRangeSQL, append(args, rng.Hi)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return kv.Page{}, fail(ctx, "scan", err)
	}
	defer rows.Close()
	for rows.Next() {
		var it kv.Item
		var key []byte
		var version int64
		var expires *int64
		// The value comes last: it is NULL on rows past the page's end.
		if err := rows.Scan(&key, &it.ContentType, &version, &expires, &it.Value); err != nil {
			return kv.Page{}, fail(ctx, "scan", err)
		}
		it.Key = string(key)
		if !pager.Add(finish(it, version, expires)) {
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
	order, arg := make([]string, 0, len(keys)), make([][]byte, 0, len(keys))
	found := make(map[string]kv.Item, len(keys))
	for _, k := range keys {
		if _, dup := found[k]; !dup {
			found[k] = kv.Item{}
			order = append(order, k)
			arg = append(arg, []byte(k))
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, multiGetSQL, ns, arg, time.Now().UnixNano())
	if err != nil {
		return nil, fail(ctx, "multiget", err)
	}
	defer rows.Close()
	for rows.Next() {
		var it kv.Item
		var key []byte
		var version int64
		var expires *int64
		if err := rows.Scan(&key, &it.Value, &it.ContentType, &version, &expires); err != nil {
			return nil, fail(ctx, "multiget", err)
		}
		it.Key = string(key)
		found[it.Key] = finish(it, version, expires)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "multiget", err)
	}
	items := make([]kv.Item, 0, len(order))
	for _, k := range order {
		if it := found[k]; it.Version != "" {
			items = append(items, it)
		}
	}
	return items, nil
}

// Batch applies ops in one transaction, in order. The ops are sent as one
// pipeline, so a batch costs three round trips (begin, ops, commit) however
// many ops it has, and holds its locks no longer than that. Deletes have no
// version ("").
func (s *Store) Batch(ctx context.Context, ns string, ops []kv.Op) ([]string, error) {
	return s.batch(ctx, ns, ops, false)
}

// batch is Batch, and BatchVersioned when deleteVersions is set.
func (s *Store) batch(ctx context.Context, ns string, ops []kv.Op, deleteVersions bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "batch", err)
	}
	writes := make([]write, len(ops))
	keys := make([][]byte, len(ops))
	for i, op := range ops {
		w, err := s.plan(ns, op)
		if err != nil {
			return nil, fmt.Errorf("postgres kv: batch: %w", &kv.OpError{Index: i, Err: err})
		}
		writes[i], keys[i] = w, []byte(op.Put.Key)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fail(ctx, "batch: begin", err)
	}
	// After Commit this is a no-op; on a cancelled ctx pgx closes the
	// connection instead, and the server rolls back.
	defer tx.Rollback(ctx)

	var b pgx.Batch
	locked := len(ops) > 1
	if locked {
		b.Queue(lockSQL, ns, keys)
	}
	for _, w := range writes {
		b.Queue(w.sql, w.args...)
	}
	br := tx.SendBatch(ctx, &b)
	versions, err := readBatch(ctx, br, writes, locked, deleteVersions)
	if closeErr := br.Close(); err == nil && closeErr != nil {
		err = fail(ctx, "batch", closeErr)
	}
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fail(ctx, "batch: commit", err)
	}
	return versions, nil
}

// readBatch reads the results of a batch's pipeline in order and stops at
// the first failing op. Deletes get their version only with deleteVersions.
func readBatch(ctx context.Context, br pgx.BatchResults, writes []write, locked, deleteVersions bool) ([]string, error) {
	if locked {
		if _, err := br.Exec(); err != nil {
			return nil, fail(ctx, "batch: lock", err)
		}
	}
	versions := make([]string, len(writes))
	for i, w := range writes {
		var err error
		if w.isDelete {
			var last int64
			err = br.QueryRow().Scan(&last)
			switch {
			case err != nil && !errors.Is(err, pgx.ErrNoRows):
				err = fail(ctx, "", err)
			case deleteVersions:
				versions[i], err = w.deleted(last, err)
			default:
				_, err = w.deleted(last, err) // only the condition's error
			}
		} else {
			var version int64
			err = br.QueryRow().Scan(&version)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				err = w.condErr
			case err == nil:
				versions[i] = kvsql.FormatVersion(version)
			default:
				err = fail(ctx, "", err)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("postgres kv: batch: %w", &kv.OpError{Index: i, Err: err})
		}
	}
	return versions, nil
}

// write is one op turned into a statement.
type write struct {
	sql      string
	args     []any
	isDelete bool
	// now is the clock reading the write was planned at.
	now int64
	// condErr is the error to report when the statement affects no row:
	// its condition failed. Nil for an unconditional delete.
	condErr error
}

// deleted turns the outcome of a delete statement into the delete's
// version: noRow is pgx.ErrNoRows when no row was deleted (nil otherwise),
// last the deleted row's version.
func (w write) deleted(last int64, noRow error) (string, error) {
	switch {
	case noRow != nil && w.condErr != nil:
		return "", w.condErr
	case noRow != nil:
		return kvsql.FormatVersion(kvsql.DeleteVersion(w.now, nil)), nil
	}
	return kvsql.FormatVersion(kvsql.DeleteVersion(w.now, &last)), nil
}

// plan turns op into a statement. Conditions that can never hold are
// reported here, without asking the database.
func (s *Store) plan(ns string, op kv.Op) (write, error) {
	p, now := op.Put, s.clock.Next()
	key := []byte(p.Key)
	if op.Delete {
		if p.Cond.IfMatch == "" {
			return write{sql: deleteSQL, args: []any{ns, key}, isDelete: true, now: now}, nil
		}
		want, ok := kvsql.ParseVersion(p.Cond.IfMatch)
		if !ok {
			return write{}, kv.ErrVersionMismatch // no version of ours looks like this
		}
		return write{sql: deleteIfMatchSQL, args: []any{ns, key, want, now}, isDelete: true, now: now, condErr: kv.ErrVersionMismatch}, nil
	}
	value := p.Value
	if value == nil {
		value = []byte{} // nil would be NULL; empty is what was meant
	}
	args := []any{ns, key, value, p.ContentType, now, kvsql.ExpiresAt(now, p.TTL)}
	switch {
	case p.Cond.IfNoneMatch && p.Cond.IfMatch != "":
		return write{}, fmt.Errorf("%w: If-Match and If-None-Match together never hold", kv.ErrVersionMismatch)
	case p.Cond.IfNoneMatch:
		return write{sql: createSQL, args: args, condErr: kv.ErrExists}, nil
	case p.Cond.IfMatch != "":
		want, ok := kvsql.ParseVersion(p.Cond.IfMatch)
		if !ok {
			return write{}, kv.ErrVersionMismatch
		}
		return write{sql: updateSQL, args: append(args, want), condErr: kv.ErrVersionMismatch}, nil
	default:
		return write{sql: putSQL, args: args}, nil
	}
}

// finish fills in the derived fields of an item read from a row.
func finish(it kv.Item, version int64, expires *int64) kv.Item {
	if it.Value == nil {
		it.Value = []byte{} // callers rely on non-nil (JSON renders nil as null)
	}
	it.Version = kvsql.FormatVersion(version)
	it.ExpiresAt = kvsql.ExpiryTime(expires)
	return it
}

// fail wraps err from the database. Anything but a definite SQL error — a
// connection that failed or broke, a timeout, a cancelled context, a server
// shutting down, a deadlock or serialization failure (rolled back) — is
// marked kv.ErrUnavailable: the operation may succeed when retried.
func fail(ctx context.Context, op string, err error) error {
	prefix := "postgres kv: "
	if op != "" {
		prefix += op + ": "
	}
	return pgerr.Wrap(ctx, prefix, kv.ErrUnavailable, err)
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
			// A failed sweep (e.g. the server is down) is retried at the
			// next tick.
			_ = s.sweep(ctx)
		}
	}
}

// sweepBatch bounds each sweep statement so that it holds few row locks
// and never a long transaction.
const sweepBatch = 256

// sweep deletes all rows expired by now, sweepBatch rows per statement.
func (s *Store) sweep(ctx context.Context) error {
	now := time.Now().UnixNano()
	for {
		tag, err := s.pool.Exec(ctx, sweepSQL, now, sweepBatch)
		if err != nil {
			return fail(ctx, "sweep", err)
		}
		if tag.RowsAffected() < sweepBatch {
			return nil
		}
	}
}
