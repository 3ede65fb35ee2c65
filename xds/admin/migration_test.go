package admin_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/admin"
	"github.com/prism-gw/prism/xds/migration"
	"github.com/prism-gw/prism/xds/report"
	"github.com/prism-gw/prism/xds/server"
	"github.com/prism-gw/prism/xds/store"
)

// migrationEnv is the control plane as `prism xds` wires it: a store, a
// controller, ADS and the report sink on one gRPC server, and the admin API
// with the tracker.
type migrationEnv struct {
	env
	conn *grpc.ClientConn // an extproc node's connection, for reports
	stop func()
}

func startMigrations(t *testing.T, dbPath string) *migrationEnv {
	t.Helper()
	return startMigrationsWith(t, dbPath, admin.Options{}, nil)
}

// startMigrationsWith is startMigrations with other admin options (the
// handover hook) and, when wrap is set, the controller the handler sees
// wrapped (to make a store update fail).
func startMigrationsWith(t *testing.T, dbPath string, opts admin.Options, wrap func(admin.Controller) admin.Controller) *migrationEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(ctx, server.Options{Logger: quietLog()})
	ctl := server.NewController(st, srv, server.ControllerOptions{Logger: quietLog()})
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	values, ok := st.(store.Values)
	if !ok {
		t.Fatal("the store does not implement store.Values")
	}
	tracker := migration.NewTracker(migration.TrackerOptions{State: ctl.State, Values: values, Logger: quietLog()})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	report.Register(g, tracker)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	opts.Token, opts.Logger, opts.Migrations = token, quietLog(), tracker
	var c admin.Controller = ctl
	if wrap != nil {
		c = wrap(ctl)
	}
	h := httptest.NewServer(admin.New(c, srv, opts))
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		h.Close()
		cancel()
		g.Stop()
		st.Close()
	}
	t.Cleanup(stop)
	return &migrationEnv{env: env{base: h.URL, xdsAddr: lis.Addr().String(), ctl: ctl}, conn: conn, stop: stop}
}

func (e *migrationEnv) step(t *testing.T, body string) response {
	t.Helper()
	return e.do(t, "POST", "/v1/admin/namespaces/orders/migration", body)
}

func (e *migrationEnv) mustStep(t *testing.T, body string) map[string]any {
	t.Helper()
	r := e.step(t, body)
	if r.status != http.StatusOK {
		t.Fatalf("POST migration %s = %d %s", body, r.status, r.raw)
	}
	return r.body
}

func (e *migrationEnv) report(t *testing.T, node string, c *configv1.MigrationCounters) {
	t.Helper()
	if err := report.Send(context.Background(), e.conn, &configv1.MigrationReport{Node: node, Migrations: []*configv1.MigrationCounters{c}}); err != nil {
		t.Fatalf("report from %s: %v", node, err)
	}
}

func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func wantRefused(t *testing.T, r response, status int, code, msg string) {
	t.Helper()
	got, message := r.errorOf(t)
	if r.status != status || got != code || !strings.Contains(message, msg) {
		t.Errorf("got %d %s %q, want %d %s mentioning %q", r.status, got, message, status, code, msg)
	}
}

