package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-gw/prism/client"
	ordersv1 "github.com/prism-gw/prism/examples/orders/v1"
	"github.com/prism-gw/prism/internal/pgtest"
)

// startDevWithBackends runs prism dev with a Postgres schema and a Kafka
// cluster (kfake) declared besides the embedded SQLite, and no namespace of
// the example.
func startDevWithBackends(t *testing.T) (base, admin, pgDSN string, brokers []string) {
	t.Helper()
	pgDSN = pgtest.Schema(t, "nsapply")
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers = c.ListenAddrs()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prism.yaml")
	yaml := "backends:\n" +
		"  - {name: local, sqlite: {path: " + filepath.Join(dir, "kv.db") + "}}\n" +
		"  - {name: pg, postgres: {dsn: \"" + pgDSN + "\"}}\n" +
		"  - {name: log, kafka: {brokers: [\"" + brokers[0] + "\"]}}\n" +
		"namespaces:\n  - {namespace: default, abstraction: keyvalue, backend: local}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	base, admin, stop := startDevAdmin(t, cfg)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("prism dev stopped with %v", err)
		}
	})
	return base, admin, pgDSN, brokers
}

// TestNSApplyThenFirstWriteAndRead is the promise: from a prism dev
// without the example's namespaces, `prism ns apply -f` of the example's
// descriptor set, then a first write and read through the generated typed
// client. The time is printed, not asserted.
func TestNSApplyThenFirstWriteAndRead(t *testing.T) {
	base, admin, pgDSN, brokers := startDevWithBackends(t)
	ctx := context.Background()
	var out strings.Builder

	start := time.Now()
	if err := runNS(ctx, []string{"apply", "-f", "../../examples/orders/v1/orders.binpb", "--admin", admin}, &out, io.Discard); err != nil {
		t.Fatalf("ns apply: %v\n%s", err, out.String())
	}
	applied := time.Since(start)
	conn := &client.Conn{BaseURL: base}
	orders := ordersv1.NewOrderClient(conn)
	want := &ordersv1.Order{Id: "o-1", Email: "ada@example.com", Status: "paid", TotalCents: 4200, Shipping: &ordersv1.Address{Street: "1 Loop Rd", City: "Paris"}}
	var version string
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// The namespace reaches extproc over ADS just after the apply.
		if version, err = orders.Put(ctx, want); err == nil || !client.IsNotFound(err) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("first Put through the generated client: %v", err)
	}
	got, gotVersion, err := orders.Get(ctx, "o-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	total := time.Since(start)
	if gotVersion != version || got.GetId() != "o-1" || got.GetStatus() != "paid" || got.GetTotalCents() != 4200 || got.GetShipping().GetCity() != "Paris" {
		t.Fatalf("Get = %v version %s, want %v version %s", got, gotVersion, want, version)
	}
	t.Logf("ns apply answered after %v; first write + read through the generated client done %v after the apply started (target < 10s)",
		applied.Round(time.Millisecond), total.Round(time.Millisecond))
	t.Logf("apply output:\n%s", out.String())
	if !strings.Contains(out.String(), "chosen for backend: auto") || !strings.Contains(out.String(), "partitions") {
		t.Errorf("the apply output does not show the plan:\n%s", out.String())
	}

	// The PII field is not stored in plaintext in Postgres.
	pg, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	var raw []byte
	if err := pg.QueryRow(ctx, `SELECT value FROM prism_kv WHERE ns = 'orders' AND key = 'o-1'`).Scan(&raw); err != nil {
		t.Fatalf("reading the stored row: %v", err)
	}
	if strings.Contains(string(raw), "ada@example.com") {
		t.Errorf("the email is stored in plaintext: %s", raw)
	}
	// The declared index exists (pg_catalog) and the table is the driver's.
	var n int
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_indexes WHERE schemaname = current_schema() AND tablename = 'prism_kv' AND indexdef LIKE '%{status}%' AND indexdef LIKE '%''orders''%'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("index on status of namespace orders: %d found, %v", n, err)
	}

	// The TimeSeries message went to Kafka with planned partitions.
	events := ordersv1.NewOrderEventClient(conn)
	at := time.Now().UTC().Truncate(time.Millisecond)
	if a, _, err := events.Append(ctx, &ordersv1.OrderEvent{OrderId: "o-1", Id: "e1", At: timestamppb.New(at), Kind: "paid"}); err != nil || a != 1 {
		t.Fatalf("Append: %d %v", a, err)
	}
	evs, _, err := events.Query(ctx, "o-1", time.Time{}, time.Time{}, 10, "")
	if err != nil || len(evs) != 1 || !proto.Equal(evs[0], &ordersv1.OrderEvent{OrderId: "o-1", Id: "e1", At: timestamppb.New(at), Kind: "paid"}) {
		t.Fatalf("Query = %v, %v", evs, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, "prism.ts.order-events")
	if err != nil || len(td["prism.ts.order-events"].Partitions) != 3 {
		t.Errorf("topic prism.ts.order-events: %v partitions, %v; want 3 (the minimum: 900 writes/s × 2 over 1000/s per partition needs 2)", len(td["prism.ts.order-events"].Partitions), err)
	}

	// Applying again changes nothing, and diff finds no drift.
	out.Reset()
	if err := runNS(ctx, []string{"apply", "-f", "../../examples/orders/v1/orders.prism.yaml", "--admin", admin}, &out, io.Discard); err != nil {
		t.Fatalf("second apply (YAML): %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "namespace orders: unchanged") {
		t.Errorf("second apply did not report unchanged:\n%s", out.String())
	}
	out.Reset()
	if err := runNS(ctx, []string{"diff", "-f", "../../examples/orders/v1/orders.binpb", "--admin", admin}, &out, io.Discard); err != nil {
		t.Fatalf("diff after apply: %v\n%s", err, out.String())
	}

	// Drift: an index dropped by hand, and a file that asks for more
	// writes than applied. diff shows both; apply repairs and grows.
	if _, err := pg.Exec(ctx, `DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexdef LIKE '%{status}%' LOOP EXECUTE 'DROP INDEX ' || quote_ident(r.indexname); END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	yamlData, err := os.ReadFile("../../examples/orders/v1/orders.prism.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more := filepath.Join(t.TempDir(), "more.yaml")
	if err := os.WriteFile(more, []byte(strings.Replace(string(yamlData), "estimated_write_rps: 900", "estimated_write_rps: 6000", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runNS(ctx, []string{"diff", "-f", more, "--admin", admin}, &out, io.Discard)
	for _, want := range []string{"namespace orders: drift", "index prism_kv_ix_orders_status_", ": create", "namespace order-events: drift", "change estimated_write_rps: 900 → 6000", "partitions prism.ts.order-events: keep (3, the plan needs 12"} {
		if err == nil || !strings.Contains(out.String(), want) {
			t.Errorf("diff: %v, output lacks %q:\n%s", err, want, out.String())
		}
	}
	// The topic holds an event: growing needs consent, since the kafka
	// driver reads a series from one partition.
	out.Reset()
	if err := runNS(ctx, []string{"apply", "-f", more, "--admin", admin}, &out, io.Discard); err != nil {
		t.Fatalf("apply of the raised estimate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "partitions prism.ts.order-events: keep (3, the plan needs 12") {
		t.Errorf("apply without --repartition did not hold the partitions:\n%s", out.String())
	}
	out.Reset()
	if err := runNS(ctx, []string{"apply", "--repartition", "-f", more, "--admin", admin}, &out, io.Discard); err != nil {
		t.Fatalf("apply --repartition of the raised estimate: %v\n%s", err, out.String())
	}
	// A new client: kgo answers metadata requests from a cache for a while.
	cl2, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	td, err = kadm.NewClient(cl2).ListTopics(ctx, "prism.ts.order-events")
	if err != nil || len(td["prism.ts.order-events"].Partitions) != 12 {
		t.Errorf("after raising estimated_write_rps: %d partitions, %v; want 12\n%s", len(td["prism.ts.order-events"].Partitions), err, out.String())
	}
	out.Reset()
	if err := runNS(ctx, []string{"diff", "-f", more, "--admin", admin}, &out, io.Discard); err != nil {
		t.Fatalf("diff after repairing apply: %v\n%s", err, out.String())
	}
}

// TestNSApplyRefusesInvalidConfigs: each invalid file is refused with the
// field at fault named, and nothing is provisioned.
func TestNSApplyRefusesInvalidConfigs(t *testing.T) {
	_, admin, _, brokers := startDevWithBackends(t)
	ctx := context.Background()
	tests := []struct{ name, yaml, want string }{
		{"unknown option value", "namespaces: [{namespace: bad1, abstraction: timeseries, backend: log, access_pattern: sideways}]", `namespaces[0].access_pattern: unknown value "sideways"`},
		{"unknown PII class", "namespaces: [{namespace: bad2, abstraction: keyvalue, backend: pg, schema: {pii: [{path: email, class: mail}]}}]", `namespaces[0].schema.pii[0].class: unknown value "mail"`},
		{"backend that cannot serve the abstraction", "namespaces: [{namespace: bad3, abstraction: keyvalue, backend: log}]", "backend log (kafka) cannot serve keyvalue"},
		{"partitions over the cap", "namespaces: [{namespace: bad4, abstraction: timeseries, backend: log, estimated_write_rps: 100000}]", "namespace bad4: estimated_write_rps: 100000 writes/s needs 200 partitions, over the cap of 64"},
		{"index on a PII field", "namespaces: [{namespace: bad5, abstraction: keyvalue, backend: pg, schema: {pii: [{path: email, class: email}], indexes: [{path: email}]}}]", "schema.indexes[0].path: email is a PII field"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, tt.name+".yaml")
			if err := os.WriteFile(f, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			err := runNS(ctx, []string{"apply", "-f", f, "--admin", admin}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ns apply: %v\nwant an error mentioning %q", err, tt.want)
			}
			if code, _ := adminDo(t, "GET", admin+"/v1/admin/namespaces/bad"+string(rune('1'+i)), "", ""); code != 404 {
				t.Errorf("the refused namespace exists: GET answered %d", code)
			}
		})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := topics.Names(); len(names) != 0 {
		t.Errorf("refused configs provisioned topics %v", names)
	}
}

func TestLoadNamespaceFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, ns, err := loadNamespaceFile(write("one.yaml", "namespace: a\nabstraction: keyvalue\nbackend: auto\naccess_pattern: READ_HEAVY\n"))
	if err != nil || len(ns) != 1 || ns[0].GetAccessPattern().String() != "READ_HEAVY" {
		t.Fatalf("one namespace: %v %v", ns, err)
	}
	b, ns, err := loadNamespaceFile(write("many.yaml", "backends: [{name: lite, sqlite: {path: x.db}}]\nnamespaces: [{namespace: a, abstraction: keyvalue, backend: lite}, {namespace: b, abstraction: graph, backend: lite}]\n"))
	if err != nil || len(b) != 1 || len(ns) != 2 {
		t.Fatalf("backends and namespaces: %v %v %v", b, ns, err)
	}
	_, ns, err = loadNamespaceFile("../../examples/orders/v1/orders.binpb")
	if err != nil || len(ns) != 2 || ns[0].GetSchema().GetPii()[1].GetPath() != "shipping.street" {
		t.Fatalf("descriptor set: %v %v", ns, err)
	}
	for _, tt := range []struct{ name, data, want string }{
		{"bad.yaml", "namespaces: [{namespace: a, abstraction: keyvalue, consistency: sometimes}]", `namespaces[0].consistency: unknown value "sometimes" (want one of: eventual, strong)`},
		{"bad2.yaml", "namespace: a\nabstraction: blob\n", `abstraction: unknown value "blob"`},
		{"bad3.yaml", "namespaces: [{namespace: A_B, abstraction: keyvalue}]", "namespaces[0].namespace"},
		{"bad.binpb", "not a descriptor set", "bad.binpb: not a descriptor set"},
		{"none.yaml", "namespaces: []", "namespaces: none declared"},
	} {
		if _, _, err := loadNamespaceFile(write(tt.name, tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}
