package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	_ "github.com/prism-gw/prism/backends/ts/postgres"
	_ "github.com/prism-gw/prism/backends/ts/sqlite"
	"github.com/prism-gw/prism/internal/pgtest"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/migration/backfill"
)

const tsNS = "metrics"

// t0 is the time of the first test event; event i is i seconds later.
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// tsBackends are a SQLite source and a Postgres target, as backend configs.
func tsBackends(t testing.TB) (from, to *configv1.Backend) {
	t.Helper()
	from = &configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: filepath.Join(t.TempDir(), "ts.db")}}}
	to = &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: pgtest.Schema(t, "backfill_ts_")}}}
	return from, to
}

// tsEnds opens both ends as `prism migrate backfill` does, with n events
// in the source spread over 7 series (appended in batches mixing series,
// so that positions interleave).
func tsEnds(t testing.TB, n int) (from, to *configv1.Backend, src, dst ts.Replica) {
	t.Helper()
	from, to = tsBackends(t)
	src, dst, err := backfill.OpenTS(context.Background(), tsNS, from, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(); dst.Close() })
	appendN(t, src, 0, n)
	return from, to, src, dst
}

// appendN appends events first..first+n-1 to s.
func appendN(t testing.TB, s ts.Replica, first, n int) []ts.Event {
	t.Helper()
	var stored, batch []ts.Event
	for i := first; i < first+n; i++ {
		batch = append(batch, ts.Event{Series: fmt.Sprintf("host-%d", i%7), Time: t0.Add(time.Duration(i) * time.Second), ID: fmt.Sprintf("e%05d", i),
			Data: []byte(fmt.Sprintf(`{"n": %d}`, i)), Tags: map[string]string{"dc": "x"}})
		if len(batch) == ts.MaxBatch || i == first+n-1 {
			got, _, err := s.AppendEvents(context.Background(), tsNS, batch)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, got...)
			batch = nil
		}
	}
	return stored
}

