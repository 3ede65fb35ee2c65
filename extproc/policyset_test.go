package extproc

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/prism-gw/prism/backends/kv/sqlite" // namespace orders is on SQLite
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

const (
	testOwner  = "spiffe://prism.local/profile-svc"
	testReader = "spiffe://prism.local/support-tool"
)

// readersDenied is the default policy edited so that readers may not read:
// only owners get in.
func readersDenied() map[string]string {
	d := policies.Default()
	return map[string]string{
		"authz.rego": strings.Replace(d["authz.rego"], `role in {"reader", "open"}`, `role == "open"`, 1),
		"pii.rego":   d["pii.rego"],
	}
}

// policyServer is a Server with one SQLite backend and namespace orders,
// whose access lists make the policy decide its requests.
func policyServer(t *testing.T) (*Server, func(policy string, pols ...*configv1.Policy) error) {
	t.Helper()
	s := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { s.Close() })
	backend := &configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: filepath.Join(t.TempDir(), "kv.db")}}}
	apply := func(policy string, pols ...*configv1.Policy) error {
		return s.Apply(context.Background(), &configv1.DevConfig{
			Backends: []*configv1.Backend{backend},
			Namespaces: []*configv1.Namespace{{
				Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "lite", Policy: policy,
				Access: &configv1.Access{Owners: []string{testOwner}, Readers: []string{testReader}},
			}},
			Policies: pols,
		})
	}
	return s, apply
}

// readerMayGet asks the policy in force of namespace orders whether the
// reader may get a key.
func readerMayGet(t *testing.T, s *Server) (*policies.Engine, bool) {
	t.Helper()
	ns := s.state.Load().namespaces["orders"]
	if ns == nil || ns.policy == nil {
		t.Fatal("namespace orders is not in force with a policy")
	}
	d, err := ns.policy.Decide(context.Background(), policies.Input{
		Subject: testReader, Namespace: "orders", Operation: policies.OpGet, Fields: []policies.Field{}, Access: ns.access,
	})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return ns.policy, d.Allow
}

func TestPushedDefaultPolicyReplacesTheBuiltIn(t *testing.T) {
	s, apply := policyServer(t)
	if err := apply(""); err != nil {
		t.Fatal(err)
	}
	builtin, allowed := readerMayGet(t, s)
	if !allowed {
		t.Fatal("the built-in policy denies a reader's get")
	}
	strict := &configv1.Policy{Name: "default", Version: "v1", Modules: readersDenied()}
	if err := apply("", strict); err != nil {
		t.Fatalf("Apply with a pushed default policy: %v", err)
	}
	pushed, allowed := readerMayGet(t, s)
	if allowed || pushed == builtin {
		t.Fatalf("after pushing a default policy that denies readers: allowed=%v, same engine as built-in=%v", allowed, pushed == builtin)
	}
	// An unchanged policy is never recompiled, whatever else changes.
	if err := apply("default", strict); err != nil {
		t.Fatal(err)
	}
	if again, _ := readerMayGet(t, s); again != pushed {
		t.Fatal("re-applying an unchanged policy compiled it again")
	}
	// Removing the pushed default brings the built-in back.
	if err := apply(""); err != nil {
		t.Fatal(err)
	}
	if _, allowed := readerMayGet(t, s); !allowed {
		t.Fatal("without a pushed default, the built-in policy should answer again")
	}
}

func TestNamedPolicyDecidesItsNamespace(t *testing.T) {
	s, apply := policyServer(t)
	if err := apply("strict", &configv1.Policy{Name: "strict", Modules: readersDenied()}); err != nil {
		t.Fatal(err)
	}
	if _, allowed := readerMayGet(t, s); allowed {
		t.Fatal("namespace orders names policy strict, yet a reader may get")
	}
	err := apply("missing", &configv1.Policy{Name: "strict", Modules: readersDenied()})
	if err == nil || !strings.Contains(err.Error(), `policy "missing" does not exist`) {
		t.Fatalf("Apply with a namespace naming an unknown policy = %v", err)
	}
}

// TestBrokenPolicyIsRefusedAndTheOldOneKeepsAnswering: Apply refuses a
// policy it cannot compile or that fails on the namespace's probe inputs,
// and the policy in force keeps deciding.
func TestBrokenPolicyIsRefusedAndTheOldOneKeepsAnswering(t *testing.T) {
	d := policies.Default()
	conflict := `package prism.authz

decision := {"allow": true, "role": "owner", "reason": "allowed"} if input.namespace == "orders"
decision := {"allow": false, "role": "none", "reason": "no"} if input.subject != ""
`
	cases := []struct {
		name    string
		modules map[string]string
		want    string
	}{
		{"syntax error", map[string]string{"authz.rego": "package prism.authz\n\nallow if {\n", "pii.rego": d["pii.rego"]}, "rego_parse_error"},
		{"missing entrypoint", map[string]string{"pii.rego": d["pii.rego"]}, "prism.authz.decision"},
		{"conflict on this namespace only", map[string]string{"authz.rego": conflict, "pii.rego": d["pii.rego"]}, "eval_conflict_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, apply := policyServer(t)
			good := &configv1.Policy{Name: "default", Modules: readersDenied()}
			if err := apply("", good); err != nil {
				t.Fatal(err)
			}
			before, _ := readerMayGet(t, s)
			err := apply("", &configv1.Policy{Name: "default", Modules: tc.modules})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply with a broken policy = %v, want an error mentioning %q", err, tc.want)
			}
			after, allowed := readerMayGet(t, s)
			if after != before || allowed {
				t.Fatalf("after the refused policy: same engine=%v, reader allowed=%v; want the old policy answering", after == before, allowed)
			}
			// The refused policy did not replace the one in force in the
			// cache either: the good one applies again without a compile.
			if err := apply("", good); err != nil {
				t.Fatal(err)
			}
			if again, _ := readerMayGet(t, s); again != before {
				t.Fatal("the good policy was compiled again after a refused one")
			}
		})
	}
}
