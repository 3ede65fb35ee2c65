package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/admin"
	"github.com/prism-gw/prism/xds/desired"
)

// fakeHandover records the handovers the admin API asks for; the stores
// behind it are the backfill package's business (tested there).
type fakeHandover struct {
	mu    sync.Mutex
	calls []string // "seal FROM, unseal TO" per call
	floor int64    // returned, then incremented
	fail  error
}

func (f *fakeHandover) hook(_ context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sealed, unsealed := from.GetName(), to.GetName()
	if reverse {
		sealed, unsealed = unsealed, sealed
	}
	f.calls = append(f.calls, fmt.Sprintf("%s: seal %s, unseal %s", m.GetNamespace(), sealed, unsealed))
	if f.fail != nil {
		return 0, f.fail
	}
	f.floor++
	return f.floor, nil
}

func (f *fakeHandover) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func seedEvents(t *testing.T, e *migrationEnv) {
	t.Helper()
	seedOrders(t, e)
	e.mustDo(t, "PUT", "/v1/admin/namespaces/events", `{"abstraction": "timeseries", "backend": "lite"}`)
}

func (e *migrationEnv) stepEvents(t *testing.T, body string) response {
	t.Helper()
	return e.do(t, "POST", "/v1/admin/namespaces/events/migration", body)
}

func (e *migrationEnv) mustStepEvents(t *testing.T, body string) map[string]any {
	t.Helper()
	r := e.stepEvents(t, body)
	if r.status != http.StatusOK {
		t.Fatalf("POST events migration %s = %d %s", body, r.status, r.raw)
	}
	return r.body
}

// toShadowRead starts a migration of events to pg and moves it to
// SHADOW_READ (promotion then needs force: no node reports here).
func toShadowRead(t *testing.T, e *migrationEnv) {
	t.Helper()
	e.mustStepEvents(t, `{"action":"start","to":"pg"}`)
	e.mustStepEvents(t, `{"action":"advance"}`)
	e.mustStepEvents(t, `{"action":"advance"}`)
}

func wantCalls(t *testing.T, f *fakeHandover, want ...string) {
	t.Helper()
	got := f.took()
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("handovers = %q, want %q", got, want)
	}
}

func TestTimeSeriesPromoteAndAbortHandOver(t *testing.T) {
	f := &fakeHandover{floor: 41}
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, nil)
	seedEvents(t, e)
	toShadowRead(t, e)
	wantCalls(t, f) // the steps before promotion hand nothing over

	// A closed gate refuses before any store is sealed.
	wantRefused(t, e.stepEvents(t, `{"action":"promote"}`), 409, admin.CodeFailedPrecondition, "backfill has not completed")
	wantCalls(t, f)

	body := e.mustStepEvents(t, `{"action":"promote","force":true}`)
	if field(body, "migration", "phase") != "PROMOTED" || field(body, "migration", "handover_floor") != "42" {
		t.Errorf("promoted: %v", body["migration"])
	}
	if m := e.ctl.State().Migrations["events"]; m.GetHandoverFloor() != 42 {
		t.Errorf("desired state holds %v, want handover_floor 42", m)
	}
	wantCalls(t, f, "events: seal lite, unseal pg")

	body = e.mustStepEvents(t, `{"action":"abort"}`)
	if field(body, "migration", "phase") != "ABORTED" || field(body, "migration", "handover_floor") != "43" {
		t.Errorf("aborted after promotion: %v", body["migration"])
	}
	wantCalls(t, f, "events: seal lite, unseal pg", "events: seal pg, unseal lite")
}

// TestTimeSeriesAbortBeforePromotionHandsBack: an abort before promotion
// also leaves `from` assigning positions, which repairs a promotion whose
// handover could not be undone.
func TestTimeSeriesAbortBeforePromotionHandsBack(t *testing.T) {
	f := &fakeHandover{}
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, nil)
	seedEvents(t, e)
	toShadowRead(t, e)
	body := e.mustStepEvents(t, `{"action":"abort"}`)
	if field(body, "migration", "phase") != "ABORTED" || field(body, "migration", "handover_floor") != "0" {
		t.Errorf("aborted: %v (no floor: pg never assigned positions)", body["migration"])
	}
	wantCalls(t, f, "events: seal pg, unseal lite")
}

