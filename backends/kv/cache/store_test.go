package cache

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
)

func TestEntryNeverOutlivesTheKey(t *testing.T) {
	c, rdb := newTestClient(t, redisAddr(), ClientOptions{})
	s := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute})
	ctx, ns := t.Context(), kvtest.Namespace(t)
	for _, tc := range []struct {
		key string
		ttl time.Duration
		max time.Duration // the longest the Redis entry may live
	}{
		{"short", 400 * time.Millisecond, 400 * time.Millisecond},
		{"long", time.Hour, time.Minute},
		{"none", 0, time.Minute},
	} {
		if _, err := s.Put(ctx, ns, kv.PutOp{Key: tc.key, Value: []byte("x"), TTL: tc.ttl}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, ns, tc.key); err != nil {
			t.Fatal(err)
		}
		pttl, err := rdb.PTTL(ctx, s.rkey(ns, tc.key)).Result()
		if err != nil || pttl <= 0 || pttl > tc.max {
			t.Errorf("key %s with TTL %v: Redis entry PTTL = %v, %v; want in (0, %v]", tc.key, tc.ttl, pttl, err, tc.max)
		}
	}
}

func TestHitPastExpiresAtIsAMiss(t *testing.T) {
	c, rdb := newTestClient(t, redisAddr(), ClientOptions{})
	s := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute})
	ctx, ns := t.Context(), kvtest.Namespace(t)
	// An entry whose key has expired although Redis still keeps it (clock
	// skew, or a PX rounded up in transit).
	old := kv.Item{Value: []byte("expired"), Version: "1", ExpiresAt: time.Now().Add(-time.Millisecond)}
	if err := rdb.Set(ctx, s.rkey(ns, "k"), encodeEntry(old), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if it, err := s.Get(ctx, ns, "k"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get of an expired entry = %q, %v; want kv.ErrNotFound", it.Value, err)
	}
	items, err := s.MultiGet(ctx, ns, []string{"k"})
	if err != nil || len(items) != 0 {
		t.Fatalf("MultiGet of an expired entry = %d items, %v; want none", len(items), err)
	}
	if st := c.Stats(); st.Hits != 0 {
		t.Errorf("an expired entry counted as a hit: %+v", st)
	}
}

func TestLargeValuesAreNotCached(t *testing.T) {
	c, rdb := newTestClient(t, redisAddr(), ClientOptions{})
	s := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute, MaxValueBytes: 16})
	ctx, ns := t.Context(), kvtest.Namespace(t)
	for _, tc := range []struct {
		key    string
		size   int
		cached bool
	}{{"fits", 16, true}, {"large", 17, false}} {
		if _, err := s.Put(ctx, ns, kv.PutOp{Key: tc.key, Value: make([]byte, tc.size)}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if it, err := s.Get(ctx, ns, tc.key); err != nil || len(it.Value) != tc.size {
				t.Fatalf("Get(%s) = %d bytes, %v; want %d", tc.key, len(it.Value), err, tc.size)
			}
		}
		raw, _ := rdb.Get(ctx, s.rkey(ns, tc.key)).Bytes()
		if cached := len(raw) > 0 && raw[0] == entryTag; cached != tc.cached {
			t.Errorf("%d-byte value with MaxValueBytes 16: cached = %v, want %v", tc.size, cached, tc.cached)
		}
	}
	if st := c.Stats(); st.NotCached != 1 || st.Hits != 1 {
		t.Errorf("want one value refused for size and one hit, got %+v", st)
	}
}

func TestInvalidateOnlyStore(t *testing.T) {
	c, rdb := newTestClient(t, redisAddr(), ClientOptions{})
	cached := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute})
	ctx, ns := t.Context(), kvtest.Namespace(t)
	if _, err := cached.Put(ctx, ns, kv.PutOp{Key: "k", Value: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cached.Get(ctx, ns, "k"); err != nil {
		t.Fatal(err)
	}
	// The namespace's cache is switched off; writes must still invalidate,
	// or switching it on again would serve "one".
	off := New(cached.inner, c, Options{Backend: "sqlite"})
	v2, err := off.Put(ctx, ns, kv.PutOp{Key: "k", Value: []byte("two")})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, cached.rkey(ns, "k")).Result(); n != 0 {
		t.Errorf("an invalidate-only store left the entry in Redis")
	}
	if it, err := off.Get(ctx, ns, "k"); err != nil || it.Version != v2 {
		t.Errorf("invalidate-only Get = %q, %v; want %q", it.Version, err, v2)
	}
	if it, err := cached.Get(ctx, ns, "k"); err != nil || it.Version != v2 {
		t.Errorf("Get after switching the cache back on = %q, %v; want %q", it.Version, err, v2)
	}
	if st := c.Stats(); st.Hits+st.Misses != 2 {
		t.Errorf("the invalidate-only store looked in Redis: %+v", st)
	}
}

func TestMultiGetMixesHitsAndMisses(t *testing.T) {
	c, _ := newTestClient(t, redisAddr(), ClientOptions{})
	inner := &countingStore{Store: openSQLite(t)}
	s := New(inner, c, Options{Backend: "sqlite", TTL: time.Minute})
	ctx, ns := t.Context(), kvtest.Namespace(t)
	versions := map[string]string{}
	for _, k := range []string{"a", "b", "c"} {
		v, err := s.Put(ctx, ns, kv.PutOp{Key: k, Value: []byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		versions[k] = v
	}
	if _, err := s.Get(ctx, ns, "b"); err != nil { // b is cached
		t.Fatal(err)
	}
	keys := []string{"c", "missing", "b", "a", "c"}
	for round := range 2 {
		items, err := s.MultiGet(ctx, ns, keys)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Key)
			if it.Version != versions[it.Key] || string(it.Value) != it.Key {
				t.Errorf("round %d: item %s = %q at %s, want %q at %s", round, it.Key, it.Value, it.Version, it.Key, versions[it.Key])
			}
		}
		if want := []string{"c", "b", "a"}; !slices.Equal(got, want) {
			t.Errorf("round %d: MultiGet(%q) = %q, want %q", round, keys, got, want)
		}
	}
	// Round 0 reads c, missing and a from the backend in one call and fills
	// c and a; round 1 reads only the missing key.
	if n := inner.multiGets.Load(); n != 2 {
		t.Errorf("backend MultiGet calls = %d, want 2", n)
	}
	if st := c.Stats(); st.Hits != 4 || st.Fills != 3 {
		t.Errorf("want 4 hits (b in round 0; c, b, a in round 1) and 3 fills (b, c, a), got %+v", st)
	}
}
