package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

// DefaultMaxValueBytes is the largest value cached when Options leave it
// zero. Hot small values give nearly all of a cache's benefit; large ones
// crowd Redis memory and are copied twice on every hit.
const DefaultMaxValueBytes = 64 << 10

// Options configure the cache of the namespaces one Store serves.
type Options struct {
	// Backend names the wrapped store in Redis keys, so a namespace that
	// moves to another backend never reads entries filled from the old one.
	Backend string
	// TTL is how long an entry lives in Redis (capped by the key's own
	// expiry). Zero or less makes the store invalidate-only: reads go to the
	// backend, writes still invalidate, so that a namespace whose cache was
	// switched off can switch it on again without serving entries that
	// missed invalidations.
	TTL time.Duration
	// MaxValueBytes: larger values are not cached (DefaultMaxValueBytes).
	MaxValueBytes int
}

// Store is a kv.Store that reads through a Redis cache and invalidates it on
// writes; see the package doc for the protocol.
type Store struct {
	inner    kv.Store
	c        *Client
	base     string // prefix + escaped backend + ":"
	ttl      time.Duration
	maxValue int
}

var _ kv.Store = (*Store)(nil)

// New wraps inner with the cache of client c. Wrap each namespace's store
// as often as its config changes; what must survive a change lives in c.
func New(inner kv.Store, c *Client, o Options) *Store {
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	return &Store{
		inner:    inner,
		c:        c,
		base:     c.o.Prefix + escapeName(o.Backend) + ":",
		ttl:      o.TTL,
		maxValue: o.MaxValueBytes,
	}
}

// rkey returns the Redis key of a KV key; its namespace scope is
// rkey[:len(rkey)-len(key)].
func (s *Store) rkey(ns, key string) string {
	return s.base + escapeName(ns) + ":" + key
}

func (s *Store) scope(ns string) string { return s.base + escapeName(ns) + ":" }

// unavailable is the error of a call whose context ended, as kvtest pins it.
func unavailable(err error) error {
	return fmt.Errorf("cache: %w: %w", kv.ErrUnavailable, err)
}

// Get reads through the cache; concurrent Gets of one key share one lookup
// and at most one backend read (see flights for which reads may share).
func (s *Store) Get(ctx context.Context, ns, key string) (kv.Item, error) {
	if err := ctx.Err(); err != nil {
		return kv.Item{}, unavailable(err)
	}
	if s.ttl <= 0 {
		return s.inner.Get(ctx, ns, key)
	}
	rkey := s.rkey(ns, key)
	it, shared, err := s.c.flights.do(ctx, rkey, func(ctx context.Context) (kv.Item, error) {
		return s.load(ctx, ns, key, rkey)
	})
	if shared {
		s.c.st.shared.Add(1)
	}
	return it, err
}

// load is one flight of Get.
func (s *Store) load(ctx context.Context, ns, key, rkey string) (kv.Item, error) {
	c := s.c
	if c.bypass(rkey[:len(rkey)-len(key)], rkey) {
		c.st.bypassed.Add(1)
		return s.inner.Get(ctx, ns, key)
	}
	entry, lease, err := c.lookup(ctx, rkey)
	if err != nil {
		c.st.bypassed.Add(1)
		return s.inner.Get(ctx, ns, key)
	}
	if entry != nil {
		if it, ok := fresh(key, entry); ok {
			c.st.hits.Add(1)
			return it, nil
		}
	}
	c.st.misses.Add(1)
	if lease != "" && c.hooks.afterLease != nil {
		c.hooks.afterLease(rkey)
	}
	it, err := s.inner.Get(ctx, ns, key)
	if err == nil && lease != "" {
		s.fill(ctx, rkey, lease, it)
	}
	return it, err
}

// fresh decodes a hit and checks the key has not expired by the local clock
// (the one the SQL drivers expire keys by); Redis's own expiry of the entry
// is only an upper bound.
func fresh(key string, entry []byte) (kv.Item, bool) {
	it, err := decodeEntry(key, entry)
	if err != nil {
		return kv.Item{}, false
	}
	if !it.ExpiresAt.IsZero() && !time.Now().Before(it.ExpiresAt) {
		return kv.Item{}, false
	}
	return it, true
}

// fillTTL is how long an entry for it may live, or 0 if it must not be
// cached.
func (s *Store) fillTTL(it kv.Item) time.Duration {
	if len(it.Value) > s.maxValue {
		return 0
	}
	px := s.ttl
	if !it.ExpiresAt.IsZero() {
		px = min(px, time.Until(it.ExpiresAt))
	}
	if px < time.Millisecond {
		return 0
	}
	return px.Truncate(time.Millisecond)
}

// fill stores it under the lease, if it may be cached.
func (s *Store) fill(ctx context.Context, rkey, lease string, it kv.Item) {
	px := s.fillTTL(it)
	if px == 0 {
		s.c.st.notCached.Add(1)
		return
	}
	if s.c.hooks.beforeFill != nil {
		s.c.hooks.beforeFill(rkey)
	}
	s.c.fill(ctx, rkey, lease, encodeEntry(it), px)
}