func TestTimeSeriesDecommissionHandsNothingMoreOver(t *testing.T) {
	f := &fakeHandover{}
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, nil)
	seedEvents(t, e)
	toShadowRead(t, e)
	e.mustStepEvents(t, `{"action":"promote","force":true}`)
	body := e.mustStepEvents(t, `{"action":"advance"}`)
	if field(body, "migration", "phase") != "DECOMMISSIONED" || field(body, "migration", "handover_floor") != "1" {
		t.Errorf("decommissioned: %v", body["migration"])
	}
	if b := e.ctl.State().Namespaces["events"].GetBackend(); b != "pg" {
		t.Errorf("events on %s after decommission, want pg", b)
	}
	wantCalls(t, f, "events: seal lite, unseal pg")
}

func TestKeyValuePromoteHandsNothingOver(t *testing.T) {
	f := &fakeHandover{}
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, nil)
	seedOrders(t, e)
	e.mustStep(t, `{"action":"start","to":"pg"}`)
	e.mustStep(t, `{"action":"advance"}`)
	e.mustStep(t, `{"action":"advance"}`)
	e.mustStep(t, `{"action":"promote","force":true}`)
	body := e.mustStep(t, `{"action":"abort"}`)
	if field(body, "migration", "handover_floor") != "0" {
		t.Errorf("keyvalue migration got a handover floor: %v", body["migration"])
	}
	wantCalls(t, f)
}

func TestTimeSeriesPromoteWithoutHookIsRefused(t *testing.T) {
	e := startMigrations(t, filepath.Join(t.TempDir(), "xds.db"))
	seedEvents(t, e)
	toShadowRead(t, e)
	wantRefused(t, e.stepEvents(t, `{"action":"promote","force":true}`), 500, admin.CodeInternal, "no handover hook")
	if p := e.ctl.State().Migrations["events"].GetPhase(); p != configv1.Migration_SHADOW_READ {
		t.Errorf("phase after a refused promote = %s, want SHADOW_READ", p)
	}
	// A keyvalue migration needs no hook.
	e.mustStep(t, `{"action":"start","to":"pg"}`)
	e.mustStep(t, `{"action":"advance"}`)
	e.mustStep(t, `{"action":"advance"}`)
	e.mustStep(t, `{"action":"promote","force":true}`)
}

func TestTimeSeriesPromoteRefusedWhenTheHandoverFails(t *testing.T) {
	f := &fakeHandover{fail: errors.New("postgres ts: connection refused")}
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, nil)
	seedEvents(t, e)
	toShadowRead(t, e)
	wantRefused(t, e.stepEvents(t, `{"action":"promote","force":true}`), 503, admin.CodeUnavailable, "stays in SHADOW_READ; retry the promote: postgres ts: connection refused")
	m := e.ctl.State().Migrations["events"]
	if m.GetPhase() != configv1.Migration_SHADOW_READ || m.GetHandoverFloor() != 0 {
		t.Errorf("after a failed handover: %v", m)
	}
	wantCalls(t, f, "events: seal lite, unseal pg")
	// The history has no promote.
	r := e.mustDo(t, "GET", "/v1/admin/namespaces/events/migration", "")
	if h, _ := r.body["history"].([]any); len(h) != 3 {
		t.Errorf("history = %v, want start and two advances", r.body["history"])
	}
}

// failingStore makes every desired-state update fail after its change
// function ran, as a store whose commit fails would.
type failingStore struct {
	admin.Controller
	mu   sync.Mutex
	fail bool
}

func (c *failingStore) Update(ctx context.Context, change func(*desired.State) error) (*desired.State, bool, error) {
	c.mu.Lock()
	fail := c.fail
	c.mu.Unlock()
	if !fail {
		return c.Controller.Update(ctx, change)
	}
	return c.Controller.Update(ctx, func(next *desired.State) error {
		if err := change(next); err != nil {
			return err
		}
		return errors.New("commit: disk I/O error")
	})
}

func (c *failingStore) setFail(v bool) {
	c.mu.Lock()
	c.fail = v
	c.mu.Unlock()
}

