package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/internal/pgtest"
)

// TestMigrateCLI drives a migration of a SQLite namespace to Postgres with
// the CLI against a real `prism xds`: start, advance, backfill (real
// stores), status, repair, and the gate refusing an early promote.
func TestMigrateCLI(t *testing.T) {
	dir := t.TempDir()
	kvPath := filepath.Join(dir, "kv.db")
	seed := filepath.Join(dir, "prism.yaml")
	cfg := fmt.Sprintf("backends:\n- {name: lite, sqlite: {path: %q}}\n- {name: pg, postgres: {dsn: %q}}\nnamespaces: [{namespace: orders, abstraction: keyvalue, backend: lite}]\n",
		kvPath, pgtest.Schema(t, "migrate_cli_"))
	if err := os.WriteFile(seed, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	admin, stop := startXDS(t, "--store", filepath.Join(dir, "xds.db"), "--admin-token", "tok", "--seed", seed, "--extproc", "127.0.0.1:9001")
	defer stop()

	ctx := context.Background()
	src, err := kv.Open(ctx, "sqlite", kvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ops []kv.Op
	for i := range 250 {
		ops = append(ops, kv.Op{Put: kv.PutOp{Key: fmt.Sprintf("o-%03d", i), Value: []byte("v"), ContentType: "text/plain"}})
	}
	if _, err := src.Batch(ctx, "orders", ops); err != nil {
		t.Fatal(err)
	}

	migrate, mustMigrate := migrateCommands(t, admin)
	out := mustMigrate("start", "orders", "--to", "pg", "--min-sample", "0")
	if !strings.Contains(out, "lite → pg") || !strings.Contains(out, "SHADOW_WRITE") {
		t.Errorf("start printed:\n%s", out)
	}
	if _, _, err := migrate("backfill", "orders"); err == nil || !strings.Contains(err.Error(), "backfill runs in BACKFILL") {
		t.Errorf("backfill in SHADOW_WRITE: %v", err)
	}
	mustMigrate("advance", "orders")
	// A job killed without a word holds the backfill until its lease
	// lapses: the next job waits it out, then copies.
	req, _ := http.NewRequest(http.MethodPut, admin+"/v1/admin/namespaces/orders/migration/backfill",
		strings.NewReader(`{"job":"killed-job","keys_done":0,"keys_total":250}`))
	req.Header.Set("authorization", "Bearer tok")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a report of another job: %v %v", resp, err)
	}
	out, errOut, err := migrate("backfill", "orders", "--rate", "0")
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "backfill orders done: 250 keys, copied 250") || !strings.Contains(errOut, "250/250 keys (100.0%)") ||
		!strings.Contains(out, "backfill job killed-job holds orders") {
		t.Errorf("backfill printed:\n%s\nstderr:\n%s", out, errOut)
	}
	if out := mustMigrate("backfill", "orders"); !strings.Contains(out, "already done") {
		t.Errorf("second backfill printed:\n%s", out)
	}
	_, _, err = migrate("promote", "orders")
	if err == nil || !strings.Contains(err.Error(), "FAILED_PRECONDITION") {
		t.Errorf("promote from BACKFILL: %v", err)
	}
	mustMigrate("advance", "orders")

	// Drift: a source write the shadow traffic missed; repair fixes it and
	// opens a new comparison window.
	if _, err := src.Put(ctx, "orders", kv.PutOp{Key: "o-007", Value: []byte("changed")}); err != nil {
		t.Fatal(err)
	}
	out = mustMigrate("backfill", "orders", "--repair")
	if !strings.Contains(out, "compared 250 source keys, copied 1, rewrote 0") || !strings.Contains(out, "comparison reset") {
		t.Errorf("repair printed:\n%s", out)
	}
	out = mustMigrate("status", "orders")
	for _, want := range []string{"SHADOW_READ", "compare_epoch 1", "backfill       done, 250/250 keys", "can promote    yes", "reset_compare"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if out := mustMigrate("status"); !strings.Contains(out, "orders") || !strings.Contains(out, "SHADOW_READ") {
		t.Errorf("status of all:\n%s", out)
	}
	mustMigrate("promote", "orders")
	if out := mustMigrate("advance", "orders"); !strings.Contains(out, "DECOMMISSIONED") {
		t.Errorf("decommission printed:\n%s", out)
	}
	if _, _, err := migrate("advance"); err == nil {
		t.Error("advance without a namespace succeeded")
	}
}

// migrateCommands runs `prism migrate ARGS` in process against the admin
// API at admin (token tok): migrate returns stdout, stderr and the error,
// mustMigrate stdout, failing the test on an error.
func migrateCommands(t *testing.T, admin string) (migrate func(args ...string) (string, string, error), mustMigrate func(args ...string) string) {
	migrate = func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(append([]string{"migrate"}, append(args, "--admin", admin, "--admin-token", "tok")...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	mustMigrate = func(args ...string) string {
		t.Helper()
		out, errOut, err := migrate(args...)
		if err != nil {
			t.Fatalf("prism migrate %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	return migrate, mustMigrate
}

// TestMigrateCLITimeSeries drives a migration of a SQLite timeseries
// namespace to Postgres with the CLI against a real `prism xds`: a
// backfill of events bounded by --start/--end and then of all of them,
// status in events, the repair pass, and the handover the control plane
// runs at promote and at abort (checked on the stores themselves).
func TestMigrateCLITimeSeries(t *testing.T) {
	dir := t.TempDir()
	tsPath := filepath.Join(dir, "ts.db")
	pgDSN := pgtest.Schema(t, "migrate_cli_ts_")
	seed := filepath.Join(dir, "prism.yaml")
	cfg := fmt.Sprintf("backends:\n- {name: lite, sqlite: {path: %q}}\n- {name: pg, postgres: {dsn: %q}}\nnamespaces: [{namespace: events, abstraction: timeseries, backend: lite}]\n",
		tsPath, pgDSN)
	if err := os.WriteFile(seed, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	admin, stop := startXDS(t, "--store", filepath.Join(dir, "xds.db"), "--admin-token", "tok", "--seed", seed, "--extproc", "127.0.0.1:9001")
	defer stop()

	ctx := context.Background()
	open := func(driver, dsn string) ts.Replica {
		t.Helper()
		s, err := ts.Open(ctx, driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.EnsureNamespace(ctx, "events", ts.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
		return s.(ts.Replica)
	}
	src, dst := open("sqlite", tsPath), open("postgres", pgDSN)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var events []ts.Event
	for i := range 120 {
		events = append(events, ts.Event{Series: fmt.Sprintf("s%d", i%3), Time: t0.Add(time.Duration(i) * time.Minute), Data: []byte(`{"v":1}`)})
	}
	if _, _, err := src.Append(ctx, "events", events); err != nil {
		t.Fatal(err)
	}

	migrate, mustMigrate := migrateCommands(t, admin)
	mustMigrate("start", "events", "--to", "pg", "--min-sample", "0")
	mustMigrate("advance", "events")
	if _, _, err := migrate("backfill", "events", "--start", "yesterday"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("backfill --start yesterday: %v", err)
	}
	// The first hour only: the backfill is then done, and the repair
	// below copies the rest.
	out, errOut, err := migrate("backfill", "events", "--start", "2026-03-01T00:00:00Z", "--end", "2026-03-01T01:00:00Z")
	if err != nil {
		t.Fatalf("backfill of an hour: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "backfill events done: 60 events, copied 60") || !strings.Contains(errOut, "60/60 events (100.0%)") {
		t.Errorf("backfill of an hour printed:\n%s\nstderr:\n%s", out, errOut)
	}
	if out := mustMigrate("backfill", "events"); !strings.Contains(out, "already done: 60 events") {
		t.Errorf("second backfill printed:\n%s", out)
	}
	// A range asks again: the second hour's events are all there already.
	out, errOut, err = migrate("backfill", "events", "--start", "2026-03-01T00:30:00Z", "--end", "2026-03-01T01:00:00Z")
	if err != nil || !strings.Contains(out, "done: 30 events, copied 0, skipped 30") {
		t.Errorf("backfill of half an hour again: %v\n%s\nstderr:\n%s", err, out, errOut)
	}
	out = mustMigrate("backfill", "events", "--repair")
	if !strings.Contains(out, "compared 120 source events, copied 60 missing (0 at another position), 0 differ") || !strings.Contains(out, "comparison reset") {
		t.Errorf("repair printed:\n%s", out)
	}
	if c, err := dst.Count(ctx, "events", time.Time{}, time.Time{}); err != nil || c != 120 {
		t.Errorf("target holds %d events after the repair (%v), want 120", c, err)
	}
	mustMigrate("advance", "events")
	out = mustMigrate("status", "events")
	if !strings.Contains(out, "backfill       done, 30/30 events, copied 0, already there 30, moved 0") {
		t.Errorf("status:\n%s", out)
	}

	// Promote: the control plane seals the source and unseals the target.
	out = mustMigrate("promote", "events")
	if !strings.Contains(out, "PROMOTED") || !strings.Contains(out, "handover floor") {
		t.Errorf("promote printed:\n%s", out)
	}
	one := []ts.Event{{Series: "s0", Time: t0.Add(time.Hour * 5), Data: []byte(`2`)}}
	if _, _, err := src.AppendEvents(ctx, "events", one); !errors.Is(err, ts.ErrSealed) {
		t.Errorf("append to the source after promote: %v, want ts.ErrSealed", err)
	}
	if got, _, err := dst.AppendEvents(ctx, "events", one); err != nil || len(got) != 1 || got[0].Seq <= 120 {
		t.Errorf("append to the target after promote = %+v, %v; want a position above the source's 120", got, err)
	}
	// Abort after promotion hands back.
	if out := mustMigrate("abort", "events"); !strings.Contains(out, "ABORTED") {
		t.Errorf("abort printed:\n%s", out)
	}
	if _, _, err := dst.AppendEvents(ctx, "events", one); !errors.Is(err, ts.ErrSealed) {
		t.Errorf("append to the target after abort: %v, want ts.ErrSealed", err)
	}
	if _, _, err := src.AppendEvents(ctx, "events", one); err != nil {
		t.Errorf("append to the source after abort: %v", err)
	}
}
