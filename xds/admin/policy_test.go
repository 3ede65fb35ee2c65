package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prism-gw/prism/policies"
	"github.com/prism-gw/prism/xds/admin"
)

// policyBody is the JSON body of a policy PUT.
func policyBody(t *testing.T, modules map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"modules": modules})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withModule(name, src string) map[string]string {
	m := policies.Default()
	m[name] = src
	return m
}

// policyVersion is the version of the stored policy, "" when absent.
func policyVersion(t *testing.T, e *env, name string) string {
	t.Helper()
	r := e.do(t, "GET", "/v1/admin/policies/"+name, "")
	if r.status == http.StatusNotFound {
		return ""
	}
	p, _ := r.body["policy"].(map[string]any)
	v, _ := p["version"].(string)
	return v
}

func TestPutPolicyCompilesTestsAndVersions(t *testing.T) {
	e := startPolicies(t)
	r := e.do(t, "PUT", "/v1/admin/policies/default", policyBody(t, policies.Default()))
	if r.status != http.StatusOK {
		t.Fatalf("PUT the default policy = %d %s", r.status, r.raw)
	}
	p := r.body["policy"].(map[string]any)
	want := policies.Version(policies.Default())
	if p["version"] != want {
		t.Errorf("version %v, want the content hash %s", p["version"], want)
	}
	if tests, _ := r.body["tests"].(map[string]any); tests["passed"].(float64) < 10 {
		t.Errorf("tests = %v, want the default policy's Rego tests run", r.body["tests"])
	}
	if plan, _ := r.body["plan"].(string); !strings.Contains(plan, "policy default: create (version "+want+")") {
		t.Errorf("plan = %q", plan)
	}
	stateVersion := r.body["status"].(map[string]any)["state_version"]

	// The same modules again: same version, nothing changes.
	body := policyBody(t, policies.Default())
	r = e.do(t, "PUT", "/v1/admin/policies/default", strings.Replace(body, `{"modules"`, `{"version":"mine","modules"`, 1))
	if r.status != http.StatusOK || r.body["status"].(map[string]any)["changed"] != false || r.body["status"].(map[string]any)["state_version"] != stateVersion {
		t.Fatalf("re-PUT of the same policy = %d %s, want unchanged", r.status, r.raw)
	}
	if got := policyVersion(t, e, "default"); got != want {
		t.Fatalf("a version in the body replaced the content hash: %q", got)
	}
}

// TestPutPolicyRefusesBrokenRego: a syntax error, a failing Rego test, a
// compile error, a missing entrypoint and a runtime conflict are each refused
// with 400 and the messages, and the policy in force stays.
func TestPutPolicyRefusesBrokenRego(t *testing.T) {
	e := startPolicies(t)
	if r := e.do(t, "PUT", "/v1/admin/policies/default", policyBody(t, policies.Default())); r.status != http.StatusOK {
		t.Fatalf("PUT = %d %s", r.status, r.raw)
	}
	good := policyVersion(t, e, "default")
	conflict := `package prism.authz

decision := {"allow": true, "role": "owner", "reason": "allowed"} if input.subject != ""
decision := {"allow": false, "role": "none", "reason": "no"} if input.operation == "get"
`
	cases := []struct {
		name    string
		modules map[string]string
		message string
		details []string
	}{
		{"syntax error", withModule("authz.rego", "package prism.authz\n\nallow if {\n"),
			"does not parse", []string{"authz.rego:", "rego_parse_error"}},
		{"failing Rego test", withModule("strict_test.rego", "package prism.strict_test\n\nimport data.prism.authz\n\ntest_nobody_reads if not authz.allow with input as {\"subject\": \"o\", \"operation\": \"get\", \"access\": {\"owners\": [\"o\"]}}\n"),
			"1 of", []string{"strict_test.rego:5", "test_nobody_reads: FAIL"}},
		{"compile error", withModule("extra.rego", "package prism.extra\n\nx := y\n"),
			"does not compile", []string{"extra.rego:3", "var y is unsafe"}},
		{"missing entrypoint", map[string]string{"authz.rego": policies.Default()["authz.rego"]},
			"does not compile", []string{"prism.pii.decision"}},
		{"runtime conflict", map[string]string{"authz.rego": conflict, "pii.rego": policies.Default()["pii.rego"]},
			"fails at runtime", []string{"eval_conflict_error"}},
		{"module name", map[string]string{"authz.txt": "package prism.authz\n"},
			"must be a plain file name ending in .rego", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "PUT", "/v1/admin/policies/default", policyBody(t, tc.modules))
			code, msg := r.errorOf(t)
			if r.status != http.StatusBadRequest || code != admin.CodeInvalidArgument || !strings.Contains(msg, tc.message) {
				t.Fatalf("PUT = %d %s %q, want 400 INVALID_ARGUMENT mentioning %q", r.status, code, msg, tc.message)
			}
			raw, _ := json.Marshal(r.body["error"].(map[string]any)["details"])
			for _, want := range tc.details {
				if !strings.Contains(string(raw), want) {
					t.Errorf("details %s do not mention %q", raw, want)
				}
			}
			if got := policyVersion(t, e, "default"); got != good {
				t.Fatalf("after a refused PUT the stored version is %q, want %q", got, good)
			}
		})
	}
}

