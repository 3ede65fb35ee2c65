package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
)

// TestStaleFillIsRefused plays the race of the package doc step by step:
// reader A misses and reads v1, a writer stores v2 and invalidates, then A
// fills v1. A's fill must be refused and every later read must see v2.
func TestStaleFillIsRefused(t *testing.T) {
	c, rdb := newTestClient(t, redisAddr(), ClientOptions{})
	s := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute})
	ctx, ns := t.Context(), kvtest.Namespace(t)
	v1, err := s.Put(ctx, ns, kv.PutOp{Key: "k", Value: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}

	readV1 := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	c.hooks.beforeFill = func(string) {
		once.Do(func() {
			close(readV1)
			<-release
		})
	}
	type result struct {
		it  kv.Item
		err error
	}
	a := make(chan result, 1)
	go func() {
		it, err := s.Get(ctx, ns, "k")
		a <- result{it, err}
	}()
	<-readV1 // A holds a lease and has read v1 from the backend
	v2, err := s.Put(ctx, ns, kv.PutOp{Key: "k", Value: []byte("two")})
	if err != nil {
		t.Fatal(err)
	}
	close(release) // A fills v1 now
	if r := <-a; r.err != nil || r.it.Version != v1 {
		t.Fatalf("reader A (started before the write) = %q, %v; want v1 %q", r.it.Version, r.err, v1)
	}
	if st := c.Stats(); st.LostFills != 1 || st.Fills != 0 {
		t.Fatalf("A's stale fill was not refused: %+v", st)
	}
	if raw, err := rdb.Get(ctx, s.rkey(ns, "k")).Bytes(); err == nil && raw[0] == entryTag {
		t.Fatalf("Redis holds an entry after the write and the refused fill: %q", raw)
	}
	for i := range 3 { // miss+fill, then hits
		it, err := s.Get(ctx, ns, "k")
		if err != nil || it.Version != v2 || string(it.Value) != "two" {
			t.Fatalf("read %d after the write = %q %q, %v; want %q two", i, it.Version, it.Value, err, v2)
		}
	}
	if st := c.Stats(); st.Fills != 1 || st.Hits != 2 {
		t.Errorf("after the write: want one fill of v2 and two hits, got %+v", st)
	}
}

// TestReadYourWritesUnderRacingFills runs writers and readers on a few hot
// keys through two clients (two extproc processes sharing Redis and the
// backend), with random delays between each lease and its backend read and
// between the read and the fill. After every acknowledged write, each later
// read by the writer, through either process, must return that version or a
// newer one.
func TestReadYourWritesUnderRacingFills(t *testing.T) {
	inner := openSQLite(t)
	prefix := testPrefix(t)
	jitter := func(string) { time.Sleep(rand.N(2 * time.Millisecond)) }
	var clients []*Client
	var stores []*Store
	for range 2 {
		c, _ := newTestClient(t, redisAddr(), ClientOptions{Prefix: prefix})
		c.hooks = hooks{afterLease: jitter, beforeFill: jitter}
		clients = append(clients, c)
		stores = append(stores, New(inner, c, Options{Backend: "sqlite", TTL: time.Minute}))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ns := kvtest.Namespace(t)
	keys := []string{"hot-a", "hot-b", "hot-c"}
	const writers, readers, writes = 4, 8, 50

	var wg, readersWG sync.WaitGroup
	done := make(chan struct{})
	for r := range readers {
		readersWG.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				s := stores[rand.N(len(stores))]
				var err error
				if r%4 == 0 {
					_, err = s.MultiGet(ctx, ns, keys)
				} else {
					_, err = s.Get(ctx, ns, keys[rand.N(len(keys))])
					if errors.Is(err, kv.ErrNotFound) {
						err = nil
					}
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			acked := map[string]uint64{}
			for i := range writes {
				k := keys[rand.N(len(keys))]
				s := stores[rand.N(len(stores))]
				v, err := s.Put(ctx, ns, kv.PutOp{Key: k, Value: fmt.Appendf(nil, "w%d-%d", w, i)})
				if err != nil {
					t.Errorf("writer %d: Put: %v", w, err)
					return
				}
				acked[k] = max(acked[k], version(t, v))
				for rk, want := range acked {
					s := stores[rand.N(len(stores))]
					var got string
					if i%3 == 0 {
						items, err := s.MultiGet(ctx, ns, []string{rk})
						if err != nil || len(items) != 1 {
							t.Errorf("writer %d: MultiGet(%s) = %d items, %v", w, rk, len(items), err)
							return
						}
						got = items[0].Version
					} else {
						it, err := s.Get(ctx, ns, rk)
						if err != nil {
							t.Errorf("writer %d: Get(%s): %v", w, rk, err)
							return
						}
						got = it.Version
					}
					if version(t, got) < want {
						t.Errorf("writer %d read %s at version %s after its write of version %d was acknowledged", w, rk, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readersWG.Wait()

	var total Stats
	for _, c := range clients {
		st := c.Stats()
		total.Hits += st.Hits
		total.Fills += st.Fills
		total.LostFills += st.LostFills
		total.Errors += st.Errors
		total.FailedInvalidations += st.FailedInvalidations
	}
	t.Logf("hits %d, fills %d, fills refused %d, redis errors %d, failed invalidations %d", total.Hits, total.Fills, total.LostFills, total.Errors, total.FailedInvalidations)
	if total.Hits == 0 || total.LostFills == 0 {
		t.Errorf("the test did not exercise the race (hits %d, refused fills %d); widen the delays", total.Hits, total.LostFills)
	}
}

func version(t *testing.T, v string) uint64 {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Errorf("version %q is not decimal: %v", v, err)
	}
	return n
}
