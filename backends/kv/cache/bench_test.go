package cache

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/postgres"
)

// postgresDSN returns a DSN whose search_path is a fresh schema, dropped when
// b ends (as the postgres driver's tests do). PRISM_TEST_POSTGRES overrides
// the server; an unreachable one fails unless PRISM_SKIP_POSTGRES=1.
func postgresDSN(b *testing.B) string {
	b.Helper()
	dsn := os.Getenv("PRISM_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("PRISM_SKIP_POSTGRES") == "1" {
			b.Skipf("Postgres unreachable and PRISM_SKIP_POSTGRES=1: %v", err)
		}
		b.Fatalf("Postgres unreachable (set PRISM_TEST_POSTGRES, or PRISM_SKIP_POSTGRES=1 to skip): %v", err)
	}
	defer admin.Close(context.Background())
	var r [6]byte
	crand.Read(r[:])
	schema := "prism_bench_" + hex.EncodeToString(r[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		b.Fatalf("create schema: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		b.Fatalf("parse DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// BenchmarkGetZipfian reads keys drawn from a Zipf distribution (s = 1.1,
// 10k keys of 256 bytes) from Postgres, directly and through the cache, and
// reports throughput, latency percentiles and the cache's hit ratio.
func BenchmarkGetZipfian(b *testing.B) {
	const nkeys, valueBytes = 10000, 256
	pg, err := postgres.Open(context.Background(), postgresDSN(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	ctx, ns := context.Background(), "bench"
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%05d", i)
	}
	for lo := 0; lo < nkeys; lo += kv.MaxBatchOps {
		ops := make([]kv.Op, 0, kv.MaxBatchOps)
		for _, k := range keys[lo:min(lo+kv.MaxBatchOps, nkeys)] {
			ops = append(ops, kv.Op{Put: kv.PutOp{Key: k, Value: make([]byte, valueBytes)}})
		}
		if _, err := pg.Batch(ctx, ns, ops); err != nil {
			b.Fatal(err)
		}
	}
	c, _ := newTestClient(b, redisAddr(), ClientOptions{})
	cached := New(pg, c, Options{Backend: "pg", TTL: time.Minute})

	for _, tc := range []struct {
		name string
		s    kv.Store
	}{{"cache=off", pg}, {"cache=on", cached}} {
		b.Run(tc.name, func(b *testing.B) {
			var (
				mu   sync.Mutex
				lats []time.Duration
				seed atomic.Uint64
			)
			before := c.Stats()
			start := time.Now()
			// A gateway has many requests in flight; 8 per CPU.
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seed.Add(1), uint64(time.Now().UnixNano())))
				z := rand.NewZipf(r, 1.1, 1, nkeys-1)
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					if _, err := tc.s.Get(ctx, ns, keys[z.Uint64()]); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lats) == 0 {
				return
			}
			slices.Sort(lats)
			pct := func(p float64) float64 {
				return float64(lats[int(p*float64(len(lats)-1))].Microseconds())
			}
			b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "gets/s")
			b.ReportMetric(pct(0.50), "p50-us")
			b.ReportMetric(pct(0.99), "p99-us")
			if tc.s == kv.Store(cached) {
				after := c.Stats()
				hits := after.Hits - before.Hits
				asked := hits + (after.Misses - before.Misses) + (after.Bypassed - before.Bypassed)
				shared := after.Shared - before.Shared
				// Shared reads were answered by a flight that hit or
				// missed; count them as the flight went by taking the
				// flights' ratio.
				if asked > 0 {
					b.ReportMetric(float64(hits)/float64(asked), "hit-ratio")
					b.ReportMetric(float64(shared)/float64(len(lats)), "shared-ratio")
				}
			}
		})
	}
}
