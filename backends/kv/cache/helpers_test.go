package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/sqlite"
)

// redisAddr is the test server; PRISM_TEST_REDIS overrides it.
func redisAddr() string {
	if a := os.Getenv("PRISM_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// requireRedis fails the test when the test Redis is unreachable, unless
// PRISM_SKIP_REDIS=1 makes it skip.
func requireRedis(t testing.TB) {
	t.Helper()
	rdb := redis.NewClient(RedisOptions(redisAddr()))
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("PRISM_SKIP_REDIS") == "1" {
			t.Skipf("Redis at %s unreachable and PRISM_SKIP_REDIS=1: %v", redisAddr(), err)
		}
		t.Fatalf("Redis at %s unreachable (set PRISM_TEST_REDIS, or PRISM_SKIP_REDIS=1 to skip): %v", redisAddr(), err)
	}
}

// testPrefix returns a key prefix of its own for t and deletes every key
// under it from the real server when t ends.
func testPrefix(t testing.TB) string {
	t.Helper()
	requireRedis(t)
	var b [6]byte
	rand.Read(b[:])
	prefix := "prism-test-" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(RedisOptions(redisAddr()))
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleaning up keys under %s: %v", prefix, err)
		}
	})
	return prefix
}

// quietLogger keeps expected Redis outages out of test output.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestClient starts a Client on the Redis at addr with a fresh prefix;
// everything is closed when t ends.
func newTestClient(t testing.TB, addr string, o ClientOptions) (*Client, *redis.Client) {
	t.Helper()
	requireRedis(t)
	if o.Prefix == "" {
		o.Prefix = testPrefix(t)
	}
	if o.Logger == nil {
		o.Logger = quietLogger
	}
	if o.Timeout == 0 {
		// Tests that count hits must not lose a round trip to the 50 ms
		// production bound when CI's two cores are busy; tests of slow or
		// cut Redis set their own timeouts.
		o.Timeout = 2 * time.Second
	}
	rdb := redis.NewClient(RedisOptions(addr))
	c := NewClient(rdb, o)
	t.Cleanup(func() {
		c.Close()
		rdb.Close()
	})
	return c, rdb
}

// openSQLite opens a sqlite store on a fresh file, closed when t ends.
func openSQLite(t testing.TB) kv.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kv.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// directRedis is a client on the real server, for looking behind the cache.
func directRedis(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(RedisOptions(redisAddr()))
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// countingStore counts backend reads and can slow them down.
type countingStore struct {
	kv.Store
	gets, multiGets atomic.Int64
	delay           time.Duration
}

func (s *countingStore) Get(ctx context.Context, ns, key string) (kv.Item, error) {
	s.gets.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	return s.Store.Get(ctx, ns, key)
}

func (s *countingStore) MultiGet(ctx context.Context, ns string, keys []string) ([]kv.Item, error) {
	s.multiGets.Add(1)
	return s.Store.MultiGet(ctx, ns, keys)
}

// proxy is a TCP proxy in front of Redis that a test can cut, so outages
// never touch the shared server.
type proxy struct {
	ln     net.Listener
	target string
	// mode: 0 forwards; cutBlackhole drops all bytes both ways and accepts
	// connections that go nowhere; cutReset closes every connection and
	// refuses new ones.
	mode  atomic.Int32
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

const (
	cutBlackhole = 1
	cutReset     = 2
)

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.mode.Load() == cutReset {
			in.Close()
			continue
		}
		if !p.track(in) {
			continue
		}
		p.wg.Go(func() {
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				p.untrack(in)
				return
			}
			if !p.track(out) {
				p.untrack(in)
				return
			}
			p.wg.Go(func() { p.pipe(out, in) })
			p.pipe(in, out)
		})
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// pipe copies from src to dst, dropping bytes while the proxy is cut.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.untrack(dst)
	defer p.untrack(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.mode.Load() == 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// cut starts an outage of the given kind.
func (p *proxy) cut(mode int32) {
	p.mode.Store(mode)
	if mode == cutReset {
		p.closeAll()
	}
}

// restore ends the outage; connections that lived through a blackhole are
// reset, as a healed partition would leave them.
func (p *proxy) restore() {
	p.closeAll()
	p.mode.Store(0)
}
