// Package postgres is the TimeSeries driver for PostgreSQL, registered as
// "postgres". The DSN is a pgx connection string; the tables live in the
// first schema of its search_path (e.g.
// "postgres://host/db?search_path=prism") and are created when missing.
//
// Events of all namespaces share one table indexed by (ns, series, time,
// seq) for queries and (ns, series, seq) for tails; seq comes from a
// per-series counter row whose lock orders the commits of one series (see
// schemaSQL). An append batch is one transaction: one statement per series
// in the batch, pipelined in one round trip.
//
// Tails wait on LISTEN/NOTIFY: each append notifies channel "prism_ts" on
// commit with the series' tag, and the store holds one listening
// connection (not one per tail) that wakes the waiting tails of that
// series, whichever gateway appended. While that connection is down
// (reconnecting with back-off), waiting tails re-read every
// Options.PollInterval; on reconnect all of them re-read, as notifications
// may have been missed.
//
// De-duplication is exact and lasts as long as the event is kept (a unique
// index on (ns, series, id)). Retention deletes events whose time is older
// than the namespace's Retention, every Options.SweepInterval.
//
// Cursors: see package internal/tssql.
//
// The store is a ts.Replica: see replica.go for copies and the seal of a
// namespace in a migration's handover. Transactions run at READ COMMITTED
// (Open sets it), which the seal check relies on.
package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prism-gw/prism/backends/internal/pgerr"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/internal/notify"
	"github.com/prism-gw/prism/backends/ts/internal/nsopts"
	"github.com/prism-gw/prism/backends/ts/internal/tssql"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
)

func init() {
	ts.Register("postgres", func(ctx context.Context, dsn string) (ts.Store, error) {
		return Open(ctx, dsn, Options{})
	})
}

// Options tune a store beyond what the DSN says. The zero value of each
// field selects its default.
type Options struct {
	// ConnectTimeout bounds connecting to the server when the DSN has no
	// connect_timeout, so a down server fails fast as ts.ErrUnavailable.
	// Default 5s.
	ConnectTimeout time.Duration
	// PollInterval is how often waiting tails re-read while the listening
	// connection is down. Default 1s.
	PollInterval time.Duration
	// SweepInterval is how often events past their namespace's retention
	// are deleted. Default 1m; negative disables the sweeper.
	SweepInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Minute
	}
	return o
}

// listeningPoll is the safety-net re-read of waiting tails while the
// listener is up; notifications do the real work.
const listeningPoll = 15 * time.Second

// Store is a ts.Store in PostgreSQL tables.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	nss  nsopts.Registry
	hub  notify.Hub

	listenCfg *pgx.ConnConfig
	listening atomic.Bool
	connects  atomic.Int64 // listener connections made, for tests

	stop      context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
}

var _ ts.Store = (*Store)(nil)

// Open connects to the database of dsn, creates the tables if missing and
// starts listening for appends. The pool reconnects on its own after a
// server restart, and so does the listener.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres ts: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = cfg.ConnConfig.ConnectTimeout
	}
	// The seal check reads the seal state after taking a lock, in a later
	// statement of the same transaction: only READ COMMITTED gives that
	// statement a snapshot taken after the lock (see lockSharedSQL), and
	// the counters' row locks rely on it too, whatever the DSN or the
	// database's default.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(ctx, "open", err)
	}
	if err := createSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	bgCtx, stop := context.WithCancel(context.Background())
	s := &Store{pool: pool, opts: opts, listenCfg: cfg.ConnConfig.Copy(), stop: stop}
	// The first connection is made here, so tails wake by notification
	// from the start; later ones by the background loop.
	conn, err := s.connectListener(ctx)
	if err != nil {
		stop()
		pool.Close()
		return nil, fail(ctx, "listen", err)
	}
	s.bg.Go(func() { s.listen(bgCtx, conn) })
	if opts.SweepInterval > 0 {
		s.bg.Go(func() { s.sweepEvery(bgCtx, opts.SweepInterval) })
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
		return fail(ctx, "create tables", err)
	}
	return nil
}