// exportAll lists every event of s by "series@seq".
func exportAll(t *testing.T, s ts.Replica) map[string]ts.Event {
	t.Helper()
	out := map[string]ts.Event{}
	after := ""
	for {
		events, next, err := s.Export(context.Background(), tsNS, ts.ExportArgs{After: after, Limit: ts.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			k := fmt.Sprintf("%s@%d", e.Series, e.Seq)
			if _, dup := out[k]; dup {
				t.Fatalf("position %s exported twice", k)
			}
			out[k] = e
		}
		if next == "" {
			return out
		}
		after = next
	}
}

// samePositions checks that dst holds exactly the events of src, each at
// its source position, once.
func samePositions(t *testing.T, src, dst ts.Replica) {
	t.Helper()
	a, b := exportAll(t, src), exportAll(t, dst)
	if len(a) != len(b) {
		t.Errorf("source has %d events, target %d", len(a), len(b))
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.ID != y.ID || !x.Time.Equal(y.Time) {
			t.Errorf("event %s: source %s %s, target %s %s (present %v)", k, x.ID, x.Time, y.ID, y.Time, ok)
			return
		}
	}
}

func TestTSBackfillResumesFromItsCheckpoint(t *testing.T) {
	const n = 1000
	_, _, src, dst := tsEnds(t, n)
	ctx := context.Background()

	// Shadow copies already put three events on the target.
	first, _, err := src.Export(ctx, tsNS, ts.ExportArgs{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if stored, _, err := dst.Copy(ctx, tsNS, first); err != nil || stored != 3 {
		t.Fatalf("shadow copy: %d %v", stored, err)
	}

	// The first run is killed after 300 events; the control plane keeps
	// its last report.
	var saved backfill.Progress
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = backfill.RunTS(runCtx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst, PageSize: 100, ReportEvery: 1,
		Report: func(_ context.Context, p backfill.Progress) error {
			saved = p
			if p.KeysDone >= 300 {
				cancel()
			}
			return nil
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: err = %v, want context.Canceled", err)
	}
	if saved.Done || saved.KeysDone != 300 || saved.KeysTotal != n || saved.Checkpoint == "" {
		t.Fatalf("progress of the killed run = %+v", saved)
	}
	if saved.Copied != 297 || saved.SkippedNewer != 3 {
		t.Errorf("killed run copied %d, skipped %d; want 297 and the 3 shadow copies", saved.Copied, saved.SkippedNewer)
	}

	// The second run resumes at the checkpoint and copies only the rest.
	var pages int
	final, err := backfill.RunTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst, Resume: saved, PageSize: 100, ReportEvery: 1,
		Report: func(_ context.Context, p backfill.Progress) error { pages++; saved = p; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !final.Done || final.KeysDone != n || final.KeysTotal != n || saved != final {
		t.Errorf("final progress = %+v (last report %+v), want done with %d events", final, saved, n)
	}
	if final.Copied != n-3 || final.SkippedNewer != 3 || final.Moved != 0 {
		t.Errorf("copied %d, skipped %d, moved %d over both runs; want %d, 3, 0: an event was copied twice or not at all", final.Copied, final.SkippedNewer, final.Moved, n-3)
	}
	// A first report, one per page (7 pages of the 700 left) and the final one.
	if pages != 9 {
		t.Errorf("the resumed run reported %d times, want 9: it did not start at the checkpoint", pages)
	}
	samePositions(t, src, dst)
	if c, err := dst.Count(ctx, tsNS, time.Time{}, time.Time{}); err != nil || c != n {
		t.Errorf("target holds %d events (%v), want %d", c, err, n)
	}
}

func TestTSBackfillCopiesATimeRange(t *testing.T) {
	_, _, src, dst := tsEnds(t, 300)
	ctx := context.Background()
	start, end := t0.Add(100*time.Second), t0.Add(150*time.Second)
	p, err := backfill.RunTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst, Start: start, End: end, PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Done || p.KeysTotal != 50 || p.KeysDone != 50 || p.Copied != 50 {
		t.Errorf("progress = %+v, want 50 events of [100s, 150s) copied", p)
	}
	for k, e := range exportAll(t, dst) {
		if e.Time.Before(start) || !e.Time.Before(end) {
			t.Errorf("event %s at %s copied, outside the range", k, e.Time)
		}
	}
	if _, err := backfill.RunTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst, Start: end, End: start}); err == nil {
		t.Error("a range that ends before it starts was accepted")
	}
}

func TestTSRepairCopiesWhatIsMissingAndReportsDivergence(t *testing.T) {
	_, _, src, dst := tsEnds(t, 200)
	ctx := context.Background()
	// Before the backfill, something put other content at a source
	// position on the target: the backfill skips it (the position is
	// taken) and only the repair's comparison notices.
	events, _, err := src.Export(ctx, tsNS, ts.ExportArgs{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	bad := events[0]
	bad.Data, bad.ID = []byte(`{"n": "corrupt"}`), "other"
	if stored, _, err := dst.Copy(ctx, tsNS, []ts.Event{bad}); err != nil || stored != 1 {
		t.Fatalf("corrupt copy: %d %v", stored, err)
	}
	if _, err := backfill.RunTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst}); err != nil {
		t.Fatal(err)
	}
	// Appends the shadow copy missed.
	appendN(t, src, 200, 5)
	r, err := backfill.RepairTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s@%d", bad.Series, bad.Seq)
	if r.Compared != 205 || r.Copied != 5 || r.Moved != 0 || r.Diverged != 1 || len(r.Sample) != 1 || r.Sample[0] != want {
		t.Errorf("repair = %+v, want 205 compared, 5 copied, 1 diverged at %s", r, want)
	}
	again, err := backfill.RepairTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst})
	if err != nil || again.Copied != 0 || again.Diverged != 1 {
		t.Errorf("second repair = %+v, %v; want nothing copied and the same divergence (events are not rewritten)", again, err)
	}
}

// TestHandoverSealsOneStoreAndUnsealsTheOther runs the control plane's
// hook on real stores, with handles of its own: the test's handles see
// the seal as extproc's would.
func TestHandoverSealsOneStoreAndUnsealsTheOther(t *testing.T) {
	from, to, src, dst := tsEnds(t, 50)
	ctx := context.Background()
	m := &configv1.Migration{Namespace: tsNS, From: from.GetName(), To: to.GetName(), Id: "m1"}
	if _, err := backfill.RunTS(ctx, backfill.TSOptions{Namespace: tsNS, From: src, To: dst}); err != nil {
		t.Fatal(err)
	}
	maxSeq := func(s ts.Replica) int64 {
		var top int64
		for _, e := range exportAll(t, s) {
			top = max(top, e.Seq)
		}
		return top
	}
	one := func(i int) []ts.Event {
		return []ts.Event{{Series: "host-1", Time: t0.Add(time.Hour + time.Duration(i)), Data: []byte(`1`)}}
	}

	began := time.Now()
	floor, err := backfill.Handover(ctx, m, from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("handover SQLite → Postgres (opening both stores included): floor %d in %s", floor, time.Since(began))
	if top := maxSeq(src); floor < top {
		t.Errorf("floor %d is below the source's highest position %d", floor, top)
	}
	if _, _, err := src.AppendEvents(ctx, tsNS, one(1)); !errors.Is(err, ts.ErrSealed) {
		t.Errorf("append to the sealed source: %v, want ts.ErrSealed", err)
	}
	got, _, err := dst.AppendEvents(ctx, tsNS, one(2))
	if err != nil || len(got) != 1 || got[0].Seq <= floor {
		t.Fatalf("append to the unsealed target = %+v, %v; want one event above the floor %d", got, err, floor)
	}
	if again, err := backfill.Handover(ctx, m, from, to, false); err != nil || again != floor {
		t.Errorf("a repeated handover = %d, %v; want the same floor %d", again, err, floor)
	}

	// An abort after promotion hands back.
	floor2, err := backfill.Handover(ctx, m, from, to, true)
	if err != nil {
		t.Fatal(err)
	}
	if floor2 < got[0].Seq {
		t.Errorf("reverse floor %d is below the target's append at %d", floor2, got[0].Seq)
	}
	if _, _, err := dst.AppendEvents(ctx, tsNS, one(3)); !errors.Is(err, ts.ErrSealed) {
		t.Errorf("append to the target after the reverse handover: %v, want ts.ErrSealed", err)
	}
	back, _, err := src.AppendEvents(ctx, tsNS, one(4))
	if err != nil || len(back) != 1 || back[0].Seq <= floor2 {
		t.Errorf("append to the source after the reverse handover = %+v, %v; want one event above %d", back, err, floor2)
	}
}

func TestHandoverNeedsReplicaBackends(t *testing.T) {
	from, _ := tsBackends(t)
	none := &configv1.Backend{Name: "ghost"}
	_, err := backfill.Handover(context.Background(), &configv1.Migration{Namespace: tsNS}, from, none, false)
	if err == nil {
		t.Fatal("a handover to a backend without driver succeeded")
	}
}

// BenchmarkTSBackfill copies b.N events from SQLite to Postgres and prints
// the copy rate, with one worker and with the default four.
func BenchmarkTSBackfill(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			_, _, src, dst := tsEnds(b, b.N)
			b.ResetTimer()
			p, err := backfill.RunTS(context.Background(), backfill.TSOptions{Namespace: tsNS, From: src, To: dst, Workers: workers})
			if err != nil || p.Copied != uint64(b.N) {
				b.Fatalf("copied %d of %d: %v", p.Copied, b.N, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