func seedOrders(t *testing.T, e *migrationEnv) {
	t.Helper()
	e.mustDo(t, "PUT", "/v1/admin/backends/lite", "sqlite: {path: /data/lite.db}\n")
	e.mustDo(t, "PUT", "/v1/admin/backends/pg", `{"postgres": {"dsn": "postgres://u:pw@db/prism"}}`)
	e.mustDo(t, "PUT", "/v1/admin/backends/bus", `{"nats": {"url": "nats://127.0.0.1:4222"}}`)
	e.mustDo(t, "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "keyvalue", "backend": "lite"}`)
}

func TestMigrationLifecycle(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "xds.db")
	e := startMigrations(t, dbPath)
	seedOrders(t, e)

	// Bad starts.
	wantRefused(t, e.step(t, `{"action":"start","to":"bus"}`), 400, admin.CodeInvalidArgument, "cannot be a migration target")
	wantRefused(t, e.step(t, `{"action":"start","to":"lite"}`), 400, admin.CodeInvalidArgument, "already on backend lite")
	wantRefused(t, e.step(t, `{"action":"start","to":"pg","colour":"red"}`), 400, admin.CodeInvalidArgument, "unknown field")
	wantRefused(t, e.step(t, `{"action":"launch"}`), 400, admin.CodeInvalidArgument, "unknown action")
	wantRefused(t, e.step(t, ``), 400, admin.CodeInvalidArgument, "needs a JSON body")
	wantRefused(t, e.step(t, `{"action":"start"} {}`), 400, admin.CodeInvalidArgument, "after the JSON object")
	wantRefused(t, e.step(t, `{"action":"advance"}`), 404, admin.CodeNotFound, "has no migration")
	wantRefused(t, e.do(t, "GET", "/v1/admin/namespaces/orders/migration", ""), 404, admin.CodeNotFound, "has no migration")

	body := e.mustStep(t, `{"action":"start","to":"pg","min_sample":100,"mismatch_threshold":0.01}`)
	id, _ := field(body, "migration", "id").(string)
	if field(body, "migration", "phase") != "SHADOW_WRITE" || field(body, "migration", "from") != "lite" || len(id) != 16 ||
		field(body, "migration", "read_percent") != float64(10) || field(body, "migration", "min_sample") != "100" {
		t.Fatalf("started: %v", body["migration"])
	}
	if field(body, "backfill", "state") != "idle" || field(body, "gate", "can_promote") != false {
		t.Errorf("a new migration: backfill %v gate %v", body["backfill"], body["gate"])
	}
	wantRefused(t, e.step(t, `{"action":"start","to":"pg"}`), 409, admin.CodeFailedPrecondition, "already has migration")
	// The migration is pushed: it is in the desired state the ADS serves.
	if m := e.ctl.State().Migrations["orders"]; m.GetId() != id {
		t.Fatalf("desired state holds %v", m)
	}

	// Backfill progress is refused before the BACKFILL phase.
	r := e.do(t, "PUT", "/v1/admin/namespaces/orders/migration/backfill", `{"keys_done": 1}`)
	wantRefused(t, r, 409, admin.CodeFailedPrecondition, "backfill runs in BACKFILL")
	e.mustStep(t, `{"action":"advance"}`) // BACKFILL
	version := e.ctl.State().Version
	e.mustDo(t, "PUT", "/v1/admin/namespaces/orders/migration/backfill",
		`{"migration_id":"`+id+`","checkpoint":"k0400","keys_done":400,"keys_total":1000,"copied":390,"skipped_newer":10}`)
	if e.ctl.State().Version != version {
		t.Error("backfill progress changed the desired state (it would cause an xDS push)")
	}
	wantRefused(t, e.do(t, "PUT", "/v1/admin/namespaces/orders/migration/backfill", `{"migration_id":"feedface","keys_done":1}`),
		409, admin.CodeFailedPrecondition, "is for migration feedface")

	// The controller restarts: backfill progress and history survive.
	e.stop()
	e = startMigrations(t, dbPath)
	r = e.mustDo(t, "GET", "/v1/admin/namespaces/orders/migration", "")
	if field(r.body, "backfill", "state") != "running" || field(r.body, "backfill", "checkpoint") != "k0400" || field(r.body, "backfill", "keys_done") != float64(400) {
		t.Fatalf("backfill after a restart: %v", r.body["backfill"])
	}
	if h, _ := r.body["history"].([]any); len(h) != 2 {
		t.Errorf("history after a restart: %v", r.body["history"])
	}

	e.mustStep(t, `{"action":"advance"}`) // SHADOW_READ
	wantRefused(t, e.step(t, `{"action":"advance"}`), 409, admin.CodeFailedPrecondition, "only by promote")
	wantRefused(t, e.step(t, `{"action":"promote"}`), 409, admin.CodeFailedPrecondition, "backfill has not completed")
	e.mustDo(t, "PUT", "/v1/admin/namespaces/orders/migration/backfill",
		`{"migration_id":"`+id+`","checkpoint":"k0999","keys_done":1000,"keys_total":1000,"copied":990,"skipped_newer":10,"done":true}`)

	// Nodes report; a stale migration id is ignored.
	e.report(t, "node-a", &configv1.MigrationCounters{Namespace: "orders", MigrationId: id, Phase: configv1.Migration_SHADOW_READ, ReadsCompared: 60, Mismatches: 1, ShadowWrites: 500, MismatchKeys: []string{"k7"}})
	e.report(t, "node-b", &configv1.MigrationCounters{Namespace: "orders", MigrationId: id, Phase: configv1.Migration_SHADOW_READ, ReadsCompared: 40, Mismatches: 1, ShadowWrites: 300})
	e.report(t, "node-c", &configv1.MigrationCounters{Namespace: "orders", MigrationId: "old", ReadsCompared: 1e6})
	r = e.mustDo(t, "GET", "/v1/admin/namespaces/orders/migration", "")
	if field(r.body, "stats", "reads_compared") != float64(100) || field(r.body, "stats", "mismatch_rate") != 0.02 ||
		field(r.body, "stats", "nodes", "node-a", "phase") != "SHADOW_READ" || field(r.body, "stats", "nodes", "node-c") != nil {
		t.Errorf("stats = %v", r.body["stats"])
	}
	if s, _ := r.body["series"].([]any); len(s) == 0 {
		t.Error("no series point after reports")
	}
	wantRefused(t, e.step(t, `{"action":"promote"}`), 409, admin.CodeFailedPrecondition, "mismatch rate 0.020000")

	// After a repair the comparison starts afresh and passes.
	body = e.mustStep(t, `{"action":"reset_compare"}`)
	if field(body, "migration", "compare_epoch") != "1" || field(body, "stats", "reads_compared") != float64(0) {
		t.Errorf("after reset_compare: %v %v", body["migration"], body["stats"])
	}
	wantRefused(t, e.step(t, `{"action":"promote"}`), 409, admin.CodeFailedPrecondition, "only 0 of the 100")
	e.report(t, "node-a", &configv1.MigrationCounters{Namespace: "orders", MigrationId: id, CompareEpoch: 1, ReadsCompared: 150})
	r = e.mustDo(t, "GET", "/v1/admin/migrations", "")
	if list, _ := r.body["migrations"].([]any); len(list) != 1 || field(list[0].(map[string]any), "gate", "can_promote") != true {
		t.Fatalf("GET migrations: %s", r.raw)
	}
	wantRefused(t, e.step(t, `{"action":"promote","force":true,"to":"x"}`), 400, admin.CodeInvalidArgument, "start only")
	e.mustStep(t, `{"action":"promote"}`)
	if ns := e.ctl.State().Namespaces["orders"]; ns.GetBackend() != "lite" {
		t.Errorf("PROMOTED moved the namespace to %s already", ns.GetBackend())
	}
	body = e.mustStep(t, `{"action":"advance"}`)
	if field(body, "migration", "phase") != "DECOMMISSIONED" {
		t.Errorf("phase = %v", field(body, "migration", "phase"))
	}
	st := e.ctl.State()
	if st.Namespaces["orders"].GetBackend() != "pg" || st.Migrations["orders"].GetPhase() != configv1.Migration_DECOMMISSIONED {
		t.Errorf("after DECOMMISSIONED: namespace on %s, migration %v", st.Namespaces["orders"].GetBackend(), st.Migrations["orders"])
	}
	if h, _ := body["history"].([]any); len(h) != 6 {
		t.Errorf("history = %v, want start, advance ×2, reset_compare, promote, advance", body["history"])
	}
	// The ended migration stays visible, and nothing moves after it.
	wantRefused(t, e.step(t, `{"action":"abort"}`), 409, admin.CodeFailedPrecondition, "has ended")
	e.mustDo(t, "GET", "/v1/admin/namespaces/orders/migration", "")
	// Forgetting it frees the old backend.
	wantRefused(t, e.do(t, "DELETE", "/v1/admin/backends/lite", ""), 409, admin.CodeFailedPrecondition, "migration of orders")
	e.mustDo(t, "DELETE", "/v1/admin/namespaces/orders/migration", "")
	e.mustDo(t, "DELETE", "/v1/admin/backends/lite", "")
	wantRefused(t, e.do(t, "DELETE", "/v1/admin/namespaces/orders/migration", ""), 404, admin.CodeNotFound, "has no migration")
}