// Close stops the listener and the sweeper and closes the pool. It is safe
// to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.bg.Wait()
		s.pool.Close()
		s.hub.NotifyAll()
	})
	return nil
}

// connectListener opens the listening connection.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	s.listening.Store(true)
	s.connects.Add(1)
	return conn, nil
}

// listen dispatches notifications to waiting tails until ctx ends,
// reconnecting with back-off when the connection breaks.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	backoff := 50 * time.Millisecond
	for {
		if conn != nil {
			for {
				n, err := conn.WaitForNotification(ctx)
				if err != nil {
					break
				}
				s.hub.Notify(n.Payload)
			}
			s.listening.Store(false)
			conn.Close(context.Background())
			conn = nil
			// Waiters switch to polling until the listener is back.
			s.hub.NotifyAll()
		}
		if ctx.Err() != nil {
			return
		}
		var err error
		if conn, err = s.connectListener(ctx); err != nil {
			conn = nil
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		s.hub.NotifyAll() // appends while we were away sent nothing we heard
	}
}

// pollInterval is how long a waiting tail goes without re-reading.
func (s *Store) pollInterval() time.Duration {
	if s.listening.Load() {
		return listeningPoll
	}
	return s.opts.PollInterval
}

// EnsureNamespace records ns and its options; the tables serve every
// namespace, so there is nothing to create.
func (s *Store) EnsureNamespace(ctx context.Context, ns string, opts ts.NamespaceOptions) error {
	if err := nsopts.Check(ns, opts); err != nil {
		return fmt.Errorf("postgres ts: ensure namespace: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "ensure namespace", err)
	}
	s.nss.Set(ns, opts)
	return nil
}

// DropNamespace deletes the events, counters and seal state of ns and
// forgets it.
func (s *Store) DropNamespace(ctx context.Context, ns string) error {
	s.nss.Delete(ns)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{dropEventsSQL, dropSeriesSQL, dropStateSQL} {
			if _, err := tx.Exec(ctx, stmt, ns); err != nil {
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

// group is the events of one series in a batch, as the arrays appendSQL
// and copySQL take.
type group struct {
	series string
	idx    []int   // the events' indexes in the batch
	seqs   []int64 // copies only
	times  []int64
	ids    []*string
	data   [][]byte
	tags   [][]byte
}

// Append stores events in one transaction, one statement per series.
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

// appendSeqs stores events and returns the seq of each (0 for a
// duplicate). The batch is one implicit transaction of pipelined
// statements, so one round trip: the shared seal lock (see lockSharedSQL),
// then one statement per series.
func (s *Store) appendSeqs(ctx context.Context, ns string, events []ts.Event) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "append", err)
	}
	opts, err := s.nss.Get(ns)
	if err != nil {
		return nil, fmt.Errorf("postgres ts: append: %w", err)
	}
	if err := ts.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("postgres ts: append: %w", err)
	}
	if err := ts.CheckTimeWindow(events, time.Now(), opts.TimeWindow); err != nil {
		return nil, fmt.Errorf("postgres ts: append: %w", err)
	}
	groups, err := groupBySeries(events, false)
	if err != nil {
		return nil, fmt.Errorf("postgres ts: append: %w", err)
	}
	seqs := make([]int64, len(events))
	if len(groups) == 0 {
		return seqs, nil
	}
	var b pgx.Batch
	b.Queue(lockSharedSQL, sealLock(ns))
	for _, g := range groups {
		// Series are in sorted order, so two batches lock counters in the
		// same order and never deadlock.
		b.Queue(appendSQL, ns, g.series, len(g.times), g.times, g.ids, g.data, g.tags, cursor.TagOf(ns, g.series).String())
	}
	// On a cancelled ctx pgx closes the connection, and the server rolls
	// the transaction back unless it had committed.
	br := s.pool.SendBatch(ctx, &b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fail(ctx, "append: lock", err)
	}
	sealed := false
	for _, g := range groups {
		var base int64
		var inserted []int64
		var notified *string
		if err := br.QueryRow().Scan(&sealed, &base, &inserted, &notified); err != nil {
			return nil, fail(ctx, "append", err)
		}
		for _, seq := range inserted {
			ord := seq - base // from 1
			if ord < 1 || ord > int64(len(g.idx)) {
				return nil, fmt.Errorf("postgres ts: append: seq %d outside the %d reserved above %d", seq, len(g.idx), base)
			}
			seqs[g.idx[ord-1]] = seq
		}
	}
	if err := br.Close(); err != nil {
		return nil, fail(ctx, "append", err)
	}
	if sealed {
		// The lock keeps the seal state for the whole batch, so no
		// statement stored anything.
		return nil, fmt.Errorf("postgres ts: append to %q: %w", ns, ts.ErrSealed)
	}
	// The listener hears the notification too; waking local tails here
	// saves its round trip.
	for _, g := range groups {
		s.hub.Notify(cursor.TagOf(ns, g.series).String())
	}
	return seqs, nil
}

