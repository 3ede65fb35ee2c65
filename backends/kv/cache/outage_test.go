package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
)

// outageOptions make the loop quick so the tests are.
var outageOptions = ClientOptions{Timeout: DefaultTimeout, ProbeInterval: 20 * time.Millisecond, InvalidateTimeout: 200 * time.Millisecond}

// opBound is the longest one request may take during an outage: the
// invalidation budget of a write that meets a hung Redis before the probe
// notices, plus the backend, plus slack for -race on a small machine.
const opBound = 200*time.Millisecond + 500*time.Millisecond

// workload is one writer's view of a namespace: it knows every version it
// wrote, so any read older than that is a stale read.
type workload struct {
	t        *testing.T
	s        *Store
	ns       string
	keys     []string
	versions map[string]string
	slowest  time.Duration
}

func newWorkload(t *testing.T, s *Store, nkeys int) *workload {
	w := &workload{t: t, s: s, ns: kvtest.Namespace(t), versions: map[string]string{}}
	for i := range nkeys {
		w.keys = append(w.keys, fmt.Sprintf("k%d", i))
	}
	return w
}

func (w *workload) timed(what string, fn func() error) {
	w.t.Helper()
	start := time.Now()
	err := fn()
	d := time.Since(start)
	w.slowest = max(w.slowest, d)
	if err != nil {
		w.t.Fatalf("%s failed: %v", what, err)
	}
	if d > opBound {
		w.t.Errorf("%s took %v, longer than the bound %v", what, d, opBound)
	}
}

func (w *workload) put(k string, i int) {
	w.t.Helper()
	w.timed("Put "+k, func() error {
		v, err := w.s.Put(w.t.Context(), w.ns, kv.PutOp{Key: k, Value: fmt.Appendf(nil, "%s-%d", k, i)})
		w.versions[k] = v
		return err
	})
}

// get reads k and fails on a version other than the last one written.
func (w *workload) get(k string) {
	w.t.Helper()
	w.timed("Get "+k, func() error {
		it, err := w.s.Get(w.t.Context(), w.ns, k)
		if err == nil && it.Version != w.versions[k] {
			w.t.Errorf("Get(%s) = version %s, want the last written %s", k, it.Version, w.versions[k])
		}
		return err
	})
}

func (w *workload) multiGet() {
	w.t.Helper()
	w.timed("MultiGet", func() error {
		items, err := w.s.MultiGet(w.t.Context(), w.ns, w.keys)
		for _, it := range items {
			if it.Version != w.versions[it.Key] {
				w.t.Errorf("MultiGet item %s = version %s, want the last written %s", it.Key, it.Version, w.versions[it.Key])
			}
		}
		return err
	})
}

// readAll reads every key twice, so cached keys score hits.
func (w *workload) readAll() {
	w.t.Helper()
	for range 2 {
		for _, k := range w.keys {
			w.get(k)
		}
	}
	w.multiGet()
}

// cachedVersion is the version Redis holds for k, "" if none.
func cachedVersion(t *testing.T, s *Store, ns, k string) string {
	t.Helper()
	raw, err := directRedis(t).Get(t.Context(), s.rkey(ns, k)).Bytes()
	if err != nil || len(raw) == 0 || raw[0] != entryTag {
		return ""
	}
	it, err := decodeEntry(k, raw)
	if err != nil {
		t.Fatalf("entry of %s: %v", k, err)
	}
	return it.Version
}

// waitFor polls cond until it holds or the time runs out.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisOutage cuts Redis behind a proxy while a writer keeps reading its
// own writes: every request must succeed within opBound and see the latest
// version, although Redis still holds entries made stale during the cut;
// once Redis is back the cache is used again.
func TestRedisOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode int32
	}{{"Blackhole", cutBlackhole}, {"Reset", cutReset}} {
		t.Run(tc.name, func(t *testing.T) {
			requireRedis(t)
			p := newProxy(t, redisAddr())
			c, _ := newTestClient(t, p.addr(), outageOptions)
			s := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute})
			w := newWorkload(t, s, 8)
			for i, k := range w.keys {
				w.put(k, i)
			}
			w.readAll()
			before := c.Stats()
			if before.Hits == 0 {
				t.Fatalf("no hits before the outage: %+v", before)
			}

			p.cut(tc.mode)
			end := time.Now().Add(time.Second)
			for i := 0; time.Now().Before(end); i++ {
				k := w.keys[(i/4)%len(w.keys)] // each key: put, get, get, MultiGet
				switch i % 4 {
				case 0:
					w.put(k, i)
				case 3:
					w.multiGet()
				default:
					w.get(k)
				}
			}
			during := c.Stats()
			t.Logf("during the outage: slowest request %v; %+v", w.slowest, during)
			if during.Errors == 0 || during.FailedInvalidations == 0 || during.Pending == 0 {
				t.Errorf("the outage was not felt: %+v", during)
			}
			stale := 0
			for _, k := range w.keys {
				if v := cachedVersion(t, s, w.ns, k); v != "" && v != w.versions[k] {
					stale++
				}
			}
			if stale == 0 {
				t.Errorf("Redis holds no stale entry; the test proves nothing")
			}

			p.restore()
			waitFor(t, "the cache did not recover", 5*time.Second, func() bool {
				st := c.Stats()
				return !st.Down && st.Pending == 0
			})
			for _, k := range w.keys {
				if v := cachedVersion(t, s, w.ns, k); v != "" && v != w.versions[k] {
					t.Errorf("after recovery Redis still holds version %s of %s, want %s or none", v, k, w.versions[k])
				}
			}
			hits := c.Stats().Hits
			w.readAll()
			if after := c.Stats(); after.Hits <= hits {
				t.Errorf("no hits after Redis came back: %+v", after)
			}
		})
	}
}

// TestPendingOverflowFencesNamespace fails more invalidations than the
// pending set holds: the namespace must be bypassed until it is flushed,
// then cached again.
func TestPendingOverflowFencesNamespace(t *testing.T) {
	requireRedis(t)
	p := newProxy(t, redisAddr())
	o := outageOptions
	o.MaxPending = 3
	c, _ := newTestClient(t, p.addr(), o)
	s := New(openSQLite(t), c, Options{Backend: "sqlite", TTL: time.Minute})
	w := newWorkload(t, s, 8)
	for i, k := range w.keys {
		w.put(k, i)
	}
	w.readAll()

	p.cut(cutReset)
	for i, k := range w.keys {
		w.put(k, 100+i)
	}
	w.readAll()
	if st := c.Stats(); st.Fenced != 1 || st.Pending > o.MaxPending {
		t.Fatalf("after %d failed invalidations with MaxPending %d: %+v; want the namespace fenced", len(w.keys), o.MaxPending, st)
	}

	p.restore()
	waitFor(t, "the namespace was not flushed", 5*time.Second, func() bool {
		st := c.Stats()
		return st.Fenced == 0 && st.Pending == 0 && !st.Down
	})
	var left []string
	for _, k := range w.keys {
		if v := cachedVersion(t, s, w.ns, k); v != "" {
			left = append(left, k)
		}
	}
	if len(left) != 0 {
		t.Errorf("keys %q survived the flush", left)
	}
	hits := c.Stats().Hits
	w.readAll()
	if after := c.Stats(); after.Hits <= hits {
		t.Errorf("namespace not cached again after the flush: %+v", after)
	}
}
