package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prism-gw/prism/backends/kv"
	_ "github.com/prism-gw/prism/backends/kv/postgres"
	_ "github.com/prism-gw/prism/backends/kv/sqlite"
	"github.com/prism-gw/prism/internal/pgtest"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/migration/backfill"
)

const ns = "orders"

// ends opens a SQLite source and a Postgres target through their backend
// configs, as `prism migrate backfill` does, with n keys in the source.
func ends(t *testing.T, n int) (kv.Store, kv.Replica) { return endsTB(t, n) }

func endsTB(t testing.TB, n int) (kv.Store, kv.Replica) {
	t.Helper()
	ctx := context.Background()
	from := &configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: filepath.Join(t.TempDir(), "kv.db")}}}
	to := &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: pgtest.Schema(t, "backfill_")}}}
	src, dst, err := backfill.Open(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(); dst.Close() })
	var ops []kv.Op
	for i := range n {
		ops = append(ops, kv.Op{Put: kv.PutOp{Key: fmt.Sprintf("k%05d", i), Value: []byte(fmt.Sprintf(`{"n":%d}`, i)), ContentType: "application/json"}})
		if len(ops) == kv.MaxBatchOps || i == n-1 {
			if _, err := src.Batch(ctx, ns, ops); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	return src, dst
}

func all(t *testing.T, s kv.Store) map[string]kv.Item {
	t.Helper()
	out := map[string]kv.Item{}
	after := ""
	for {
		p, err := s.Scan(context.Background(), ns, kv.ScanQuery{After: after, Limit: kv.MaxScanLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			out[it.Key] = it
		}
		if !p.More || len(p.Items) == 0 {
			return out
		}
		after = p.Items[len(p.Items)-1].Key
	}
}

// sameContent reports the first key whose value, type or version differs.
func sameContent(t *testing.T, src, dst kv.Store) {
	t.Helper()
	a, b := all(t, src), all(t, dst)
	if len(a) != len(b) {
		t.Errorf("source has %d keys, target %d", len(a), len(b))
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || string(x.Value) != string(y.Value) || x.Version != y.Version || x.ContentType != y.ContentType {
			t.Errorf("key %s: source %q v%s, target %q v%s (present %v)", k, x.Value, x.Version, y.Value, y.Version, ok)
			return
		}
	}
}

func TestBackfillResumesFromItsCheckpoint(t *testing.T) {
	const n = 500
	src, dst := ends(t, n)
	ctx := context.Background()

	// A shadow write already put a newer value of one key on the target.
	newer := kv.Item{Key: "k00010", Value: []byte("newer"), ContentType: "text/plain", Version: "9000000000000000000"} // versions are unix nanoseconds
	if ok, err := dst.PutVersion(ctx, ns, newer); err != nil || !ok {
		t.Fatalf("shadow write: %v %v", ok, err)
	}

	// The first run is killed after 200 keys; the control plane keeps its
	// last report.
	var saved backfill.Progress
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := backfill.Run(runCtx, backfill.Options{Namespace: ns, From: src, To: dst, PageSize: 100, ReportEvery: 1,
		Report: func(_ context.Context, p backfill.Progress) error {
			saved = p
			if p.KeysDone >= 200 {
				cancel()
			}
			return nil
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: err = %v, want context.Canceled", err)
	}
	if saved.Done || saved.KeysDone < 200 || saved.KeysDone >= n || saved.Checkpoint == "" {
		t.Fatalf("progress of the killed run = %+v", saved)
	}

	// The second run resumes at the checkpoint.
	final, err := backfill.Run(ctx, backfill.Options{Namespace: ns, From: src, To: dst, Resume: saved, PageSize: 100,
		Report: func(_ context.Context, p backfill.Progress) error { saved = p; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !final.Done || final.KeysDone != n || final.KeysTotal != n || saved != final {
		t.Errorf("final progress = %+v (last report %+v), want done with %d keys", final, saved, n)
	}
	if final.Copied != n-1 || final.SkippedNewer != 1 {
		t.Errorf("copied %d, skipped newer %d; want %d and 1 (the shadow-written key)", final.Copied, final.SkippedNewer, n-1)
	}
	got := all(t, dst)
	if it := got[newer.Key]; string(it.Value) != "newer" {
		t.Errorf("the backfill overwrote a newer shadow write: %q", it.Value)
	}
	delete(got, newer.Key)
	want := all(t, src)
	for k, it := range want {
		if g, ok := got[k]; k != newer.Key && (!ok || g.Version != it.Version || string(g.Value) != string(it.Value)) {
			t.Fatalf("key %s not copied with its version: %+v vs %+v", k, g, it)
		}
	}
}

func TestBackfillResumedCopiesOnlyTheRest(t *testing.T) {
	const n = 300
	src, dst := ends(t, n)
	ctx := context.Background()
	var saved backfill.Progress
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	backfill.Run(runCtx, backfill.Options{Namespace: ns, From: src, To: dst, PageSize: 50, ReportEvery: 1,
		Report: func(_ context.Context, p backfill.Progress) error {
			saved = p
			if p.KeysDone == 150 {
				cancel()
			}
			return nil
		}})
	first := saved
	final, err := backfill.Run(ctx, backfill.Options{Namespace: ns, From: src, To: dst, Resume: first, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if copiedAgain := final.Copied - first.Copied; copiedAgain >= n || copiedAgain != n-first.KeysDone {
		t.Errorf("the resumed run copied %d keys after a checkpoint at %d of %d: it started over", copiedAgain, first.KeysDone, n)
	}
	sameContent(t, src, dst)
}

func TestRepairMakesTheTargetEqual(t *testing.T) {
	src, dst := ends(t, 120)
	ctx := context.Background()
	if _, err := backfill.Run(ctx, backfill.Options{Namespace: ns, From: src, To: dst}); err != nil {
		t.Fatal(err)
	}
	// Drift the shadow traffic missed: a write and a delete on the source,
	// and a key only the target has.
	if _, err := src.Put(ctx, ns, kv.PutOp{Key: "k00001", Value: []byte("changed"), ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(ctx, ns, "k00002", kv.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.PutVersion(ctx, ns, kv.Item{Key: "stray", Value: []byte("x"), Version: "7"}); err != nil {
		t.Fatal(err)
	}
	// A write that reached only the target (a newer version there): a
	// versioned copy cannot replace it, so ReplaceVersion puts the source
	// item back, If-Match the version the repair read.
	if _, err := dst.Put(ctx, ns, kv.PutOp{Key: "k00003", Value: []byte("corrupt")}); err != nil {
		t.Fatal(err)
	}
	r, err := backfill.Repair(ctx, backfill.Options{Namespace: ns, From: src, To: dst})
	if err != nil {
		t.Fatal(err)
	}
	if r.Compared != 119 || r.Copied != 1 || r.Deleted != 2 || r.Rewritten != 1 || r.Unresolved != 0 {
		t.Errorf("repair = %+v, want 119 compared, 1 copied (k00001), 1 rewritten (k00003), 2 deleted (k00002 and stray)", r)
	}
	sameContent(t, src, dst)
	// A late copy of the deleted key's old value does not bring it back.
	if ok, err := dst.PutVersion(ctx, ns, kv.Item{Key: "stray", Value: []byte("x"), Version: "7"}); err != nil || ok {
		t.Errorf("late copy after the repair's delete applied = %v, %v", ok, err)
	}
	again, err := backfill.Repair(ctx, backfill.Options{Namespace: ns, From: src, To: dst})
	if err != nil || again.Copied != 0 || again.Deleted != 0 {
		t.Errorf("second repair = %+v, %v; want nothing to do", again, err)
	}
}

// BenchmarkBackfill copies b.N keys from SQLite to Postgres and prints the
// copy rate, with one worker and with the default four.
func BenchmarkBackfill(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			src, dst := endsTB(b, b.N)
			b.ResetTimer()
			p, err := backfill.Run(context.Background(), backfill.Options{Namespace: ns, From: src, To: dst, Workers: workers})
			if err != nil || p.Copied != uint64(b.N) {
				b.Fatalf("copied %d of %d: %v", p.Copied, b.N, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
