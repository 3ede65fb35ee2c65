package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/internal/pgtest"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/planner"
)

// provision plans ns on b against what b has, applies, and returns the
// steps of the plan.
func provision(t *testing.T, p *Provisioner, ns *configv1.Namespace, b *configv1.Backend) []planner.Step {
	t.Helper()
	ctx := context.Background()
	want, err := planner.Plan(ns, b, planner.DefaultOptions())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if err := Resolve(b, &want); err != nil {
		t.Fatal(err)
	}
	have, err := p.Observe(ctx, b, want)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	steps, apply := planner.Diff(want, have, planner.DiffOptions{})
	if err := p.Apply(ctx, ns, b, apply); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return steps
}

func actions(steps []planner.Step) string {
	var s []string
	for _, st := range steps {
		s = append(s, st.Object+":"+st.Action)
	}
	return strings.Join(s, " ")
}

// kcatPartitions reads a topic's partition count with kcat (librdkafka),
// a client independent of franz-go.
func kcatPartitions(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not found: install the Debian package kcat (make test installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, "-b", strings.Join(brokers, ","), "-L", "-t", topic, "-J")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -L: %v\n%s", err, stderr.String())
	}
	var md struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int `json:"partition"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat output %s: %v", out, err)
	}
	for _, tp := range md.Topics {
		if tp.Topic == topic {
			return len(tp.Partitions)
		}
	}
	return 0
}

func TestKafkaTopicIsCreatedAndGrowsButNeverShrinks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := &configv1.Backend{Name: "log", Driver: &configv1.Backend_Kafka{Kafka: &configv1.Backend_KafkaOptions{Brokers: c.ListenAddrs()}}}
	p := New(Options{})
	ns := &configv1.Namespace{Namespace: "clicks", Abstraction: configv1.Abstraction_TIMESERIES, EstimatedWriteRps: 2000, EstimatedRecordBytes: 200, RetentionDays: 7}

	if got := actions(provision(t, p, ns, b)); got != "topic:create" {
		t.Fatalf("first apply: %s, want topic:create", got)
	}
	if n := kcatPartitions(t, c.ListenAddrs(), "prism.ts.clicks"); n != 4 {
		t.Fatalf("kcat sees %d partitions, want 4 (2000/s × 2 over 1000/s per partition)", n)
	}
	if got := actions(provision(t, p, ns, b)); got != "partitions:ok" {
		t.Fatalf("second apply of the same namespace: %s, want partitions:ok (idempotent)", got)
	}

	ns.EstimatedWriteRps = 5000
	if got := actions(provision(t, p, ns, b)); got != "partitions:grow" {
		t.Fatalf("raised estimate: %s, want partitions:grow", got)
	}
	if n := kcatPartitions(t, c.ListenAddrs(), "prism.ts.clicks"); n != 10 {
		t.Fatalf("after raising estimated_write_rps kcat sees %d partitions, want 10", n)
	}

	ns.EstimatedWriteRps = 10
	if got := actions(provision(t, p, ns, b)); got != "partitions:keep" {
		t.Fatalf("lowered estimate: %s, want partitions:keep", got)
	}
	if n := kcatPartitions(t, c.ListenAddrs(), "prism.ts.clicks"); n != 10 {
		t.Fatalf("after lowering the estimate kcat sees %d partitions, want still 10", n)
	}
}

func testNATS(t *testing.T) string {
	t.Helper()
	const url = "nats://127.0.0.1:4222"
	nc, err := natsio.Connect(url, natsio.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("NATS unreachable at %s (make services): %v", url, err)
	}
	nc.Close()
	return url
}

func TestJetStreamStreamGetsItsLimits(t *testing.T) {
	url := testNATS(t)
	var r [4]byte
	rand.Read(r[:])
	name := "prov-" + hex.EncodeToString(r[:])
	prefix := "PROVTEST_"
	b := &configv1.Backend{Name: "stream", Driver: &configv1.Backend_Nats{Nats: &configv1.Backend_NatsOptions{Url: url + "?stream_prefix=" + prefix}}}
	nc, _ := natsio.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	t.Cleanup(func() { js.DeleteStream(context.Background(), prefix+name) })

	p := New(Options{})
	ns := &configv1.Namespace{Namespace: name, Abstraction: configv1.Abstraction_TIMESERIES, EstimatedDataSizeGb: 0.5, RetentionDays: 2,
		Limits: &configv1.Limits{MaxValueBytes: 10000}}
	if got := actions(provision(t, p, ns, b)); got != "stream:create" {
		t.Fatalf("first apply: %s", got)
	}
	read := func() jetstream.StreamConfig {
		s, err := js.Stream(context.Background(), prefix+name)
		if err != nil {
			t.Fatalf("stream %s: %v", prefix+name, err)
		}
		return s.CachedInfo().Config
	}
	c := read()
	if c.MaxBytes != 1<<30 || c.MaxMsgSize != 14096 || c.MaxAge != 48*time.Hour {
		t.Fatalf("stream limits max_bytes %d max_msg_size %d max_age %s, want 1 GiB, 14096, 48h", c.MaxBytes, c.MaxMsgSize, c.MaxAge)
	}
	if got := actions(provision(t, p, ns, b)); got != "stream:ok" {
		t.Fatalf("second apply: %s, want stream:ok", got)
	}

	// extproc's EnsureNamespace keeps the limits.
	ns.EstimatedDataSizeGb = 0.1
	if got := actions(provision(t, p, ns, b)); got != "stream:keep" {
		t.Fatalf("lowered size: %s, want stream:keep", got)
	}
	if c := read(); c.MaxBytes != 1<<30 {
		t.Fatalf("lowering the estimate changed max_bytes to %d; it must never shrink", c.MaxBytes)
	}
}

// A stream extproc created on first use (unlimited) gets its limits when
// the namespace is applied, as long as it holds less than them.
func TestJetStreamLimitsOnAStreamExtprocCreated(t *testing.T) {
	url := testNATS(t)
	var r [4]byte
	rand.Read(r[:])
	name := "prov-" + hex.EncodeToString(r[:])
	b := &configv1.Backend{Name: "stream", Driver: &configv1.Backend_Nats{Nats: &configv1.Backend_NatsOptions{Url: url}}}
	st, err := ts.Open(context.Background(), "nats", url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t.Cleanup(func() { st.DropNamespace(context.Background(), name) })
	if err := st.EnsureNamespace(context.Background(), name, ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := &configv1.Namespace{Namespace: name, Abstraction: configv1.Abstraction_TIMESERIES, EstimatedDataSizeGb: 1}
	if got := actions(provision(t, New(Options{}), ns, b)); got != "stream:update" {
		t.Fatalf("apply on an unlimited stream: %s, want stream:update", got)
	}
	// extproc ensuring the namespace again keeps the limits.
	if err := st.EnsureNamespace(context.Background(), name, ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	nc, _ := natsio.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), "PRISM_TS_"+name)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.MaxBytes != 2<<30 || c.MaxMsgSize != 1<<20+4096 {
		t.Fatalf("after extproc's EnsureNamespace: max_bytes %d max_msg_size %d, want 2 GiB and 1 MiB + 4 KiB", c.MaxBytes, c.MaxMsgSize)
	}
}

func TestPostgresTableAndIndexes(t *testing.T) {
	dsn := pgtest.Schema(t, "prov")
	b := &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: dsn}}}
	p := New(Options{})
	ns := &configv1.Namespace{Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE,
		Schema: &configv1.Schema{Indexes: []*configv1.Index{{Path: "status"}, {Path: "customer.id"}}}}
	if got := actions(provision(t, p, ns, b)); got != "table:create index:create index:create" {
		t.Fatalf("first apply: %s", got)
	}
	if got := actions(provision(t, p, ns, b)); got != "table:ok index:ok index:ok" {
		t.Fatalf("second apply: %s", got)
	}
	ns.Schema.Indexes = ns.Schema.Indexes[:1]
	if got := actions(provision(t, p, ns, b)); got != "table:ok index:ok index:keep" {
		t.Fatalf("index no longer declared: %s, want it kept", got)
	}

	// A TimeSeries namespace's index is on the events' data.
	events := &configv1.Namespace{Namespace: "order-events", Abstraction: configv1.Abstraction_TIMESERIES,
		Schema: &configv1.Schema{Indexes: []*configv1.Index{{Path: "kind"}}}}
	if got := actions(provision(t, p, events, b)); got != "table:create index:create" {
		t.Fatalf("timeseries apply: %s", got)
	}

	// Read back from pg_catalog with an independent query, and check the
	// index serves a lookup of the namespace's rows.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT indexdef FROM pg_catalog.pg_indexes WHERE schemaname = current_schema() AND tablename = 'prism_kv' ORDER BY indexname`)
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(defs, "\n")
	for _, want := range []string{"(prism_json(value) #>> '{status}'::text[])", "(prism_json(value) #>> '{customer,id}'::text[])", "WHERE (ns = 'orders'::text)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("pg_indexes of prism_kv lack %q:\n%s", want, joined)
		}
	}
	var tsDef string
	if err := conn.QueryRow(ctx, `SELECT indexdef FROM pg_catalog.pg_indexes WHERE schemaname = current_schema() AND tablename = 'prism_ts_events' AND indexdef LIKE '%prism_json%'`).Scan(&tsDef); err != nil ||
		!strings.Contains(tsDef, "(prism_json(data) #>> '{kind}'::text[])") || !strings.Contains(tsDef, "WHERE (ns = 'order-events'::text)") {
		t.Errorf("index of the timeseries namespace: %q %v", tsDef, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO prism_kv (ns, key, value, content_type, version) VALUES ('orders', 'a', '{"status":"paid"}', 'application/json', 1), ('orders', 'b', 'not json', 'text/plain', 1)`); err != nil {
		t.Fatalf("writing a JSON and a non-JSON value to an indexed namespace: %v", err)
	}
	var key string
	if err := conn.QueryRow(ctx, `SELECT convert_from(key, 'UTF8') FROM prism_kv WHERE ns = 'orders' AND prism_json(value) #>> '{status}' = 'paid'`).Scan(&key); err != nil || key != "a" {
		t.Fatalf("lookup by the indexed field: %q %v", key, err)
	}
}
