// Package sqlite is the embedded TimeSeries driver, registered as "sqlite".
// All namespaces share one table in one database file, indexed by
// (ns, series, time, seq) for queries and (ns, series, seq) for tails.
//
// Appends go through a single connection whose transactions begin
// IMMEDIATE; a batch is one transaction. Reads use a separate pool and,
// thanks to WAL, never wait for the writer.
//
// Tails wait on an in-process notifier that every append through this
// store signals, so a tail wakes at once for appends of the same process.
// Appends by another process on the same file cannot signal it; waiting
// tails re-read every Options.PollInterval (default 1s) to notice them.
// Thousands of waiting tails cost one parked goroutine each plus one
// indexed read per PollInterval.
//
// De-duplication is exact and lasts as long as the event is kept (a unique
// index on (ns, series, id)); NamespaceOptions.DuplicateWindow is not
// needed. Retention deletes events whose time is older than the
// namespace's Retention, every Options.SweepInterval. TimeWindow is
// enforced when a namespace sets one; by default any time is accepted.
//
// Cursors: see package internal/tssql (seq is the table's AUTOINCREMENT
// rowid).
//
// The store is a ts.Replica. Its positions are global to the file, not per
// series: a copy (Copy) whose seq another series holds is stored at a new
// seq and counted as moved, so a migration into SQLite from a store with
// per-series positions (postgres) is not position-exact. See replica.go.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prism-gw/prism/backends/internal/sqlitedb"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/internal/notify"
	"github.com/prism-gw/prism/backends/ts/internal/nsopts"
	"github.com/prism-gw/prism/backends/ts/internal/tssql"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
)

func init() {
	ts.Register("sqlite", func(ctx context.Context, dsn string) (ts.Store, error) {
		path, opts, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return Open(ctx, path, opts)
	})
}

// Store is a ts.Store in a SQLite database file.
type Store struct {
	w, r *sql.DB // w has exactly one connection: SQLite has one writer
	stmt statements
	opts Options
	nss  nsopts.Registry
	hub  notify.Hub

	stopSweeper context.CancelFunc
	sweeper     sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error
}

var _ ts.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(path); err != nil {
		return nil, err
	}
	w, r, err := sqlitedb.Open(ctx, "sqlite ts", path, opts.common(), nil, schemaSQL, fail)
	if err != nil {
		return nil, err
	}
	s := &Store{w: w, r: r, opts: opts}
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

// Close stops the sweeper, checkpoints the WAL into the database file and
// closes the connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopSweeper()
		s.sweeper.Wait()
		s.hub.NotifyAll() // waiting tails re-read and fail on the closed pool
		errS := s.stmt.close()
		errR := s.r.Close()
		_, errC := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errW := s.w.Close()
		if err := errors.Join(errS, errR, errC, errW); err != nil {
			s.closeErr = fmt.Errorf("sqlite ts: close: %w", err)
		}
	})
	return s.closeErr
}

// EnsureNamespace records ns and its options; the table serves every
// namespace, so there is nothing to create.
func (s *Store) EnsureNamespace(ctx context.Context, ns string, opts ts.NamespaceOptions) error {
	if err := nsopts.Check(ns, opts); err != nil {
		return fmt.Errorf("sqlite ts: ensure namespace: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "ensure namespace", err)
	}
	s.nss.Set(ns, opts)
	return nil
}

// DropNamespace deletes the events, the seal state and the record of moved
// copies of ns and forgets it.
func (s *Store) DropNamespace(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "drop namespace", err)
	}
	s.nss.Delete(ns)
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, st := range []*sql.Stmt{s.stmt.drop, s.stmt.dropState, s.stmt.dropMoved} {
			if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, ns); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fail(ctx, "drop namespace", err)
	}
	return nil
}

// write runs fn in a write transaction and commits it.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Append stores events in one transaction.
func (s *Store) Append(ctx context.Context, ns string, events []ts.Event) (appended, duplicates int, err error) {
	seqs, err := s.appendSeqs(ctx, ns, events)
	return tssql.AppendResult(events, seqs, err)
}

