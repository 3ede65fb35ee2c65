package postgres

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prism-gw/prism/backends/kv"
)

func BenchmarkGet(b *testing.B) {
	s := openStore(b, testDSN(b), Options{})
	ctx := context.Background()
	const keys = 1000
	ops := make([]kv.Op, keys)
	for i := range ops {
		ops[i] = kv.Op{Put: kv.PutOp{Key: fmt.Sprintf("key-%04d", i), Value: make([]byte, 256)}}
	}
	if _, err := s.Batch(ctx, "bench", ops); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench", fmt.Sprintf("key-%04d", n.Add(1)%keys)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPut(b *testing.B) {
	s := openStore(b, testDSN(b), Options{})
	ctx := context.Background()
	value := make([]byte, 256)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Put(ctx, "bench", kv.PutOp{Key: fmt.Sprintf("key-%d", n.Add(1)), Value: value}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPutVersion measures copies as a migration's shadow writes and
// backfill apply them: fresh keys, and newer versions of existing keys.
func BenchmarkPutVersion(b *testing.B) {
	s := openStore(b, testDSN(b), Options{})
	ctx := context.Background()
	value := make([]byte, 256)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			it := kv.Item{Key: fmt.Sprintf("key-%d", i%1000), Value: value, Version: strconv.FormatInt(i, 10)}
			if _, err := s.PutVersion(ctx, "bench", it); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
