package cache

import "sync/atomic"

// Stats are a Client's counters since it started, over all namespaces.
type Stats struct {
	// Hits are reads answered from Redis.
	Hits uint64
	// Misses are reads that looked in Redis and went to the backend.
	Misses uint64
	// Bypassed are reads that went to the backend without looking in Redis:
	// the breaker was open, the key's invalidation was pending, or its
	// namespace was fenced.
	Bypassed uint64
	// Shared are Gets that shared their flight (one lookup, at most one
	// backend read) with concurrent Gets of the same key.
	Shared uint64
	// Fills are entries written after a miss.
	Fills uint64
	// LostFills are fills refused because the lease was gone: a write
	// invalidated the key (the stale-fill guard at work) or the lease expired.
	LostFills uint64
	// NotCached are backend reads not filled because the value exceeds
	// MaxValueBytes or the key expires within a millisecond.
	NotCached uint64
	// Invalidations are keys invalidated after writes.
	Invalidations uint64
	// FailedInvalidations are keys whose invalidation failed or was skipped
	// while Redis was down, and was left to the background loop.
	FailedInvalidations uint64
	// Errors are Redis round trips that failed or timed out.
	Errors uint64
	// Pending is the number of keys whose invalidation is being retried now.
	Pending int
	// Fenced is the number of namespaces bypassed until they are flushed.
	Fenced int
	// Down is set while the breaker is open.
	Down bool
}

// HitRatio is Hits over all reads that asked the cache (hits, misses and
// bypasses; shared reads are not counted).
func (s Stats) HitRatio() float64 {
	n := s.Hits + s.Misses + s.Bypassed
	if n == 0 {
		return 0
	}
	return float64(s.Hits) / float64(n)
}

// counters are the atomics behind Stats.
type counters struct {
	hits, misses, bypassed, shared     atomic.Uint64
	fills, lostFills, notCached        atomic.Uint64
	invalidations, failedInvalidations atomic.Uint64
	errors                             atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	pending, fenced := len(c.pending), len(c.fences)
	c.mu.Unlock()
	return Stats{
		Hits:                c.st.hits.Load(),
		Misses:              c.st.misses.Load(),
		Bypassed:            c.st.bypassed.Load(),
		Shared:              c.st.shared.Load(),
		Fills:               c.st.fills.Load(),
		LostFills:           c.st.lostFills.Load(),
		NotCached:           c.st.notCached.Load(),
		Invalidations:       c.st.invalidations.Load(),
		FailedInvalidations: c.st.failedInvalidations.Load(),
		Errors:              c.st.errors.Load(),
		Pending:             pending,
		Fenced:              fenced,
		Down:                c.down.Load(),
	}
}