// AppendEvents is Append returning the events it stored with their
// positions, for a migration to copy them.
func (s *Store) AppendEvents(ctx context.Context, ns string, events []ts.Event) (stored []ts.Event, duplicates int, err error) {
	seqs, err := s.appendSeqs(ctx, ns, events)
	return tssql.AppendEventsResult(ns, events, seqs, err)
}

// appendSeqs stores events in one transaction and returns the seq of each
// (0 for a duplicate). The seal check runs in the same write transaction,
// so no append commits once Seal has.
func (s *Store) appendSeqs(ctx context.Context, ns string, events []ts.Event) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "append", err)
	}
	opts, err := s.nss.Get(ns)
	if err != nil {
		return nil, fmt.Errorf("sqlite ts: append: %w", err)
	}
	if err := ts.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("sqlite ts: append: %w", err)
	}
	if err := ts.CheckTimeWindow(events, time.Now(), opts.TimeWindow); err != nil {
		return nil, fmt.Errorf("sqlite ts: append: %w", err)
	}
	if len(events) == 0 {
		return nil, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fail(ctx, "append: begin", err)
	}
	defer tx.Rollback() // no-op after Commit
	var sealed bool
	if err := tx.StmtContext(ctx, s.stmt.sealed).QueryRowContext(ctx, ns).Scan(&sealed); err != nil {
		return nil, fail(ctx, "append: seal state", err)
	}
	if sealed {
		return nil, fmt.Errorf("sqlite ts: append to %q: %w", ns, ts.ErrSealed)
	}
	insert := tx.StmtContext(ctx, s.stmt.insert)
	seqs := make([]int64, len(events))
	for i := range events {
		e := &events[i]
		tags, err := wire.MarshalTags(e.Tags)
		if err != nil {
			return nil, fmt.Errorf("sqlite ts: append: %w", err)
		}
		res, err := insert.ExecContext(ctx, ns, e.Series, e.Time.UnixNano(), tssql.NullableID(e.ID), []byte(ts.DataOrNull(e.Data)), tags)
		if err != nil {
			return nil, fail(ctx, "append", err)
		}
		if seqs[i], err = insertedSeq(res); err != nil {
			return nil, fail(ctx, "append", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fail(ctx, "append: commit", err)
	}
	if tssql.Appended(seqs) > 0 {
		s.wake(ns, events)
	}
	return seqs, nil
}

// insertedSeq is the seq of the row an insert stored, 0 when it stored
// none (last_insert_rowid() would be an older row's then).
func insertedSeq(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	return res.LastInsertId()
}

// wake notifies the tails of every series in events.
func (s *Store) wake(ns string, events []ts.Event) {
	last := ""
	for _, e := range events {
		if e.Series != last { // batches are usually one series
			s.hub.Notify(cursor.TagOf(ns, e.Series).String())
			last = e.Series
		}
	}
}

// Query returns one page of a series' events in time order.
func (s *Store) Query(ctx context.Context, ns string, q ts.QueryArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return ts.Page{}, fmt.Errorf("sqlite ts: query: %w", err)
	}
	plan, err := tssql.PlanQuery(ns, q)
	if err != nil {
		return ts.Page{}, fmt.Errorf("sqlite ts: query: %w", err)
	}
	pager := tssql.NewPager(plan)
	if plan.Empty() {
		return pager.Page(), nil
	}
	stmt := s.stmt.queryAsc
	if plan.Desc {
		stmt = s.stmt.queryDesc
	}
	rows, err := stmt.QueryContext(ctx, ns, plan.Series, plan.Lo, plan.Hi, plan.CurT, plan.CurSeq, plan.Limit+1)
	if err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	if err := readRows(rows, pager.Add); err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	return pager.Page(), nil
}

// readRows feeds rows to add until it declines or they end, and closes
// rows. Rows are stepped lazily, so stopping early reads no further.
func readRows(rows *sql.Rows, add func(tssql.Row) (bool, error)) error {
	defer rows.Close()
	return tssql.ReadRows(rows, add)
}

