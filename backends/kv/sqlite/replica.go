package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/internal/kvsql"
)

// DeleteVersioned deletes key like Delete and returns the delete's version:
// max(now, last version + 1), or now when the key was absent. A later Put
// by this store gets a greater version unless the key's last version came
// from a clock ahead of this process's (see kvsql.DeleteVersion).
func (s *Store) DeleteVersioned(ctx context.Context, ns, key string, cond kv.Cond) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fail(ctx, "delete", err)
	}
	v, err := s.delete(ctx, nil, ns, key, cond)
	if err != nil {
		return "", fmt.Errorf("sqlite kv: delete: %w", err)
	}
	return v, nil
}

// BatchVersioned is Batch, with the versions of the deletes too.
func (s *Store) BatchVersioned(ctx context.Context, ns string, ops []kv.Op) ([]string, error) {
	return s.batch(ctx, ns, ops, true)
}

// PutVersion writes it at its own version unless the key's row (live or
// expired but not yet swept) or tombstone holds a version >= it.Version.
// Check, write and the removal of an older tombstone are one IMMEDIATE
// transaction, so concurrent copies apply in version order whatever order
// they arrive in.
func (s *Store) PutVersion(ctx context.Context, ns string, it kv.Item) (bool, error) {
	version, err := kvsql.ReplicaVersion(it.Version)
	if err != nil {
		return false, fmt.Errorf("sqlite kv: put version: %w", err)
	}
	expires, err := kvsql.ExpiryNanos(it.ExpiresAt)
	if err != nil {
		return false, fmt.Errorf("sqlite kv: put version: %w", err)
	}
	value := it.Value
	if value == nil {
		value = []byte{} // NULL would violate NOT NULL; empty is what was meant
	}
	return s.writeVersion(ctx, "put version", s.stmt.putVersion, ns, []byte(it.Key), value, it.ContentType, version, expires)
}

// ReplaceVersion writes it at its own version if the key's row still has
// version ifVersion, in one IMMEDIATE transaction.
func (s *Store) ReplaceVersion(ctx context.Context, ns string, it kv.Item, ifVersion string) (bool, error) {
	version, err := kvsql.ReplicaVersion(it.Version)
	if err != nil {
		return false, fmt.Errorf("sqlite kv: replace version: %w", err)
	}
	old, err := kvsql.ReplicaVersion(ifVersion)
	if err != nil {
		return false, fmt.Errorf("sqlite kv: replace version: %w", err)
	}
	expires, err := kvsql.ExpiryNanos(it.ExpiresAt)
	if err != nil {
		return false, fmt.Errorf("sqlite kv: replace version: %w", err)
	}
	value := it.Value
	if value == nil {
		value = []byte{}
	}
	return s.writeVersion(ctx, "replace version", s.stmt.replaceVersion, ns, []byte(it.Key), value, it.ContentType, version, expires, old)
}

// writeVersion runs a versioned write statement that returns the version
// it wrote, and then drops the key's older tombstones.
func (s *Store) writeVersion(ctx context.Context, op string, stmt *sql.Stmt, ns string, key []byte, args ...any) (bool, error) {
	return s.replicaTx(ctx, op, func(tx *sql.Tx) (bool, error) {
		var version int64
		err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, append([]any{ns, key}, args...)...).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		_, err = tx.StmtContext(ctx, s.stmt.clearTombstone).ExecContext(ctx, ns, key, version)
		return true, err
	})
}

// DeleteVersion deletes key and leaves a tombstone at version unless the
// key's row or tombstone holds a version >= version, in one IMMEDIATE
// transaction.
func (s *Store) DeleteVersion(ctx context.Context, ns, key, version string) (bool, error) {
	v, err := kvsql.ReplicaVersion(version)
	if err != nil {
		return false, fmt.Errorf("sqlite kv: delete version: %w", err)
	}
	k := []byte(key)
	return s.replicaTx(ctx, "delete version", func(tx *sql.Tx) (bool, error) {
		var got int64
		err := tx.StmtContext(ctx, s.stmt.tombstone).QueryRowContext(ctx, ns, k, v).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		_, err = tx.StmtContext(ctx, s.stmt.deleteOlder).ExecContext(ctx, ns, k, v)
		return true, err
	})
}

// replicaTx runs fn in one IMMEDIATE transaction on the writer and commits
// it; errors of fn are the database's.
func (s *Store) replicaTx(ctx context.Context, op string, fn func(tx *sql.Tx) (bool, error)) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fail(ctx, op, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fail(ctx, op+": begin", err)
	}
	defer tx.Rollback() // no-op after Commit
	applied, err := fn(tx)
	if err != nil {
		return false, fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fail(ctx, op+": commit", err)
	}
	return applied, nil
}

// DropTombstones deletes the namespace's tombstones, sweepBatch per
// statement so that other writers never wait long for the write lock.
func (s *Store) DropTombstones(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "drop tombstones", err)
	}
	for {
		res, err := s.stmt.dropTombstones.ExecContext(ctx, ns, sweepBatch)
		if err != nil {
			return fail(ctx, "drop tombstones", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fail(ctx, "drop tombstones", err)
		}
		if n < sweepBatch {
			return nil
		}
	}
}
