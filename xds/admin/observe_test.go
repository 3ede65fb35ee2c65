package admin_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/xds/admin"
)

func (e *env) putNamespace(t *testing.T) {
	t.Helper()
	e.mustDo(t, "PUT", "/v1/admin/backends/lite", "sqlite: {path: /data/lite.db}\n")
	e.mustDo(t, "PUT", "/v1/admin/namespaces/people", `
abstraction: keyvalue
backend: lite
schema: {pii: [{path: email, class: email}, {path: ssn, class: ssn}]}
access: {owners: ["spiffe://prism.local/profile-svc"], readers: ["spiffe://prism.local/support"]}
`)
}

func TestAuditEndpoint(t *testing.T) {
	t.Run("without a log it is not configured", func(t *testing.T) {
		e := start(t)
		r := e.do(t, "GET", "/v1/admin/audit?namespace=people", "")
		if code, msg := r.errorOf(t); r.status != http.StatusNotFound || !strings.Contains(msg, "audit log not configured") {
			t.Fatalf("GET audit without a log = %d %s %q, want 404 audit log not configured", r.status, code, msg)
		}
	})

	log, err := audit.OpenFile(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ctx := context.Background()
	for i, ns := range []string{"people", "other", "people", "people"} {
		rec := audit.Record{Subject: "spiffe://prism.local/support", Namespace: ns, Key: "u" + string(rune('0'+i)), Operation: "get",
			Fields: []string{"email"}, Decision: "email=mask", RequestID: "req-" + string(rune('0'+i))}
		if err := log.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	e := startWith(t, admin.Options{Audit: log})

	r := e.mustDo(t, "GET", "/v1/admin/audit?namespace=people&limit=2", "")
	recs := r.body["records"].([]any)
	if len(recs) != 2 {
		t.Fatalf("limit=2 gave %d records: %s", len(recs), r.raw)
	}
	first := recs[0].(map[string]any)
	if first["key"] != "u3" || first["namespace"] != "people" || first["decision"] != "email=mask" || first["subject"] != "spiffe://prism.local/support" {
		t.Errorf("newest record = %v, want key u3 of people with subject and decision", first)
	}
	if _, ok := first["hash"]; ok {
		t.Errorf("record shows chain internals: %v", first)
	}

	for _, q := range []string{"", "?namespace=people&limit=0", "?namespace=people&limit=x", "?namespace=people&limit=100000"} {
		r := e.do(t, "GET", "/v1/admin/audit"+q, "")
		if code, _ := r.errorOf(t); r.status != http.StatusBadRequest || code != admin.CodeInvalidArgument {
			t.Errorf("GET audit%s = %d %s, want 400 INVALID_ARGUMENT", q, r.status, code)
		}
	}
}

func TestTrafficEndpoint(t *testing.T) {
	t.Run("without metrics it says so", func(t *testing.T) {
		e := start(t)
		r := e.do(t, "GET", "/v1/admin/namespaces/people/traffic", "")
		if _, msg := r.errorOf(t); r.status != http.StatusNotFound || !strings.Contains(msg, "not available") {
			t.Fatalf("traffic without metrics = %d %q, want 404 not available", r.status, msg)
		}
	})

	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "prism_requests_total"},
		[]string{"namespace", "abstraction", "operation", "backend", "code"})
	reg.MustRegister(requests)
	requests.WithLabelValues("people", "kv", "put", "lite", "200").Add(7)
	e := startWith(t, admin.Options{Metrics: reg})
	e.putNamespace(t)

	r := e.mustDo(t, "GET", "/v1/admin/namespaces/people/traffic", "")
	totals := r.body["totals"].(map[string]any)
	if totals["requests"].(float64) != 7 || r.body["interval_seconds"].(float64) != 0 || r.body["note"] == nil {
		t.Errorf("first traffic answer = %s, want 7 requests in total and no rate yet", r.raw)
	}
	r = e.do(t, "GET", "/v1/admin/namespaces/nope/traffic", "")
	if code, _ := r.errorOf(t); r.status != http.StatusNotFound || code != admin.CodeNotFound {
		t.Errorf("traffic of an unknown namespace = %d %s, want 404", r.status, code)
	}
}

func TestEvaluatePolicy(t *testing.T) {
	e := start(t)
	e.putNamespace(t)
	cases := []struct {
		name, body string
		allow      bool
		role       string
		email      string
	}{
		{"owner reads plain", `{"input": {"subject": "spiffe://prism.local/profile-svc", "namespace": "people", "operation": "get"}}`, true, "owner", "plain"},
		{"reader reads masked", `{"input": {"subject": "spiffe://prism.local/support", "namespace": "people", "operation": "get"}}`, true, "reader", "mask"},
		{"reader may not write", `{"input": {"subject": "spiffe://prism.local/support", "namespace": "people", "operation": "put"}}`, false, "reader", ""},
		{"stranger is refused", `{"input": {"subject": "spiffe://prism.local/other", "namespace": "people", "operation": "get"}}`, false, "none", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.mustDo(t, "POST", "/v1/admin/policies/default/evaluate", c.body)
			res := r.body["result"].(map[string]any)
			if res["allow"] != c.allow || res["role"] != c.role {
				t.Fatalf("result = %v, want allow %v role %s", res, c.allow, c.role)
			}
			fields := res["fields"].(map[string]any)
			if c.email != "" && fields["email"] != c.email {
				t.Errorf("email action = %v, want %s (fields from the namespace schema)", fields["email"], c.email)
			}
		})
	}

	bad := []struct{ path, body string }{
		{"/v1/admin/policies/default/evaluate", `{"input": {"subjekt": "x"}}`},
		{"/v1/admin/policies/default/evaluate", `{}`},
		{"/v1/admin/policies/default/evaluate", `not json`},
		{"/v1/admin/policies/default/evaluate", `{"input": {}} {}`},
	}
	for _, b := range bad {
		r := e.do(t, "POST", b.path, b.body)
		if code, _ := r.errorOf(t); r.status != http.StatusBadRequest || code != admin.CodeInvalidArgument {
			t.Errorf("POST %s %s = %d %s, want 400 INVALID_ARGUMENT", b.path, b.body, r.status, code)
		}
	}
	r := e.do(t, "POST", "/v1/admin/policies/missing/evaluate", `{"input": {}}`)
	if code, _ := r.errorOf(t); r.status != http.StatusNotFound {
		t.Errorf("evaluate an unknown policy = %d %s, want 404", r.status, code)
	}
	r = e.do(t, "GET", "/v1/admin/policies/default/evaluate", "")
	if r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET evaluate = %d, want 405", r.status)
	}
}

func TestUIIsServedWithoutTheToken(t *testing.T) {
	e := start(t)
	for path, ctype := range map[string]string{"/ui/": "text/html", "/ui/app.js": "javascript", "/ui/style.css": "text/css", "/ui/pages/migrations.js": "javascript"} {
		resp, err := http.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s = %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q does not restrict scripts to the UI's own", path, csp)
		}
	}
	resp, err := http.Get(e.base + "/ui/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js = %d, want 404", resp.StatusCode)
	}
	// The API itself still needs the token.
	resp, err = http.Get(e.base + "/v1/admin/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/admin/namespaces without a token = %d, want 401", resp.StatusCode)
	}
}
