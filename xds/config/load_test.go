package config

import (
	"strings"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

func TestParseArchitectureExample(t *testing.T) {
	cfg, err := Parse([]byte(`
backends:
  - name: pg-main
    postgres: {dsn: "postgres://postgres@127.0.0.1/test"}
namespaces:
  - namespace: user-profiles
    abstraction: keyvalue
    backend: pg-main
    access_pattern: read_heavy
    estimated_read_rps: 5000
    estimated_write_rps: 500
    retention_days: 0
    cache: {ttl: 30s}
    schema:
      pii:
        - {path: email, class: email}
        - {path: address.street, class: address}
    access:
      owners:  ["spiffe://prism.local/profile-svc"]
      readers: ["spiffe://prism.local/support-tool"]
    limits: {rps: 2000, max_value_bytes: 1048576}
`))
	if err != nil {
		t.Fatal(err)
	}
	ns := cfg.GetNamespaces()[0]
	if ns.GetAbstraction() != configv1.Abstraction_KEYVALUE || ns.GetAccessPattern() != configv1.AccessPattern_READ_HEAVY ||
		ns.GetCache().GetTtl().AsDuration().Seconds() != 30 || ns.GetSchema().GetPii()[1].GetClass() != configv1.PiiClass_ADDRESS ||
		ns.GetLimits().GetMaxValueBytes() != 1048576 || ns.GetAccess().GetReaders()[0] != "spiffe://prism.local/support-tool" {
		t.Fatalf("parsed namespace = %v", ns)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "namespaces: [{namespace: a, abstraction: keyvalue, backend: b, colour: red}]", "colour"},
		{"unknown backend", "backends: [{name: b, sqlite: {path: x}}]\nnamespaces: [{namespace: a, abstraction: keyvalue, backend: c}]", `unknown backend "c"`},
		{"bad name", "backends: [{name: B, sqlite: {path: x}}]", "not a DNS label"},
		{"no abstraction", "backends: [{name: b, sqlite: {path: x}}]\nnamespaces: [{namespace: a, backend: b}]", "abstraction is required"},
		{"duplicate namespace", "backends: [{name: b, sqlite: {path: x}}]\nnamespaces: [{namespace: a, abstraction: keyvalue, backend: b}, {namespace: a, abstraction: keyvalue, backend: b}]", "declared twice"},
		{"bad enum", "namespaces: [{namespace: a, abstraction: blob}]", `namespaces[0].abstraction: unknown value "blob" (want one of: graph, keyvalue, timeseries)`},
		{"bad PII class", "namespaces: [{namespace: a, abstraction: keyvalue, schema: {pii: [{path: x, class: mail}]}}]", `namespaces[0].schema.pii[0].class: unknown value "mail"`},
		{"backend without driver", "backends: [{name: b}]", "no driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