func TestTimeSeriesHandoverUndoneWhenTheStepIsNotStored(t *testing.T) {
	f := &fakeHandover{floor: 99}
	var store *failingStore
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, func(c admin.Controller) admin.Controller {
		store = &failingStore{Controller: c}
		return store
	})
	seedEvents(t, e)
	toShadowRead(t, e)

	store.setFail(true)
	r := e.stepEvents(t, `{"action":"promote","force":true}`)
	if r.status != http.StatusInternalServerError {
		t.Errorf("promote with a failing store = %d %s, want 500", r.status, r.raw)
	}
	if p := e.ctl.State().Migrations["events"].GetPhase(); p != configv1.Migration_SHADOW_READ {
		t.Errorf("phase = %s, want SHADOW_READ", p)
	}
	wantCalls(t, f, "events: seal lite, unseal pg", "events: seal pg, unseal lite")

	// Stored this time; then an abort whose store fails puts the promoted
	// handover back.
	store.setFail(false)
	e.mustStepEvents(t, `{"action":"promote","force":true}`)
	store.setFail(true)
	r = e.stepEvents(t, `{"action":"abort"}`)
	if r.status != http.StatusInternalServerError {
		t.Errorf("abort with a failing store = %d %s, want 500", r.status, r.raw)
	}
	m := e.ctl.State().Migrations["events"]
	if m.GetPhase() != configv1.Migration_PROMOTED || m.GetHandoverFloor() != 102 {
		t.Errorf("after the failed abort: %v, want PROMOTED with the floor of its promotion (102)", m)
	}
	wantCalls(t, f, "events: seal lite, unseal pg", "events: seal pg, unseal lite",
		"events: seal lite, unseal pg", "events: seal pg, unseal lite", "events: seal lite, unseal pg")
}

func TestTimeSeriesFailedUndoSaysWhatIsSealed(t *testing.T) {
	f := &fakeHandover{}
	var store *failingStore
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: func(ctx context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (int64, error) {
		if reverse {
			return 0, errors.New("pg unreachable")
		}
		return f.hook(ctx, m, from, to, reverse)
	}}, func(c admin.Controller) admin.Controller {
		store = &failingStore{Controller: c}
		return store
	})
	seedEvents(t, e)
	toShadowRead(t, e)
	store.setFail(true)
	wantRefused(t, e.stepEvents(t, `{"action":"promote","force":true}`), 500, admin.CodeInternal,
		"undoing its handover failed: lite stays sealed and pg takes the appends; retry the promote")
}

// TestForcedSwitchOfATimeSeriesNamespaceHandsOver: PUT ?force=true moving
// a timeseries namespace between SQL backends seals the old one and
// unseals the new one (which an ended migration may have left sealed); a
// handover that fails leaves the namespace where it was; keyvalue
// namespaces and unchanged backends hand nothing over.
func TestForcedSwitchOfATimeSeriesNamespaceHandsOver(t *testing.T) {
	f := &fakeHandover{}
	e := startMigrationsWith(t, filepath.Join(t.TempDir(), "xds.db"), admin.Options{Handover: f.hook}, nil)
	seedEvents(t, e)
	e.mustDo(t, "PUT", "/v1/admin/namespaces/events", `{"abstraction": "timeseries", "backend": "lite", "retention_days": 3}`)
	e.mustDo(t, "PUT", "/v1/admin/namespaces/orders?force=true", `{"abstraction": "keyvalue", "backend": "pg"}`)
	wantCalls(t, f)

	f.fail = errors.New("postgres ts: connection refused")
	r := e.do(t, "PUT", "/v1/admin/namespaces/events?force=true", `{"abstraction": "timeseries", "backend": "pg"}`)
	if r.status != 503 || !strings.Contains(r.raw, "needs lite sealed and pg unsealed") {
		t.Fatalf("a switch whose handover fails: %d %s", r.status, r.raw)
	}
	if b := e.ctl.State().Namespaces["events"].GetBackend(); b != "lite" {
		t.Fatalf("events on %s after a failed switch, want lite", b)
	}
	f.fail = nil
	e.mustDo(t, "PUT", "/v1/admin/namespaces/events?force=true", `{"abstraction": "timeseries", "backend": "pg"}`)
	if b := e.ctl.State().Namespaces["events"].GetBackend(); b != "pg" {
		t.Fatalf("events on %s after the switch, want pg", b)
	}
	wantCalls(t, f, "events: seal lite, unseal pg", "events: seal lite, unseal pg")
}
