package kvsql

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Clock issues the "now" of a write in unix nanoseconds. It never returns
// the same value twice and never goes back within a process, even when the
// wall clock is stepped back, so a key deleted and re-created by this
// process always gets a greater version. (Versions of live keys are kept
// monotonic in SQL as max(now, old+1), which also covers clocks of other
// processes.)
type Clock struct {
	last atomic.Int64
}

// Next returns max(wall clock, previous result + 1).
func (c *Clock) Next() int64 {
	for {
		now := time.Now().UnixNano()
		last := c.last.Load()
		if now <= last {
			now = last + 1
		}
		if c.last.CompareAndSwap(last, now) {
			return now
		}
	}
}

// FormatVersion renders a stored version as the API's opaque version string.
func FormatVersion(v int64) string { return strconv.FormatInt(v, 10) }

// ParseVersion parses a version string as issued by FormatVersion. Only the
// canonical form is accepted ("007" or "+7" never match version 7), so
// If-Match compares versions exactly as strings would.
func ParseVersion(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || FormatVersion(v) != s {
		return 0, false
	}
	return v, true
}

// ExpiresAt returns the expiry of a key written at now with ttl, or nil (SQL
// NULL, no expiry) when ttl is not positive.
func ExpiresAt(now int64, ttl time.Duration) *int64 {
	if ttl <= 0 {
		return nil
	}
	at := now + int64(ttl)
	return &at
}

// ExpiryTime converts a stored expiry to Item.ExpiresAt (zero for none).
func ExpiryTime(at *int64) time.Time {
	if at == nil {
		return time.Time{}
	}
	return time.Unix(0, *at)
}
