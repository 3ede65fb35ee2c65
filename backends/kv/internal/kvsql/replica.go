package kvsql

import (
	"fmt"
	"math"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

// ReplicaVersion parses the version of a copy (kv.Replica's PutVersion and
// DeleteVersion). Unlike an If-Match version, which simply fails to match
// when malformed, a malformed copy version is a caller's bug: comparing it
// as a number is impossible, so it is refused with kv.ErrInvalidArgument.
func ReplicaVersion(s string) (int64, error) {
	v, ok := ParseVersion(s)
	if !ok {
		return 0, fmt.Errorf("%w: version %q is not a canonical decimal number in [0, %d]", kv.ErrInvalidArgument, s, int64(math.MaxInt64))
	}
	return v, nil
}

// maxExpiry is the last instant whose unix nanoseconds fit an int64.
var maxExpiry = time.Unix(0, math.MaxInt64)

// ExpiryNanos converts Item.ExpiresAt to a stored expiry: nil (SQL NULL, no
// expiry) for the zero time. An instant outside the int64 nanosecond range
// (before 1678 or after 2262) cannot be stored and is refused with
// kv.ErrInvalidArgument rather than silently wrapped.
func ExpiryNanos(t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.After(maxExpiry) || t.Before(time.Unix(0, math.MinInt64)) {
		return nil, fmt.Errorf("%w: expiry %v is outside the storable range", kv.ErrInvalidArgument, t)
	}
	at := t.UnixNano()
	return &at, nil
}

// DeleteVersion is the version of a delete issued at now (from the store's
// Clock) of a key whose last version was last (nil when the key was
// absent): max(now, last+1), like a write's. A later write of the key gets
// a greater version as long as the key's last version did not come from a
// clock ahead of this process's clock (another gateway's, or a copied
// version); then the later write is smaller until the clock catches up,
// which synchronized clocks (NTP) keep within their skew.
//
// The greatest version stays as it is rather than wrap to a negative one;
// only a copied version can get there, as clocks stay far below it.
func DeleteVersion(now int64, last *int64) int64 {
	if last != nil && *last >= now {
		return min(*last, math.MaxInt64-1) + 1
	}
	return now
}
