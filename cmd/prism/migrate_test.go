package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-gw/prism/backends/kv"
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

	migrate := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(append([]string{"migrate"}, append(args, "--admin", admin, "--admin-token", "tok")...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	mustMigrate := func(args ...string) string {
		t.Helper()
		out, errOut, err := migrate(args...)
		if err != nil {
			t.Fatalf("prism migrate %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	out := mustMigrate("start", "orders", "--to", "pg", "--min-sample", "0")
	if !strings.Contains(out, "lite → pg") || !strings.Contains(out, "SHADOW_WRITE") {
		t.Errorf("start printed:\n%s", out)
	}
	if _, _, err := migrate("backfill", "orders"); err == nil || !strings.Contains(err.Error(), "backfill runs in BACKFILL") {
		t.Errorf("backfill in SHADOW_WRITE: %v", err)
	}
	mustMigrate("advance", "orders")
	out, errOut, err := migrate("backfill", "orders", "--rate", "0")
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "backfill orders done: 250 keys, copied 250") || !strings.Contains(errOut, "250/250 keys (100.0%)") {
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
