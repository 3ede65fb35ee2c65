package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
)

// fakeClock is advanced by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestTracker(st **desired.State) (*Tracker, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}
	tr := NewTracker(TrackerOptions{State: func() *desired.State { return *st }, Now: clock.now})
	return tr, clock
}

func counters(ns, id string, epoch, compared, mismatches uint64, keys ...string) *configv1.MigrationCounters {
	return &configv1.MigrationCounters{Namespace: ns, MigrationId: id, CompareEpoch: epoch, Phase: ShadowRead,
		ShadowWrites: 7, ReadsCompared: compared, Mismatches: mismatches, MismatchKeys: keys}
}

func TestTrackerKeepsTheLatestCountersOfTheCurrentWindow(t *testing.T) {
	ctx := context.Background()
	st := withMigration(ShadowRead)
	tr, clock := newTestTracker(&st)
	report := func(node string, c ...*configv1.MigrationCounters) {
		t.Helper()
		if err := tr.Report(ctx, &configv1.MigrationReport{Node: node, Migrations: c}); err != nil {
			t.Fatal(err)
		}
	}
	report("a", counters("orders", "m1", 0, 100, 1, "k1"))
	report("a", counters("orders", "m1", 0, 300, 2, "k1", "k2")) // cumulative: replaces
	report("b", counters("orders", "m1", 0, 200, 0))
	report("b", counters("orders", "old-id", 0, 5000, 5000)) // another migration
	report("c", counters("orders", "m1", 7, 5000, 5000))     // another epoch
	report("c", counters("unknown-ns", "m1", 0, 5000, 5000)) // no migration
	s, err := tr.Status(ctx, st, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stats.ReadsCompared != 500 || s.Stats.Mismatches != 2 || s.Stats.ShadowWrites != 14 {
		t.Errorf("totals = %+v, want 500 compared, 2 mismatches, 14 shadow writes (stale reports ignored)", s.Stats.Totals)
	}
	if s.Stats.MismatchRate != 2.0/500 {
		t.Errorf("mismatch rate = %v", s.Stats.MismatchRate)
	}
	if len(s.Stats.Nodes) != 2 || s.Stats.Nodes["a"].ReadsCompared != 300 || s.Stats.Nodes["a"].Phase != "SHADOW_READ" {
		t.Errorf("nodes = %+v", s.Stats.Nodes)
	}
	if got := s.Stats.MismatchKeys; len(got) != 2 || got[0] != "k1" || got[1] != "k2" {
		t.Errorf("mismatch keys = %v", got)
	}
	if len(s.Series) != 1 {
		t.Errorf("series of reports within one interval = %d points, want 1", len(s.Series))
	}
	clock.t = clock.t.Add(SeriesInterval)
	report("b", counters("orders", "m1", 0, 400, 0))
	s, _ = tr.Status(ctx, st, "orders")
	if len(s.Series) != 2 || s.Series[1].ReadsCompared != 700 || s.Series[0].ReadsCompared != 500 {
		t.Errorf("series = %+v, want two points (500, 700 compared)", s.Series)
	}

	// A new compare epoch starts from nothing, and old-epoch reports no
	// longer count.
	m, err := ResetCompare(st, "orders")
	if err != nil {
		t.Fatal(err)
	}
	st.Version++
	report("a", counters("orders", "m1", 0, 900, 9))
	report("b", counters("orders", "m1", m.GetCompareEpoch(), 10, 0))
	s, _ = tr.Status(ctx, st, "orders")
	if s.Stats.ReadsCompared != 10 || s.Stats.Mismatches != 0 || len(s.Stats.Nodes) != 1 || len(s.Series) != 1 {
		t.Errorf("after reset_compare: %+v series %d", s.Stats, len(s.Series))
	}
}

func TestTrackerRefusesAReportWithoutNode(t *testing.T) {
	st := withMigration(ShadowRead)
	tr, _ := newTestTracker(&st)
	if err := tr.Report(context.Background(), &configv1.MigrationReport{}); err == nil {
		t.Error("a report without a node id was accepted")
	}
}

func TestTrackerBackfillProgress(t *testing.T) {
	ctx := context.Background()
	st := withMigration(Backfill)
	tr, clock := newTestTracker(&st)
	m := st.Migrations["orders"]
	bf, err := tr.Backfill(ctx, m)
	if err != nil || bf.State != "idle" {
		t.Fatalf("before any report: %+v %v", bf, err)
	}
	if _, err := tr.SaveBackfill(ctx, m, BackfillUpdate{MigrationID: "m1", Checkpoint: "k100", KeysDone: 100, KeysTotal: 1000, Copied: 90, SkippedNewer: 10}); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(2 * time.Second)
	bf, err = tr.SaveBackfill(ctx, m, BackfillUpdate{Checkpoint: "k300", KeysDone: 300, KeysTotal: 1000, Copied: 280, SkippedNewer: 20})
	if err != nil {
		t.Fatal(err)
	}
	if bf.State != "running" || bf.Checkpoint != "k300" || bf.Rate != 100 {
		t.Errorf("progress = %+v, want running at k300, 100 keys/s", bf)
	}
	if _, err := tr.SaveBackfill(ctx, m, BackfillUpdate{MigrationID: "other"}); err == nil {
		t.Error("progress of another migration id was accepted")
	}
	if g := tr.Gate(withMigration(ShadowRead).Migrations["orders"], bf); g.CanPromote {
		t.Errorf("gate open with a running backfill: %+v", g)
	}
	// A new migration of the namespace starts with a fresh record.
	next := withMigration(Backfill)
	next.Migrations["orders"].Id = "m2"
	bf, _ = tr.Backfill(ctx, next.Migrations["orders"])
	if bf.State != "idle" {
		t.Errorf("a new migration inherited the backfill of the old: %+v", bf)
	}
	if _, err := tr.SaveBackfill(ctx, withMigration(ShadowWrite).Migrations["orders"], BackfillUpdate{}); err == nil {
		t.Error("backfill progress accepted in SHADOW_WRITE")
	}
}

// TestTrackerBackfillJobLease: while a job reports, another job's reports
// are refused; the lease lapses JobLease after the holder's last report,
// and a done backfill holds nothing.
func TestTrackerBackfillJobLease(t *testing.T) {
	ctx := context.Background()
	st := withMigration(Backfill)
	tr, clock := newTestTracker(&st)
	m := st.Migrations["orders"]
	report := func(job string, done uint64) error {
		_, err := tr.SaveBackfill(ctx, m, BackfillUpdate{Job: job, Checkpoint: fmt.Sprint(done), KeysDone: done, KeysTotal: 100})
		return err
	}
	if err := report("a", 10); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(JobLease - time.Millisecond)
	err := report("b", 0)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Refused || !strings.Contains(e.Msg, "backfill job a is copying orders") {
		t.Fatalf("a second job's report within the lease: %v, want refused naming job a", err)
	}
	if err := report("a", 20); err != nil {
		t.Fatalf("the holder's own report: %v", err)
	}
	if err := report("", 25); err != nil {
		t.Fatalf("a report naming no job (an older client): %v", err)
	}
	if err := report("a", 30); err != nil { // the lease passed to "" and back
		t.Fatal(err)
	}
	clock.t = clock.t.Add(JobLease)
	if err := report("b", 30); err != nil {
		t.Fatalf("a second job after the lease lapsed: %v", err)
	}
	if bf, _ := tr.Backfill(ctx, m); bf.Job != "b" || bf.KeysDone != 30 {
		t.Fatalf("after the take-over: %+v", bf)
	}
	if _, err := tr.SaveBackfill(ctx, m, BackfillUpdate{Job: "b", KeysDone: 100, KeysTotal: 100, Done: true}); err != nil {
		t.Fatal(err)
	}
	if err := report("c", 0); err != nil {
		t.Fatalf("a job after the backfill was done: %v", err)
	}
}

func TestTrackerSeriesIsBounded(t *testing.T) {
	st := withMigration(ShadowRead)
	tr, clock := newTestTracker(&st)
	for i := range SeriesPoints + 80 {
		clock.t = clock.t.Add(SeriesInterval)
		if err := tr.Report(context.Background(), &configv1.MigrationReport{Node: "a", Migrations: []*configv1.MigrationCounters{counters("orders", "m1", 0, uint64(i), 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := tr.Status(context.Background(), st, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Series) != SeriesPoints || s.Series[len(s.Series)-1].ReadsCompared != SeriesPoints+79 || s.Series[0].ReadsCompared != 80 {
		t.Errorf("series: %d points from %d to %d compared, want the last %d", len(s.Series), s.Series[0].ReadsCompared, s.Series[len(s.Series)-1].ReadsCompared, SeriesPoints)
	}
}

func TestTrackerTimeSeriesBackfillKeepsMovedAndSaysEvents(t *testing.T) {
	ctx := context.Background()
	st := testState()
	st.Put(&configv1.Migration{Namespace: "events", From: "lite", To: "pg", Phase: Backfill, Id: "t1"})
	tr, _ := newTestTracker(&st)
	m := st.Migrations["events"]
	if _, err := tr.SaveBackfill(ctx, m, BackfillUpdate{Checkpoint: "cpu@7", KeysDone: 7, KeysTotal: 9, Copied: 5, SkippedNewer: 1, Moved: 1}); err != nil {
		t.Fatal(err)
	}
	s, err := tr.Status(ctx, st, "events")
	if err != nil {
		t.Fatal(err)
	}
	if s.Abstraction != "timeseries" || s.Backfill.Moved != 1 || s.Backfill.Checkpoint != "cpu@7" {
		t.Errorf("status: abstraction %q, backfill %+v; want timeseries with 1 moved at cpu@7", s.Abstraction, s.Backfill)
	}
	if s, _ := tr.Status(ctx, withMigration(Backfill), "orders"); s.Abstraction != "keyvalue" {
		t.Errorf("keyvalue migration status says %q", s.Abstraction)
	}
}
