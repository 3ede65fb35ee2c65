package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/tssql"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
)

// The ts.Replica side of the store: what a migration of a namespace to or
// from another SQL store needs (see ts.Replica and package tssql).

var _ ts.Replica = (*Store)(nil)

// Copy stores events at their Seq in one transaction. seq is the rowid,
// global to the file: a seq that another series holds sends the copy to a
// fresh seq (moved, and recorded, so that the copy repeated is known); one
// that its own series holds is the same event, copied before, and is
// skipped, as is an id its series has already.
func (s *Store) Copy(ctx context.Context, ns string, events []ts.Event) (stored, moved int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fail(ctx, "copy", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return 0, 0, fmt.Errorf("sqlite ts: copy: %w", err)
	}
	if err := tssql.ValidateCopy(events); err != nil {
		return 0, 0, fmt.Errorf("sqlite ts: copy: %w", err)
	}
	if len(events) == 0 {
		return 0, 0, nil
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		stmt, record := tx.StmtContext(ctx, s.stmt.copy), tx.StmtContext(ctx, s.stmt.moved)
		for i := range events {
			e := &events[i]
			tags, err := wire.MarshalTags(e.Tags)
			if err != nil {
				return err
			}
			res, err := stmt.ExecContext(ctx, e.Seq, ns, e.Series, e.Time.UnixNano(), tssql.NullableID(e.ID), []byte(ts.DataOrNull(e.Data)), tags)
			if err != nil {
				return err
			}
			seq, err := insertedSeq(res)
			if err != nil {
				return err
			}
			if seq == 0 {
				continue
			}
			stored++
			if seq != e.Seq {
				moved++
				if _, err := record.ExecContext(ctx, ns, e.Series, e.Seq, seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fail(ctx, "copy", err)
	}
	if stored > 0 {
		s.wake(ns, events)
	}
	return stored, moved, nil
}

// Seal stops appends to ns and returns the largest seq the file ever gave
// (to any namespace: seqs are global). Appends check the seal in their
// write transaction, and SQLite has one writer, so every append either
// committed before Seal or fails with ts.ErrSealed.
func (s *Store) Seal(ctx context.Context, ns string) (floor int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, fail(ctx, "seal", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return 0, fmt.Errorf("sqlite ts: seal: %w", err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		return tx.StmtContext(ctx, s.stmt.seal).QueryRowContext(ctx, ns).Scan(&floor)
	})
	if err != nil {
		return 0, fail(ctx, "seal", err)
	}
	return floor, nil
}

// Unseal lets appends to ns resume above floor: it raises the
// AUTOINCREMENT counter of the file to floor.
func (s *Store) Unseal(ctx context.Context, ns string, floor int64) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "unseal", err)
	}
	if _, err := s.nss.Get(ns); err != nil {
		return fmt.Errorf("sqlite ts: unseal: %w", err)
	}
	if err := tssql.ValidateFloor(floor); err != nil {
		return fmt.Errorf("sqlite ts: unseal: %w", err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, st := range []*sql.Stmt{s.stmt.raiseSequenceRow, s.stmt.raiseSequence} {
			if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, floor); err != nil {
				return err
			}
		}
		_, err := tx.StmtContext(ctx, s.stmt.unseal).ExecContext(ctx, ns, floor)
		return err
	})
	if err != nil {
		return fail(ctx, "unseal", err)
	}
	// Events above the old floor (copies) are in tails' reach now.
	s.hub.NotifyAll()
	return nil
}

// CursorSeq returns the seq of a tail cursor of either SQL driver.
func (s *Store) CursorSeq(ns, series, cursor string) (int64, error) {
	seq, err := tssql.CursorSeq(ns, series, cursor)
	if err != nil {
		return 0, fmt.Errorf("sqlite ts: %w", err)
	}
	return seq, nil
}

// SeqCursor makes the tail cursor of seq, in the format both SQL drivers
// read.
func (s *Store) SeqCursor(ns, series string, seq int64) string {
	return tssql.SeqCursor(ns, series, seq)
}