// sealLock is the key of the advisory lock that orders appends to ns
// against its Seal (FNV-1a, the same in every gateway). Another namespace
// with the same key only waits for a Seal needlessly.
func sealLock(ns string) int64 {
	h := fnv.New64a()
	h.Write([]byte("prism_ts/"))
	h.Write([]byte(ns))
	return int64(h.Sum64())
}

// groupBySeries splits events by series, in sorted series order, dropping
// repeated ids within the batch (the first occurrence wins; the others are
// duplicates, left with seq 0). With copies it keeps the seqs too and drops
// repeated seqs of a series the same way.
func groupBySeries(events []ts.Event, copies bool) ([]*group, error) {
	bySeries := map[string]*group{}
	var groups []*group
	type key struct {
		series, id string
		seq        int64
	}
	seen := map[key]bool{}
	for i := range events {
		e := &events[i]
		// A skipped event marks nothing: what the database would store
		// decides, and it would store a later event with the id of an
		// event skipped for its seq.
		byID, bySeq := key{series: e.Series, id: e.ID}, key{series: e.Series, seq: e.Seq}
		if (e.ID != "" && seen[byID]) || (copies && seen[bySeq]) {
			continue
		}
		if e.ID != "" {
			seen[byID] = true
		}
		if copies {
			seen[bySeq] = true
		}
		g := bySeries[e.Series]
		if g == nil {
			g = &group{series: e.Series}
			bySeries[e.Series] = g
			groups = append(groups, g)
		}
		tags, err := wire.MarshalTags(e.Tags)
		if err != nil {
			return nil, err
		}
		var id *string
		if e.ID != "" {
			id = &e.ID
		}
		g.idx = append(g.idx, i)
		if copies {
			g.seqs = append(g.seqs, e.Seq)
		}
		g.times = append(g.times, e.Time.UnixNano())
		g.ids = append(g.ids, id)
		g.data = append(g.data, ts.DataOrNull(e.Data))
		g.tags = append(g.tags, tags)
	}
	slices.SortFunc(groups, func(a, b *group) int { return strings.Compare(a.series, b.series) })
	return groups, nil
}

// Query returns one page of a series' events in time order.
func (s *Store) Query(ctx context.Context, ns string, q ts.QueryArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return ts.Page{}, fmt.Errorf("postgres ts: query: %w", err)
	}
	plan, err := tssql.PlanQuery(ns, q)
	if err != nil {
		return ts.Page{}, fmt.Errorf("postgres ts: query: %w", err)
	}
	pager := tssql.NewPager(plan)
	if plan.Empty() {
		return pager.Page(), nil
	}
	query := queryAscSQL
	if plan.Desc {
		query = queryDescSQL
	}
	rows, err := s.pool.Query(ctx, query, ns, plan.Series, plan.Lo, plan.Hi, plan.CurT, plan.CurSeq, plan.Limit+1)
	if err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	if err := readRows(rows, pager.Add); err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	return pager.Page(), nil
}

