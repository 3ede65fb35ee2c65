package migration

import (
	"errors"
	"strings"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
)

func testState() *desired.State {
	s := desired.New()
	s.Put(&configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "lite.db"}}})
	s.Put(&configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "postgres://x/y"}}})
	s.Put(&configv1.Backend{Name: "bus", Driver: &configv1.Backend_Nats{Nats: &configv1.Backend_NatsOptions{Url: "nats://x"}}})
	s.Put(&configv1.Namespace{Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "lite"})
	s.Put(&configv1.Backend{Name: "lite2", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "lite2.db"}}})
	s.Put(&configv1.Backend{Name: "pg2", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "postgres://x/z"}}})
	s.Put(&configv1.Namespace{Namespace: "events", Abstraction: configv1.Abstraction_TIMESERIES, Backend: "lite"})
	s.Put(&configv1.Namespace{Namespace: "metrics", Abstraction: configv1.Abstraction_TIMESERIES, Backend: "pg"})
	s.Put(&configv1.Namespace{Namespace: "stream", Abstraction: configv1.Abstraction_TIMESERIES, Backend: "bus"})
	s.Put(&configv1.Namespace{Namespace: "social", Abstraction: configv1.Abstraction_GRAPH, Backend: "lite"})
	return s
}

func withMigration(phase configv1.Migration_Phase) *desired.State {
	s := testState()
	s.Put(&configv1.Migration{Namespace: "orders", From: "lite", To: "pg", Phase: phase, Id: "m1", ReadPercent: 10, MismatchThreshold: 0.001, MinSample: 1000})
	return s
}

func ptr[T any](v T) *T { return &v }

func wantKind(t *testing.T, err error, kind ErrorKind, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Fatalf("err = %v, want an Error of kind %d", err, kind)
	}
	if !strings.Contains(e.Msg, msg) {
		t.Errorf("err = %q, want it to mention %q", e.Msg, msg)
	}
}

func TestStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state *desired.State
		ns    string
		opts  StartOptions
		kind  ErrorKind // 0: accepted
		msg   string
	}{
		{"defaults", testState(), "orders", StartOptions{To: "pg", ID: "abc"}, 0, ""},
		{"unknown namespace", testState(), "nope", StartOptions{To: "pg", ID: "abc"}, NotFound, "does not exist"},
		{"graph", testState(), "social", StartOptions{To: "pg", ID: "abc"}, Invalid, "only keyvalue and timeseries"},
		{"timeseries sqlite to postgres", testState(), "events", StartOptions{To: "pg", ID: "abc"}, 0, ""},
		{"timeseries sqlite to sqlite", testState(), "events", StartOptions{To: "lite2", ID: "abc"}, Invalid, "SQLite numbers events across the whole database file"},
		{"timeseries postgres to postgres", testState(), "metrics", StartOptions{To: "pg2", ID: "abc"}, 0, ""},
		{"timeseries postgres to sqlite", testState(), "metrics", StartOptions{To: "lite", ID: "abc"}, Invalid, "SQLite numbers events across the whole database file"},
		{"timeseries to nats", testState(), "events", StartOptions{To: "bus", ID: "abc"}, Invalid, "cannot be a migration target"},
		{"timeseries from nats", testState(), "stream", StartOptions{To: "pg", ID: "abc"}, Invalid, "needs sqlite or postgres at both ends"},
		{"no target", testState(), "orders", StartOptions{ID: "abc"}, Invalid, `"to"`},
		{"unknown target", testState(), "orders", StartOptions{To: "ghost", ID: "abc"}, Invalid, "does not exist"},
		{"same backend", testState(), "orders", StartOptions{To: "lite", ID: "abc"}, Invalid, "already on backend lite"},
		{"target cannot replicate", testState(), "orders", StartOptions{To: "bus", ID: "abc"}, Invalid, "cannot be a migration target"},
		{"read percent", testState(), "orders", StartOptions{To: "pg", ID: "abc", ReadPercent: ptr(101.0)}, Invalid, "read_percent"},
		{"threshold", testState(), "orders", StartOptions{To: "pg", ID: "abc", MismatchThreshold: ptr(-0.5)}, Invalid, "mismatch_threshold"},
		{"active migration", withMigration(Backfill), "orders", StartOptions{To: "pg", ID: "abc"}, Refused, "already has migration m1"},
		{"replaces an aborted one", withMigration(Aborted), "orders", StartOptions{To: "pg", ID: "abc"}, 0, ""},
		{"replaces a decommissioned one", withMigration(Decommissioned), "orders", StartOptions{To: "pg", ID: "abc"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Start(tc.state, tc.ns, tc.opts)
			if tc.kind != 0 {
				wantKind(t, err, tc.kind, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			from := tc.state.Namespaces[tc.ns].GetBackend()
			if m.GetPhase() != ShadowWrite || m.GetFrom() != from || m.GetTo() != tc.opts.To || m.GetId() != "abc" || m.GetCompareEpoch() != 0 || m.GetHandoverFloor() != 0 {
				t.Errorf("started %v", m)
			}
			if m.GetReadPercent() != DefaultReadPercent || m.GetMismatchThreshold() != DefaultMismatchThreshold || m.GetMinSample() != DefaultMinSample {
				t.Errorf("defaults not applied: %v", m)
			}
			if tc.state.Migrations[tc.ns] != m {
				t.Error("the migration is not in the state")
			}
			if err := tc.state.Validate(); err != nil {
				t.Errorf("state after start does not validate: %v", err)
			}
		})
	}
}

func TestStartKeepsExplicitZeroes(t *testing.T) {
	m, err := Start(testState(), "orders", StartOptions{To: "pg", ID: "x", ReadPercent: ptr(0.0), MismatchThreshold: ptr(0.0), MinSample: ptr(uint64(0))})
	if err != nil {
		t.Fatal(err)
	}
	if m.GetReadPercent() != 0 || m.GetMismatchThreshold() != 0 || m.GetMinSample() != 0 {
		t.Errorf("explicit zeroes replaced by defaults: %v", m)
	}
}

func TestSteps(t *testing.T) {
	open := Gate{ID: "m1", CanPromote: true}
	closed := Gate{ID: "m1", Reason: "only 3 of the 1000 compared reads"}
	type step func(*desired.State) (*configv1.Migration, error)
	advance := func(s *desired.State) (*configv1.Migration, error) { return Advance(s, "orders") }
	abort := func(s *desired.State) (*configv1.Migration, error) { return Abort(s, "orders") }
	promote := func(g Gate, force bool) step {
		return func(s *desired.State) (*configv1.Migration, error) { return Promote(s, "orders", g, force) }
	}
	for _, tc := range []struct {
		name    string
		from    configv1.Migration_Phase
		step    step
		want    configv1.Migration_Phase
		backend string // the namespace's backend after the step
		kind    ErrorKind
		msg     string
	}{
		{"advance shadow write", ShadowWrite, advance, Backfill, "lite", 0, ""},
		{"advance backfill", Backfill, advance, ShadowRead, "lite", 0, ""},
		{"advance shadow read needs promote", ShadowRead, advance, 0, "", Refused, "only by promote"},
		{"advance promoted decommissions and moves the namespace", Promoted, advance, Decommissioned, "pg", 0, ""},
		{"advance decommissioned", Decommissioned, advance, 0, "", Refused, "has ended"},
		{"advance aborted", Aborted, advance, 0, "", Refused, "has ended"},
		{"promote through an open gate", ShadowRead, promote(open, false), Promoted, "lite", 0, ""},
		{"promote through a closed gate", ShadowRead, promote(closed, false), 0, "", Refused, "only 3 of the 1000"},
		{"force through a closed gate", ShadowRead, promote(closed, true), Promoted, "lite", 0, ""},
		{"promote from backfill even forced", Backfill, promote(open, true), 0, "", Refused, "needs phase SHADOW_READ"},
		{"promote with a gate of another migration", ShadowRead, promote(Gate{ID: "old", CanPromote: true}, false), 0, "", Refused, "changed"},
		{"promote with a gate of another epoch", ShadowRead, promote(Gate{ID: "m1", Epoch: 3, CanPromote: true}, false), 0, "", Refused, "changed"},
		{"abort shadow write", ShadowWrite, abort, Aborted, "lite", 0, ""},
		{"abort shadow read", ShadowRead, abort, Aborted, "lite", 0, ""},
		{"abort promoted stays on from", Promoted, abort, Aborted, "lite", 0, ""},
		{"abort decommissioned", Decommissioned, abort, 0, "", Refused, "has ended"},
		{"abort aborted", Aborted, abort, 0, "", Refused, "has ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := withMigration(tc.from)
			before := s.Migrations["orders"]
			m, err := tc.step(s)
			if tc.kind != 0 {
				wantKind(t, err, tc.kind, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.GetPhase() != tc.want || s.Migrations["orders"].GetPhase() != tc.want {
				t.Errorf("phase = %s, want %s", m.GetPhase(), tc.want)
			}
			if got := s.Namespaces["orders"].GetBackend(); got != tc.backend {
				t.Errorf("namespace backend = %s, want %s", got, tc.backend)
			}
			if before.GetPhase() != tc.from {
				t.Error("the step modified the migration message in place")
			}
			if err := s.Validate(); err != nil {
				t.Errorf("state after the step does not validate: %v", err)
			}
		})
	}
}

func TestNoMigration(t *testing.T) {
	s := testState()
	for name, step := range map[string]func() (*configv1.Migration, error){
		"advance":       func() (*configv1.Migration, error) { return Advance(s, "orders") },
		"abort":         func() (*configv1.Migration, error) { return Abort(s, "orders") },
		"promote":       func() (*configv1.Migration, error) { return Promote(s, "orders", Gate{}, true) },
		"reset_compare": func() (*configv1.Migration, error) { return ResetCompare(s, "orders") },
	} {
		_, err := step()
		var e *Error
		if !errors.As(err, &e) || e.Kind != NotFound {
			t.Errorf("%s without a migration: %v, want NotFound", name, err)
		}
	}
}

func TestResetCompareBumpsTheEpoch(t *testing.T) {
	s := withMigration(ShadowRead)
	for want := uint64(1); want <= 2; want++ {
		m, err := ResetCompare(s, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if m.GetCompareEpoch() != want || m.GetPhase() != ShadowRead {
			t.Errorf("after reset %d: %v", want, m)
		}
	}
	_, err := ResetCompare(withMigration(Aborted), "orders")
	wantKind(t, err, Refused, "has ended")
}

func TestPhasesOnlyMoveForward(t *testing.T) {
	for p := range configv1.Migration_Phase_name {
		phase := configv1.Migration_Phase(p)
		if next, ok := Next(phase); ok && next <= phase {
			t.Errorf("Next(%s) = %s goes backwards", phase, next)
		}
	}
}

func TestCheckGate(t *testing.T) {
	m := &configv1.Migration{Phase: ShadowRead, Id: "m1", CompareEpoch: 2, MismatchThreshold: 0.01, MinSample: 100}
	for _, tc := range []struct {
		name     string
		m        *configv1.Migration
		totals   Totals
		backfill bool
		can      bool
		reason   string
	}{
		{"all good", m, Totals{ReadsCompared: 1000, Mismatches: 9}, true, true, "below the threshold"},
		{"no mismatch at all", m, Totals{ReadsCompared: 100}, true, true, "below"},
		{"rate at the threshold", m, Totals{ReadsCompared: 1000, Mismatches: 10}, true, false, "not below the threshold"},
		{"too few compared", m, Totals{ReadsCompared: 99}, true, false, "only 99 of the 100"},
		{"backfill not done", m, Totals{ReadsCompared: 1000}, false, false, "backfill has not completed"},
		{"wrong phase", &configv1.Migration{Phase: Backfill}, Totals{}, true, false, "only from SHADOW_READ"},
		{"threshold zero refuses any mismatch", &configv1.Migration{Phase: ShadowRead, MinSample: 1}, Totals{ReadsCompared: 1e6, Mismatches: 1}, true, false, "not below"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := CheckGate(tc.m, tc.totals, tc.backfill)
			if g.CanPromote != tc.can || !strings.Contains(g.Reason, tc.reason) {
				t.Errorf("gate = %+v, want can_promote %v and a reason mentioning %q", g, tc.can, tc.reason)
			}
			if g.ID != tc.m.GetId() || g.Epoch != tc.m.GetCompareEpoch() {
				t.Errorf("gate is not tied to the migration's id and epoch: %+v", g)
			}
		})
	}
}

func TestNeedsHandoverOnlyForTimeSeries(t *testing.T) {
	s := testState()
	for ns, want := range map[string]bool{"orders": false, "events": true, "metrics": true, "social": false, "gone": false} {
		if got := NeedsHandover(s, &configv1.Migration{Namespace: ns}); got != want {
			t.Errorf("NeedsHandover(%s) = %v, want %v", ns, got, want)
		}
	}
}

func TestWithHandoverFloorKeepsTheRest(t *testing.T) {
	s := withMigration(Promoted)
	before := s.Migrations["orders"]
	m, err := WithHandoverFloor(s, before, 4711)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetHandoverFloor() != 4711 || s.Migrations["orders"].GetHandoverFloor() != 4711 {
		t.Errorf("floor not recorded: %v", s.Migrations["orders"])
	}
	if before.GetHandoverFloor() != 0 {
		t.Error("WithHandoverFloor modified the migration in place")
	}
	if m.GetPhase() != Promoted || m.GetId() != "m1" || m.GetTo() != "pg" {
		t.Errorf("other fields changed: %v", m)
	}
}
