package cache

import (
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
)

// concurrentGets releases n Gets of key together and checks each returns
// want.
func concurrentGets(t *testing.T, s *Store, ns, key, want string, n int) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			it, err := s.Get(t.Context(), ns, key)
			if err != nil || it.Version != want {
				t.Errorf("Get = %q, %v; want version %q", it.Version, err, want)
			}
		})
	}
	close(start)
	wg.Wait()
}

func TestConcurrentMissesReadTheBackendOnce(t *testing.T) {
	c, _ := newTestClient(t, redisAddr(), ClientOptions{})
	inner := &countingStore{Store: openSQLite(t), delay: 50 * time.Millisecond}
	s := New(inner, c, Options{Backend: "sqlite", TTL: time.Minute})
	ns := kvtest.Namespace(t)
	v, err := s.Put(t.Context(), ns, kv.PutOp{Key: "hot", Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	concurrentGets(t, s, ns, "hot", v, 32)
	if n := inner.gets.Load(); n != 1 {
		t.Errorf("32 concurrent misses made %d backend reads, want 1", n)
	}
	t.Logf("stats: %+v", c.Stats())
}

// With Redis down, nothing fills the cache for the next flight, so a burst
// costs the running flight's read and the waiting flight's: never more.
func TestConcurrentReadsWithRedisDownReadTheBackendAtMostTwice(t *testing.T) {
	requireRedis(t)
	p := newProxy(t, redisAddr())
	p.cut(cutReset)
	c, _ := newTestClient(t, p.addr(), ClientOptions{})
	inner := &countingStore{Store: openSQLite(t), delay: 50 * time.Millisecond}
	s := New(inner, c, Options{Backend: "sqlite", TTL: time.Minute})
	ns := kvtest.Namespace(t)
	v, err := s.Put(t.Context(), ns, kv.PutOp{Key: "hot", Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	concurrentGets(t, s, ns, "hot", v, 32)
	if n := inner.gets.Load(); n < 1 || n > 2 {
		t.Errorf("32 concurrent reads with Redis down made %d backend reads, want 1 or 2", n)
	}
}
