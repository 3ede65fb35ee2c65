// Package kv defines the KeyValue abstraction that every KV driver implements,
// the registry that opens drivers by name, and the errors the data API maps to
// its status codes.
package kv

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limits of the data API that drivers may rely on (validated before a driver
// is called).
const (
	MaxKeyBytes   = 1024
	MaxScanLimit  = 1000
	MaxMultiGet   = 1000
	MaxBatchOps   = 1000
	DefaultLimit  = 100
	MaxPageValues = 1 << 20 // a scan page stops at 1 MiB of values
)

// Errors returned by drivers. They are mapped to API codes in one place
// (extproc); drivers wrap them with %w.
var (
	// ErrNotFound: the key is absent or expired.
	ErrNotFound = errors.New("key not found")
	// ErrVersionMismatch: an If-Match condition failed (also when the key is absent).
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrExists: a create-only put found a live key.
	ErrExists = errors.New("key already exists")
	// ErrUnavailable: the backend could not be reached or timed out; the
	// operation was not applied (transactions roll back).
	ErrUnavailable = errors.New("backend unavailable")
	// ErrInvalidArgument: an argument no driver can accept, such as a
	// malformed version given to a Replica; retrying cannot help.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Item is a stored value with its metadata.
type Item struct {
	Key         string
	Value       []byte
	ContentType string
	Version     string
	// ExpiresAt is zero when the key has no TTL.
	ExpiresAt time.Time
}

// Cond is the precondition of a write.
type Cond struct {
	// IfMatch, when set, requires the live key to have this version.
	IfMatch string
	// IfNoneMatch requires that no live key exists (create-only).
	IfNoneMatch bool
}

// PutOp is one write.
type PutOp struct {
	Key         string
	Value       []byte
	ContentType string
	// TTL, when positive, makes the key expire after this duration.
	TTL  time.Duration
	Cond Cond
}

// Op is one operation of an atomic batch: a put, or a delete when Delete is set.
type Op struct {
	Delete bool
	Put    PutOp // for deletes only Key and Cond.IfMatch are used
}

// ScanQuery selects a key range in byte order. All bounds combine: a key is
// returned when it has Prefix, Start <= key < End (empty bounds are open) and
// key > After.
type ScanQuery struct {
	Prefix string
	Start  string
	End    string
	// After resumes a scan after the last key of the previous page.
	After string
	// Limit is the maximum number of items (1..MaxScanLimit).
	Limit int
	// MaxBytes stops the page once the values returned reach it; a page holds
	// at least one item. Zero means MaxPageValues.
	MaxBytes int
}

// Page is one page of a scan.
type Page struct {
	Items []Item
	// More is set when keys remain after the last item.
	More bool
}

// OpError reports which operation of a batch failed.
type OpError struct {
	Index int
	Err   error
}

func (e *OpError) Error() string { return fmt.Sprintf("op %d: %v", e.Index, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// Store is a KeyValue backend. Namespaces share a store; keys of different
// namespaces never meet. Implementations are safe for concurrent use.
// Versions are opaque, change on every write of a key (also across a delete
// and re-create) and compare as decimal numbers that only grow per key.
type Store interface {
	Get(ctx context.Context, ns, key string) (Item, error)
	Put(ctx context.Context, ns string, op PutOp) (version string, err error)
	// Delete removes a key; deleting an absent key is not an error unless
	// cond.IfMatch is set.
	Delete(ctx context.Context, ns, key string, cond Cond) error
	Scan(ctx context.Context, ns string, q ScanQuery) (Page, error)
	// MultiGet returns the live items among keys, in the order of keys.
	MultiGet(ctx context.Context, ns string, keys []string) ([]Item, error)
	// Batch applies all ops atomically, or none; a failing op is reported as
	// *OpError.
	Batch(ctx context.Context, ns string, ops []Op) (versions []string, err error)
	Close() error
}

// Replica is a Store that can take part in a migration (extproc's shadow
// writes and `prism migrate backfill`). As the source it reports the
// version of every delete; as the target it applies writes with the
// versions the source gave them, so that copies arriving late or twice
// never overwrite a newer write. Versions compare as decimal numbers; a
// version that is not a canonical decimal (or does not fit the store) fails
// with ErrInvalidArgument.
type Replica interface {
	Store
	// DeleteVersioned deletes like Delete and returns the delete's version:
	// greater than the key's last version, as a later write's version is
	// greater than it. A replica keeps it as the key's tombstone.
	DeleteVersioned(ctx context.Context, ns, key string, cond Cond) (version string, err error)
	// BatchVersioned is Batch whose versions include those of the deletes.
	BatchVersioned(ctx context.Context, ns string, ops []Op) (versions []string, err error)
	// PutVersion stores it (key, value, content type, version, expiry) unless
	// the key holds a version >= it.Version, live or as a tombstone. applied
	// is false when a newer write had already won.
	PutVersion(ctx context.Context, ns string, it Item) (applied bool, err error)
	// DeleteVersion deletes key unless it holds a version >= version, and
	// leaves a tombstone at version so that an older PutVersion arriving
	// later is not applied.
	DeleteVersion(ctx context.Context, ns, key, version string) (applied bool, err error)
	// ReplaceVersion stores it at its own version if the key's live row
	// still has version ifVersion, whatever the order of the two versions:
	// the repair of a divergence, where the target holds a write the
	// source never made. applied is false when the key changed meanwhile
	// or is absent (PutVersion copies absent keys).
	ReplaceVersion(ctx context.Context, ns string, it Item, ifVersion string) (applied bool, err error)
	// DropTombstones forgets the namespace's tombstones once no copy can
	// arrive any more (the migration ended).
	DropTombstones(ctx context.Context, ns string) error
}