// TestNamespacePolicyReferences: a namespace names an existing policy or
// "default"; a policy in use cannot be deleted.
func TestNamespacePolicyReferences(t *testing.T) {
	e := startPolicies(t)
	if r := e.do(t, "PUT", "/v1/admin/backends/lite", "sqlite: {path: /tmp/x.db}\n"); r.status != http.StatusOK {
		t.Fatalf("PUT backend = %d %s", r.status, r.raw)
	}
	r := e.do(t, "PUT", "/v1/admin/namespaces/orders", "abstraction: keyvalue\nbackend: lite\npolicy: strict\n")
	if code, msg := r.errorOf(t); r.status != http.StatusBadRequest || !strings.Contains(msg, `unknown policy "strict"`) {
		t.Fatalf("namespace naming a missing policy = %d %s %s", r.status, code, msg)
	}
	if r := e.do(t, "PUT", "/v1/admin/namespaces/orders", "abstraction: keyvalue\nbackend: lite\npolicy: default\n"); r.status != http.StatusOK {
		t.Fatalf("namespace naming the built-in default = %d %s", r.status, r.raw)
	}
	if r := e.do(t, "PUT", "/v1/admin/policies/strict", policyBody(t, policies.Default())); r.status != http.StatusOK {
		t.Fatalf("PUT policy = %d %s", r.status, r.raw)
	}
	if r := e.do(t, "PUT", "/v1/admin/namespaces/orders", "abstraction: keyvalue\nbackend: lite\npolicy: strict\n"); r.status != http.StatusOK {
		t.Fatalf("namespace naming policy strict = %d %s", r.status, r.raw)
	}
	r = e.do(t, "GET", "/v1/admin/policies/strict", "")
	if users, _ := json.Marshal(r.body["used_by"]); string(users) != `["namespace orders"]` {
		t.Errorf("used_by = %s", users)
	}
	r = e.do(t, "DELETE", "/v1/admin/policies/strict", "")
	if code, msg := r.errorOf(t); r.status != http.StatusConflict || code != admin.CodeFailedPrecondition || !strings.Contains(msg, "namespace orders") {
		t.Fatalf("DELETE a policy in use = %d %s %s, want 409 naming the namespace", r.status, code, msg)
	}
	if r := e.do(t, "PUT", "/v1/admin/namespaces/orders", "abstraction: keyvalue\nbackend: lite\n"); r.status != http.StatusOK {
		t.Fatalf("namespace back to the default = %d %s", r.status, r.raw)
	}
	if r := e.do(t, "DELETE", "/v1/admin/policies/strict", ""); r.status != http.StatusOK {
		t.Fatalf("DELETE an unused policy = %d %s", r.status, r.raw)
	}
	r = e.do(t, "GET", "/v1/admin/policies", "")
	if list, _ := r.body["policies"].([]any); r.status != http.StatusOK || len(list) != 0 {
		t.Fatalf("GET policies = %d %s, want an empty list", r.status, r.raw)
	}
}