// Tail returns the events appended after t.After, waiting up to t.Wait.
func (s *Store) Tail(ctx context.Context, ns string, t ts.TailArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return ts.Page{}, fmt.Errorf("sqlite ts: tail: %w", err)
	}
	if err := t.Validate(); err != nil {
		return ts.Page{}, fmt.Errorf("sqlite ts: tail: %w", err)
	}
	tag := cursor.TagOf(ns, t.Series)
	after, ok, err := tssql.TailAfter(tag, t.After)
	if err != nil {
		return ts.Page{}, fmt.Errorf("sqlite ts: tail: %w", err)
	}
	if !ok {
		// Every event committed later gets a greater seq.
		if err := s.stmt.end.QueryRowContext(ctx, ns, t.Series).Scan(&after); err != nil {
			return ts.Page{}, fail(ctx, "tail: end", err)
		}
	}
	limit := ts.PageLimit(t.Limit)
	var events []ts.Event
	read := func() (bool, error) {
		rows, err := s.stmt.tail.QueryContext(ctx, ns, t.Series, after, limit)
		if err != nil {
			return false, err
		}
		err = readRows(rows, func(r tssql.Row) (bool, error) {
			e, err := tssql.Event(tag, t.Series, r)
			if err != nil {
				return false, err
			}
			events = append(events, e)
			after = r.Seq
			return true, nil
		})
		return len(events) > 0, err
	}
	poll := func() time.Duration { return s.opts.PollInterval }
	if err := s.hub.WaitFor(ctx, tag.String(), t.Wait, poll, read); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	return ts.Page{Events: events, NextCursor: tssql.TailCursor(tag, after)}, nil
}

// fail wraps err from the database, marking it ts.ErrUnavailable when the
// operation could not run (cancelled, timed out, locked, I/O or resource
// failure) as opposed to a definite SQL error.
func fail(ctx context.Context, op string, err error) error {
	prefix := "sqlite ts: "
	if op != "" {
		prefix += op + ": "
	}
	return sqlitedb.Wrap(ctx, prefix, ts.ErrUnavailable, err, sql.ErrTxDone)
}

// sweepEvery deletes expired events every interval until ctx ends.
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
// only briefly; appends queue behind it otherwise.
const sweepBatch = 256

// sweep deletes the events of every namespace with a retention that are
// older than it, sweepBatch rows per statement.
func (s *Store) sweep(ctx context.Context) error {
	now := time.Now()
	for ns, opts := range s.nss.All() {
		if opts.Retention <= 0 {
			continue
		}
		oldest := now.Add(-opts.Retention).UnixNano()
		for {
			res, err := s.stmt.sweep.ExecContext(ctx, ns, oldest, sweepBatch)
			if err != nil {
				return fail(ctx, "sweep", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fail(ctx, "sweep", err)
			}
			if n < sweepBatch {
				break
			}
		}
	}
	return nil
}

// Export lists the namespace's events in (series, append) order.
func (s *Store) Export(ctx context.Context, ns string, q ts.ExportArgs) ([]ts.Event, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fail(ctx, "export", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return nil, "", fmt.Errorf("sqlite ts: export: %w", err)
	}
	x, err := tssql.PlanExport(q)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite ts: export: %w", err)
	}
	rows, err := s.stmt.export.QueryContext(ctx, ns, x.Series, x.Seq, x.Lo, x.Hi, x.Limit+1)
	if err != nil {
		return nil, "", fail(ctx, "export", err)
	}
	defer rows.Close()
	events, next, err := tssql.ReadExport(ns, rows, x.Limit)
	if err != nil {
		return nil, "", fail(ctx, "export", err)
	}
	return events, next, nil
}

// Count is the number of events Export lists.
func (s *Store) Count(ctx context.Context, ns string, start, end time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, "count", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return 0, fmt.Errorf("sqlite ts: count: %w", err)
	}
	lo, hi := tssql.ExportBounds(start, end)
	var n int64
	if err := s.stmt.count.QueryRowContext(ctx, ns, lo, hi).Scan(&n); err != nil {
		return 0, fail(ctx, "count", err)
	}
	return n, nil
}

var _ ts.Exporter = (*Store)(nil)
