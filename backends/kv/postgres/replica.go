package postgres

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/internal/kvsql"
)

// DeleteVersioned deletes key like Delete and returns the delete's version:
// max(now, last version + 1), or now when the key was absent. A later Put
// gets a greater version as long as the gateways' clocks agree (see
// kvsql.DeleteVersion and the package doc).
func (s *Store) DeleteVersioned(ctx context.Context, ns, key string, cond kv.Cond) (string, error) {
	return s.delete(ctx, ns, key, cond)
}

// BatchVersioned is Batch, with the versions of the deletes too.
func (s *Store) BatchVersioned(ctx context.Context, ns string, ops []kv.Op) ([]string, error) {
	return s.batch(ctx, ns, ops, true)
}

// PutVersion writes it at its own version unless the key's row (live or
// expired but not yet swept) or tombstone holds a version >= it.Version,
// and drops an older tombstone when it writes (see replicaLockSQL for how
// concurrent copies are ordered).
func (s *Store) PutVersion(ctx context.Context, ns string, it kv.Item) (bool, error) {
	version, err := kvsql.ReplicaVersion(it.Version)
	if err != nil {
		return false, fmt.Errorf("postgres kv: put version: %w", err)
	}
	expires, err := kvsql.ExpiryNanos(it.ExpiresAt)
	if err != nil {
		return false, fmt.Errorf("postgres kv: put version: %w", err)
	}
	value := it.Value
	if value == nil {
		value = []byte{} // nil would be NULL; empty is what was meant
	}
	return s.replicaWrite(ctx, "put version", ns, it.Key, putVersionSQL,
		ns, []byte(it.Key), value, it.ContentType, version, expires)
}

// ReplaceVersion writes it at its own version if the key's row still has
// version ifVersion.
func (s *Store) ReplaceVersion(ctx context.Context, ns string, it kv.Item, ifVersion string) (bool, error) {
	version, err := kvsql.ReplicaVersion(it.Version)
	if err != nil {
		return false, fmt.Errorf("postgres kv: replace version: %w", err)
	}
	old, err := kvsql.ReplicaVersion(ifVersion)
	if err != nil {
		return false, fmt.Errorf("postgres kv: replace version: %w", err)
	}
	expires, err := kvsql.ExpiryNanos(it.ExpiresAt)
	if err != nil {
		return false, fmt.Errorf("postgres kv: replace version: %w", err)
	}
	value := it.Value
	if value == nil {
		value = []byte{}
	}
	return s.replicaWrite(ctx, "replace version", ns, it.Key, replaceVersionSQL,
		ns, []byte(it.Key), value, it.ContentType, version, expires, old)
}

// DeleteVersion deletes key and leaves a tombstone at version unless the
// key's row or tombstone holds a version >= version.
func (s *Store) DeleteVersion(ctx context.Context, ns, key, version string) (bool, error) {
	v, err := kvsql.ReplicaVersion(version)
	if err != nil {
		return false, fmt.Errorf("postgres kv: delete version: %w", err)
	}
	return s.replicaWrite(ctx, "delete version", ns, key, deleteVersionSQL, ns, []byte(key), v)
}

// replicaWrite sends the key's advisory lock and query, which returns
// whether it applied, as one pipeline: one round trip, one implicit
// transaction.
func (s *Store) replicaWrite(ctx context.Context, op, ns, key, query string, args ...any) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fail(ctx, op, err)
	}
	var b pgx.Batch
	b.Queue(replicaLockSQL, replicaLockID(ns, key))
	b.Queue(query, args...)
	br := s.pool.SendBatch(ctx, &b)
	var applied bool
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&applied)
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return false, fail(ctx, op, err)
	}
	return applied, nil
}

// replicaLockID is the advisory lock id of a key: a 64-bit FNV-1a hash of
// the namespace and the key. It must be the same in every gateway, so no
// per-process seed. Two keys that collide only wait for each other.
func replicaLockID(ns, key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int64(h.Sum64())
}

// DropTombstones deletes the namespace's tombstones. Reads never look at
// tombstones and no copy arrives any more, so one statement holding its row
// locks until it ends blocks no one.
func (s *Store) DropTombstones(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "drop tombstones", err)
	}
	if _, err := s.pool.Exec(ctx, dropTombstonesSQL, ns); err != nil {
		return fail(ctx, "drop tombstones", err)
	}
	return nil
}
