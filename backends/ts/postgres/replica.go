package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/internal/tssql"
)

// The ts.Replica side of the store: what a migration of a namespace to or
// from another SQL store needs (see ts.Replica and package tssql). Seqs
// are per series, so every copy keeps its seq: a migration into postgres
// is position-exact.

var _ ts.Replica = (*Store)(nil)

// Copy stores events at their Seq in one transaction, one pipelined
// statement per series (copySQL).
func (s *Store) Copy(ctx context.Context, ns string, events []ts.Event) (stored, moved int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fail(ctx, "copy", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return 0, 0, fmt.Errorf("postgres ts: copy: %w", err)
	}
	if err := tssql.ValidateCopy(events); err != nil {
		return 0, 0, fmt.Errorf("postgres ts: copy: %w", err)
	}
	groups, err := groupBySeries(events, true)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres ts: copy: %w", err)
	}
	if len(groups) == 0 {
		return 0, 0, nil
	}
	var b pgx.Batch
	for _, g := range groups {
		// Sorted series: counters are locked in the order appends lock them.
		b.Queue(copySQL, ns, g.series, maxSeq(g.seqs), g.seqs, g.times, g.ids, g.data, g.tags, cursor.TagOf(ns, g.series).String())
	}
	br := s.pool.SendBatch(ctx, &b)
	defer br.Close()
	var woken []string
	for _, g := range groups {
		var n int
		var notified *string
		if err := br.QueryRow().Scan(&n, &notified); err != nil {
			return 0, 0, fail(ctx, "copy", err)
		}
		stored += n
		if n > 0 {
			woken = append(woken, g.series)
		}
	}
	if err := br.Close(); err != nil {
		return 0, 0, fail(ctx, "copy", err)
	}
	for _, series := range woken {
		s.hub.Notify(cursor.TagOf(ns, series).String())
	}
	return stored, 0, nil
}

func maxSeq(seqs []int64) int64 {
	m := int64(0)
	for _, s := range seqs {
		m = max(m, s)
	}
	return m
}

// Seal stops appends to ns once those in flight have committed (it waits
// for them on the namespace's advisory lock) and returns the highest seq of
// its series.
func (s *Store) Seal(ctx context.Context, ns string) (floor int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, "seal", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return 0, fmt.Errorf("postgres ts: seal: %w", err)
	}
	err = s.exclusive(ctx, ns, sealSQL, []any{ns}, &floor)
	if err != nil {
		return 0, fail(ctx, "seal", err)
	}
	return floor, nil
}

// Unseal lets appends to ns resume, every new seq above floor (the
// namespace's floor applies to every series, also new ones).
func (s *Store) Unseal(ctx context.Context, ns string, floor int64) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "unseal", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return fmt.Errorf("postgres ts: unseal: %w", err)
	}
	if err := tssql.ValidateFloor(floor); err != nil {
		return fmt.Errorf("postgres ts: unseal: %w", err)
	}
	if err := s.exclusive(ctx, ns, unsealSQL, []any{ns, floor}); err != nil {
		return fail(ctx, "unseal", err)
	}
	// Events above the old floor (copies) are in reach of this store's
	// tails now; other gateways' tails see them at their next read.
	s.hub.NotifyAll()
	return nil
}

// exclusive runs query under the exclusive seal lock of ns, in one
// transaction and one round trip, scanning its row into dest if any given:
// the lock keeps the seal state of ns from changing under an append batch.
func (s *Store) exclusive(ctx context.Context, ns, query string, args []any, dest ...any) error {
	var b pgx.Batch
	b.Queue(lockExclusiveSQL, sealLock(ns))
	b.Queue(query, args...)
	br := s.pool.SendBatch(ctx, &b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	if len(dest) == 0 {
		if _, err := br.Exec(); err != nil {
			return err
		}
	} else if err := br.QueryRow().Scan(dest...); err != nil {
		return err
	}
	return br.Close()
}

// CursorSeq returns the seq of a tail cursor of either SQL driver.
func (s *Store) CursorSeq(ns, series, c string) (int64, error) {
	seq, err := tssql.CursorSeq(ns, series, c)
	if err != nil {
		return 0, fmt.Errorf("postgres ts: %w", err)
	}
	return seq, nil
}

// SeqCursor makes the tail cursor of seq, in the format both SQL drivers
// read.
func (s *Store) SeqCursor(ns, series string, seq int64) string {
	return tssql.SeqCursor(ns, series, seq)
}