func TestMigrationForceAndAbort(t *testing.T) {
	e := startMigrations(t, filepath.Join(t.TempDir(), "xds.db"))
	seedOrders(t, e)
	e.mustStep(t, `{"action":"start","to":"pg"}`)
	wantRefused(t, e.step(t, `{"action":"promote","force":true}`), 409, admin.CodeFailedPrecondition, "needs phase SHADOW_READ")
	wantRefused(t, e.do(t, "DELETE", "/v1/admin/namespaces/orders/migration", ""), 409, admin.CodeFailedPrecondition, "abort it or finish it")
	wantRefused(t, e.step(t, `{"action":"abort","force":true}`), 400, admin.CodeInvalidArgument, "force goes with action promote")
	e.mustStep(t, `{"action":"advance"}`)
	e.mustStep(t, `{"action":"advance"}`)
	body := e.mustStep(t, `{"action":"promote","force":true}`)
	if field(body, "migration", "phase") != "PROMOTED" {
		t.Fatalf("forced promote: %v", body["migration"])
	}
	body = e.mustStep(t, `{"action":"abort"}`)
	if field(body, "migration", "phase") != "ABORTED" || e.ctl.State().Namespaces["orders"].GetBackend() != "lite" {
		t.Errorf("abort: migration %v, namespace on %s", body["migration"], e.ctl.State().Namespaces["orders"].GetBackend())
	}
	// A new start replaces the aborted migration, with a new id and fresh
	// bookkeeping.
	old := field(body, "migration", "id")
	body = e.mustStep(t, `{"action":"start","to":"pg"}`)
	if field(body, "migration", "id") == old || field(body, "migration", "phase") != "SHADOW_WRITE" {
		t.Errorf("restart: %v", body["migration"])
	}
	if h, _ := body["history"].([]any); len(h) != 1 {
		t.Errorf("history of the new migration = %v", body["history"])
	}
}
