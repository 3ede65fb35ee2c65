package config

import (
	"strings"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

func TestValidateRefusesWhatTheDataPathCannotServe(t *testing.T) {
	const backends = `
backends:
  - {name: lite, sqlite: {path: x.db}}
  - {name: stream, nats: {url: "nats://127.0.0.1:4222"}}
  - {name: log, kafka: {brokers: ["127.0.0.1:9092"]}}
  - {name: gdb, neptune: {endpoint: "https://neptune.example:8182"}}
  - {name: cache, redis: {addr: "127.0.0.1:6379"}}
`
	tests := []struct{ name, namespaces, want string }{
		{"keyvalue on nats", "[{namespace: a, abstraction: keyvalue, backend: stream}]", "backend stream (nats) cannot serve keyvalue; use a backend with one of: sqlite, postgres"},
		{"keyvalue on kafka", "[{namespace: a, abstraction: keyvalue, backend: log}]", "cannot serve keyvalue"},
		{"graph on kafka", "[{namespace: a, abstraction: graph, backend: log}]", "cannot serve graph; use a backend with one of: sqlite, postgres, neptune"},
		{"timeseries on neptune", "[{namespace: a, abstraction: timeseries, backend: gdb}]", "cannot serve timeseries"},
		{"anything on redis", "[{namespace: a, abstraction: keyvalue, backend: cache}]", "backend cache (redis) cannot serve keyvalue"},
		{"unresolved auto", "[{namespace: a, abstraction: keyvalue, backend: auto}]", `backend "auto" must be resolved`},
		{"rps too high", "[{namespace: a, abstraction: keyvalue, backend: lite, limits: {rps: 2000000}}]", "limits.rps 2000000 is over the maximum"},
		{"value too large", "[{namespace: a, abstraction: keyvalue, backend: lite, limits: {max_value_bytes: 100000000}}]", "limits.max_value_bytes 100000000 is over the maximum"},
		{"timeout too long", "[{namespace: a, abstraction: keyvalue, backend: lite, limits: {request_timeout: 31s}}]", "limits.request_timeout 31s is over the maximum of 30s"},
		{"negative timeout", "[{namespace: a, abstraction: keyvalue, backend: lite, limits: {request_timeout: -1s}}]", "limits.request_timeout: is negative"},
		{"negative rps hint", "[{namespace: a, abstraction: keyvalue, backend: lite, estimated_read_rps: -1}]", "estimated_read_rps must be a finite number >= 0"},
		{"identity not a URI", "[{namespace: a, abstraction: keyvalue, backend: lite, access: {owners: [profile-svc]}}]", `access.owners: "profile-svc" is not an absolute URI`},
		{"plaintext PII", "[{namespace: a, abstraction: keyvalue, backend: lite, schema: {pii: [{path: email, class: email, encrypt_at_rest: false}]}}]", "encrypt_at_rest: false is not allowed"},
		{"PII without class", "[{namespace: a, abstraction: keyvalue, backend: lite, schema: {pii: [{path: email}]}}]", "class is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(backends + "namespaces: " + tt.namespaces))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: %v\nwant an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestValidateAcceptsEveryServableCombination(t *testing.T) {
	cfg, err := Parse([]byte(`
backends:
  - {name: lite, sqlite: {path: x.db}}
  - {name: pg, postgres: {dsn: "postgres://x"}}
  - {name: stream, nats: {url: "nats://127.0.0.1:4222"}}
  - {name: log, kafka: {brokers: ["127.0.0.1:9092"]}}
  - {name: gdb, neptune: {endpoint: "https://neptune.example:8182"}}
namespaces:
  - {namespace: kv-lite, abstraction: keyvalue, backend: lite}
  - {namespace: kv-pg, abstraction: keyvalue, backend: pg, limits: {rps: 1000000, max_value_bytes: 67108864, request_timeout: 30s}}
  - {namespace: ts-lite, abstraction: timeseries, backend: lite}
  - {namespace: ts-pg, abstraction: timeseries, backend: pg}
  - {namespace: ts-nats, abstraction: timeseries, backend: stream}
  - {namespace: ts-kafka, abstraction: timeseries, backend: log}
  - {namespace: g-lite, abstraction: graph, backend: lite}
  - {namespace: g-pg, abstraction: graph, backend: pg}
  - {namespace: g-neptune, abstraction: graph, backend: gdb, access: {owners: ["spiffe://prism.local/a"], readers: ["spiffe://prism.local/b"]}}
`))
	if err != nil {
		t.Fatalf("a config of servable namespaces was refused: %v", err)
	}
	if len(cfg.GetNamespaces()) != 9 {
		t.Fatalf("got %d namespaces", len(cfg.GetNamespaces()))
	}
}

func TestValidateBackendOptions(t *testing.T) {
	tests := []struct {
		b    *configv1.Backend
		want string
	}{
		{&configv1.Backend{Name: "a", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{}}}, "sqlite.path is empty"},
		{&configv1.Backend{Name: "a", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{}}}, "postgres.dsn is empty"},
		{&configv1.Backend{Name: "a", Driver: &configv1.Backend_Kafka{Kafka: &configv1.Backend_KafkaOptions{Brokers: []string{"nohost"}}}}, `kafka broker "nohost" is not host:port`},
		{&configv1.Backend{Name: "a", Driver: &configv1.Backend_Nats{Nats: &configv1.Backend_NatsOptions{}}}, "nats.url is empty"},
	}
	for _, tt := range tests {
		errs := ValidateBackend(tt.b)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
			t.Errorf("ValidateBackend(%v) = %v, want %q", tt.b, errs, tt.want)
		}
	}
}

func TestValidatePoolAndMigration(t *testing.T) {
	if errs := ValidatePool(&configv1.ExtprocPool{Name: "blue", Endpoints: []string{"extproc:9001", "10.0.0.1:70000", "nohost"}}); len(errs) != 2 {
		t.Errorf("ValidatePool: %v, want 2 errors (bad port, no port)", errs)
	}
	backends := map[string]*configv1.Backend{
		"lite": {Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "x"}}},
		"log":  {Name: "log", Driver: &configv1.Backend_Kafka{Kafka: &configv1.Backend_KafkaOptions{Brokers: []string{"k:9092"}}}},
	}
	namespaces := map[string]*configv1.Namespace{"a": {Namespace: "a", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "lite"}}
	errs := ValidateMigration(&configv1.Migration{Namespace: "a", From: "lite", To: "log", ReadPercent: 150}, namespaces, backends)
	if len(errs) != 2 {
		t.Errorf("ValidateMigration: %v, want 2 errors (cannot serve, read_percent)", errs)
	}
}