// MultiGet looks all keys up in one Redis round trip and reads the rest from
// the backend in one call. It does not share flights with Get.
func (s *Store) MultiGet(ctx context.Context, ns string, keys []string) ([]kv.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err)
	}
	if s.ttl <= 0 || len(keys) == 0 {
		return s.inner.MultiGet(ctx, ns, keys)
	}
	c := s.c
	keys = dedupe(keys)
	scope := s.scope(ns)
	items := make([]kv.Item, len(keys))
	found := make([]bool, len(keys))
	leases := make([]string, len(keys))

	// Look up the keys that may use the cache.
	var ask []int
	if !c.down.Load() {
		for i, k := range keys {
			if !c.bypass(scope, scope+k) {
				ask = append(ask, i)
			}
		}
	}
	c.st.bypassed.Add(uint64(len(keys) - len(ask)))
	if len(ask) > 0 {
		rkeys := make([]string, len(ask))
		for j, i := range ask {
			rkeys[j] = scope + keys[i]
			leases[i] = c.newLease()
		}
		lookups, err := c.lookupMany(ctx, rkeys, func(j int) string { return leases[ask[j]] })
		for j, i := range ask {
			switch {
			case err != nil || lookups[j].err != nil:
				leases[i] = ""
				c.st.bypassed.Add(1)
			case lookups[j].entry != nil:
				leases[i] = ""
				if it, ok := fresh(keys[i], lookups[j].entry); ok {
					items[i], found[i] = it, true
					c.st.hits.Add(1)
					continue
				}
				c.st.misses.Add(1)
			default:
				leases[i] = lookups[j].lease
				c.st.misses.Add(1)
			}
		}
	}

	// Read the misses from the backend.
	var miss []string
	for i, k := range keys {
		if !found[i] {
			miss = append(miss, k)
			if leases[i] != "" && c.hooks.afterLease != nil {
				c.hooks.afterLease(scope + k)
			}
		}
	}
	if len(miss) > 0 {
		got, err := s.inner.MultiGet(ctx, ns, miss)
		if err != nil {
			return nil, err
		}
		byKey := make(map[string]kv.Item, len(got))
		for _, it := range got {
			byKey[it.Key] = it
		}
		var fills []fillReq
		for i, k := range keys {
			if found[i] {
				continue
			}
			it, ok := byKey[k]
			if !ok {
				continue
			}
			items[i], found[i] = it, true
			if leases[i] == "" {
				continue
			}
			if px := s.fillTTL(it); px > 0 {
				if c.hooks.beforeFill != nil {
					c.hooks.beforeFill(scope + k)
				}
				fills = append(fills, fillReq{rkey: scope + k, lease: leases[i], entry: encodeEntry(it), px: px})
			} else {
				c.st.notCached.Add(1)
			}
		}
		c.fillMany(ctx, fills)
	}

	out := make([]kv.Item, 0, len(keys))
	for i := range keys {
		if found[i] {
			out = append(out, items[i])
		}
	}
	return out, nil
}

// dedupe drops repeated keys, keeping first positions (kvtest's rule).
func dedupe(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// Put writes the backend, then invalidates the key before it returns.
func (s *Store) Put(ctx context.Context, ns string, op kv.PutOp) (string, error) {
	v, err := s.inner.Put(ctx, ns, op)
	s.written(ctx, ns, err, op.Key)
	return v, err
}

// Delete deletes in the backend, then invalidates the key before it returns.
func (s *Store) Delete(ctx context.Context, ns, key string, cond kv.Cond) error {
	err := s.inner.Delete(ctx, ns, key, cond)
	s.written(ctx, ns, err, key)
	return err
}

// Batch applies ops in the backend, then invalidates every key they touch
// before it returns.
func (s *Store) Batch(ctx context.Context, ns string, ops []kv.Op) ([]string, error) {
	versions, err := s.inner.Batch(ctx, ns, ops)
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Put.Key
	}
	s.written(ctx, ns, err, keys...)
	return versions, err
}

// written invalidates keys after a write, unless the write certainly
// changed nothing. Other errors (a timeout, say) may hide a commit, so the
// keys are invalidated then too.
func (s *Store) written(ctx context.Context, ns string, err error, keys ...string) {
	if errors.Is(err, kv.ErrVersionMismatch) || errors.Is(err, kv.ErrExists) || len(keys) == 0 {
		return
	}
	scope := s.scope(ns)
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = scope + k
	}
	s.c.invalidate(ctx, scope, rkeys)
}

// Scan is not cached.
func (s *Store) Scan(ctx context.Context, ns string, q kv.ScanQuery) (kv.Page, error) {
	return s.inner.Scan(ctx, ns, q)
}

// Close does nothing: the caller owns the wrapped store (extproc shares one
// among the namespaces of a backend) and the Client (shared by all stores).
func (s *Store) Close() error { return nil }

// Flush deletes every cached entry of a namespace on this store's backend:
// for a namespace whose writes went past the cache for a while (a
// migration copies and serves with the backends themselves), so that
// turning the cache back on never serves an entry that missed them.
func (s *Store) Flush(ctx context.Context, ns string) error {
	return s.c.flush(ctx, s.scope(ns))
}
