package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/model"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// stubResolver stands in for DNS: translation must not do I/O.
func stubResolver(host string) []netip.Addr {
	switch host {
	case "extproc-green":
		return []netip.Addr{netip.MustParseAddr("10.0.2.1")}
	case "extproc-blue":
		return []netip.Addr{netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.1")}
	}
	return nil
}

// state parses a desired state: a prism.yaml document, then documents
// "kind:\n<message>" for pools, policies and migrations.
func state(t *testing.T, yaml string) *desired.State {
	t.Helper()
	st := desired.New()
	st.Version = 7
	parts := strings.Split(yaml, "---\n")
	cfg, err := config.Parse([]byte(parts[0]))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for _, b := range cfg.GetBackends() {
		st.Put(b)
	}
	for _, n := range cfg.GetNamespaces() {
		st.Put(n)
	}
	for _, extra := range parts[1:] {
		kind, body, _ := strings.Cut(extra, ":\n")
		m, err := desired.NewMessage(desired.Kind(strings.TrimSpace(kind)))
		if err != nil {
			t.Fatal(err)
		}
		if err := config.ParseMessage([]byte(body), m); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		st.Put(m)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("test state is invalid: %v", err)
	}
	return st
}

var cases = []struct{ name, yaml string }{
	{"empty", "backends: []"},
	{"example", `
backends:
  - {name: pg-main, postgres: {dsn: "postgres://prism@postgres/prism"}}
  - {name: lite, sqlite: {path: /var/lib/prism/prism.db}}
  - {name: stream, nats: {url: "nats://nats:4222"}}
namespaces:
  - namespace: user-profiles
    abstraction: keyvalue
    backend: pg-main
    access_pattern: read_heavy
    estimated_read_rps: 5000
    estimated_write_rps: 500
    cache: {ttl: 30s}
    schema:
      pii:
        - {path: email, class: email}
        - {path: address.street, class: address}
    access:
      owners:  ["spiffe://prism.local/profile-svc"]
      readers: ["spiffe://prism.local/support-tool", "spiffe://prism.local/profile-svc"]
    limits: {rps: 2000, max_value_bytes: 1048576}
  - namespace: sensor-events
    abstraction: timeseries
    backend: stream
    limits: {request_timeout: 10s}
  - namespace: social
    abstraction: graph
    backend: lite
    access:
      readers: ["spiffe://prism.local/feed"]
---
pool:
  {name: blue, endpoints: ["extproc-blue:9001", "10.0.1.9:9001"], weight: 90}
---
pool:
  {name: green, endpoints: ["extproc-green:9001"], weight: 10}
---
pool:
  {name: old, endpoints: ["10.0.9.9:9001"], weight: 0}
---
policy:
  {name: pii, modules: {"pii.rego": "package prism.pii\n"}}
---
migration:
  {namespace: social, from: lite, to: pg-main, phase: shadow_write, read_percent: 10}
`},
}

func TestGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.Build(state(t, tc.yaml), model.Options{}, stubResolver)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			r, err := Translate(m)
			if err != nil {
				t.Fatalf("Translate: %v", err)
			}
			got := render(t, r)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./xds/translate -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("resources differ from %s (run with -update and review the diff):\n%s", path, firstDiff(got, want))
			}
		})
	}
}

// TestResourcesRoundTrip checks every resource the control plane serves:
// PGV's ValidateAll (also done by Translate) and a protojson round trip that
// must give back an equal message, Any payloads included.
func TestResourcesRoundTrip(t *testing.T) {
	for _, tc := range cases {
		m, err := model.Build(state(t, tc.yaml), model.Options{}, stubResolver)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Translate(m)
		if err != nil {
			t.Fatal(err)
		}
		check := func(where string, res types.Resource, validate bool) {
			if v, ok := res.(validator); validate && !ok {
				t.Errorf("%s: %T cannot be validated", where, res)
			} else if validate {
				if err := v.ValidateAll(); err != nil {
					t.Errorf("%s: ValidateAll: %v", where, err)
				}
			}
			js, err := protojson.Marshal(res)
			if err != nil {
				t.Errorf("%s: protojson: %v", where, err)
				return
			}
			back := res.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(js, back); err != nil {
				t.Errorf("%s: protojson round trip: %v", where, err)
				return
			}
			// Any payloads are compared expanded: their bytes may order map
			// entries differently after a round trip.
			if a, b := normal(t, res), normal(t, back); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: protojson round trip changed the resource:\n%s\n%s", where, js, protojson.Format(back))
			}
		}
		for typeURL, list := range r.Envoy {
			for _, res := range list {
				check(tc.name+" envoy "+typeURL, res, true)
			}
		}
		for typeURL, list := range r.GRPC {
			for _, res := range list {
				check(tc.name+" grpc "+typeURL, res, true)
			}
		}
		for typeURL, byName := range r.Prism {
			for name, res := range byName {
				// Prism resources are checked by desired.State.Validate.
				check(tc.name+" prism "+typeURL+" "+name, res, false)
			}
		}
	}
}

func TestTranslateRefusesInvalidResources(t *testing.T) {
	m, err := model.Build(desired.New(), model.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A namespace prefix ending in '/' is not a valid path_separated_prefix.
	m.Namespaces = append(m.Namespaces, model.Namespace{Name: "x", Abstraction: "keyvalue", Prefix: "/v1/kv/x/"})
	if _, err := Translate(m); err == nil || !strings.Contains(err.Error(), "PathSeparatedPrefix") {
		t.Fatalf("Translate of a route with prefix /v1/kv/x/ = %v, want a validation error naming PathSeparatedPrefix", err)
	}
}

// render is the golden form: protojson (Any payloads expanded) re-encoded by
// encoding/json, which sorts keys and fixes the whitespace that protojson
// deliberately varies.
func render(t *testing.T, r *Resources) []byte {
	t.Helper()
	doc := map[string]any{"version": r.Version}
	set := func(list []types.Resource) []any {
		var out []any
		for _, res := range list {
			out = append(out, normal(t, res))
		}
		return out
	}
	envoy, grpc, prism := map[string]any{}, map[string]any{}, map[string]any{}
	for typeURL, list := range r.Envoy {
		envoy[typeURL] = set(list)
	}
	for typeURL, list := range r.GRPC {
		grpc[typeURL] = set(list)
	}
	for typeURL, byName := range r.Prism {
		m := map[string]any{}
		for name, res := range byName {
			m[name] = normal(t, res)
		}
		prism[typeURL] = m
	}
	doc["envoy"], doc["grpc"], doc["prism"] = envoy, grpc, prism
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func normal(t *testing.T, m proto.Message) any {
	t.Helper()
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatalf("protojson: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return "(equal lines, different bytes)"
}