// readRows feeds rows to add until it declines or they end, and closes
// rows.
func readRows(rows pgx.Rows, add func(tssql.Row) (bool, error)) error {
	defer rows.Close()
	return tssql.ReadRows(rows, add)
}

// Tail returns the events appended after t.After, waiting up to t.Wait.
func (s *Store) Tail(ctx context.Context, ns string, t ts.TailArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return ts.Page{}, fmt.Errorf("postgres ts: tail: %w", err)
	}
	if err := t.Validate(); err != nil {
		return ts.Page{}, fmt.Errorf("postgres ts: tail: %w", err)
	}
	tag := cursor.TagOf(ns, t.Series)
	after, ok, err := tssql.TailAfter(tag, t.After)
	if err != nil {
		return ts.Page{}, fmt.Errorf("postgres ts: tail: %w", err)
	}
	if !ok {
		// Appends committed later take seqs above the committed counter.
		if err := s.pool.QueryRow(ctx, endSQL, ns, t.Series).Scan(&after); err != nil {
			return ts.Page{}, fail(ctx, "tail: end", err)
		}
	}
	limit := ts.PageLimit(t.Limit)
	var events []ts.Event
	read := func() (bool, error) {
		rows, err := s.pool.Query(ctx, tailSQL, ns, t.Series, after, limit)
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
	if err := s.hub.WaitFor(ctx, tag.String(), t.Wait, s.pollInterval, read); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	return ts.Page{Events: events, NextCursor: tssql.TailCursor(tag, after)}, nil
}

// fail wraps err from the database. Anything but a definite SQL error — a
// connection that failed or broke, a timeout, a cancelled context, a server
// shutting down, a deadlock or serialization failure (rolled back) — is
// marked ts.ErrUnavailable: the operation may succeed when retried.
func fail(ctx context.Context, op string, err error) error {
	prefix := "postgres ts: "
	if op != "" {
		prefix += op + ": "
	}
	return pgerr.Wrap(ctx, prefix, ts.ErrUnavailable, err)
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
			// A failed sweep (e.g. the server is down) is retried at the
			// next tick.
			_ = s.sweep(ctx)
		}
	}
}

// sweepBatch bounds each sweep statement so that it holds row locks only
// briefly.
const sweepBatch = 1000

// sweep deletes the events of every namespace with a retention that are
// older than it.
func (s *Store) sweep(ctx context.Context) error {
	now := time.Now()
	for ns, opts := range s.nss.All() {
		if opts.Retention <= 0 {
			continue
		}
		oldest := now.Add(-opts.Retention).UnixNano()
		for {
			tag, err := s.pool.Exec(ctx, sweepSQL, ns, oldest, sweepBatch)
			if err != nil {
				return fail(ctx, "sweep", err)
			}
			if tag.RowsAffected() < sweepBatch {
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
		return nil, "", fmt.Errorf("postgres ts: export: %w", err)
	}
	x, err := tssql.PlanExport(q)
	if err != nil {
		return nil, "", fmt.Errorf("postgres ts: export: %w", err)
	}
	rows, err := s.pool.Query(ctx, exportSQL, ns, x.Series, x.Seq, x.Lo, x.Hi, x.Limit+1)
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
		return 0, fmt.Errorf("postgres ts: count: %w", err)
	}
	lo, hi := tssql.ExportBounds(start, end)
	var n int64
	if err := s.pool.QueryRow(ctx, countSQL, ns, lo, hi).Scan(&n); err != nil {
		return 0, fail(ctx, "count", err)
	}
	return n, nil
}

var _ ts.Exporter = (*Store)(nil)
