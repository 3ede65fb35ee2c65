package policies

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
)

// withModule returns the default policy with one module replaced or added.
func withModule(name, src string) map[string]string {
	m := Default()
	m[name] = src
	return m
}

// conflictingAuthz is an authz package whose decision has two values for
// any identified caller: it compiles, but evaluation fails at runtime.
const conflictingAuthz = `package prism.authz

kind := "read"
role := "owner"
allow := true

decision := {"allow": true, "role": "owner", "reason": "allowed"} if input.subject != ""
decision := {"allow": false, "role": "none", "reason": "no"} if input.operation == "get"
`

func TestCheckAcceptsTheDefaultPolicy(t *testing.T) {
	c, err := Check(context.Background(), Default())
	if err != nil {
		t.Fatalf("Check(Default()): %v", err)
	}
	if c.Engine == nil || len(c.Tests) < 10 || !strings.HasPrefix(c.Version, "sha256:") {
		t.Fatalf("Check(Default()) = engine %v, %d tests, version %q", c.Engine, len(c.Tests), c.Version)
	}
}

// TestCheckRefusesBrokenPolicies: every way a policy can be broken is
// refused with a reason and the messages an operator needs to fix it.
func TestCheckRefusesBrokenPolicies(t *testing.T) {
	cases := []struct {
		name      string
		modules   map[string]string
		reason    string
		detailHas []string
	}{
		{
			name:      "syntax error",
			modules:   withModule("authz.rego", "package prism.authz\n\nallow if {\n"),
			reason:    "does not parse",
			detailHas: []string{"authz.rego:", "rego_parse_error"},
		},
		{
			name:      "syntax error in a test file",
			modules:   withModule("authz_test.rego", "package prism.authz_test\n\ntest_x if {{\n"),
			reason:    "does not parse",
			detailHas: []string{"authz_test.rego:"},
		},
		{
			name:      "compile error",
			modules:   withModule("extra.rego", "package prism.extra\n\nx := y\n"),
			reason:    "does not compile",
			detailHas: []string{"extra.rego:3", "var y is unsafe"},
		},
		{
			name:      "missing entrypoint",
			modules:   map[string]string{"authz.rego": "package prism.authz\n\ndecision := {\"allow\": true}\n"},
			reason:    "does not compile",
			detailHas: []string{"prism.pii.decision"},
		},
		{
			name:      "failing Rego test",
			modules:   withModule("strict_test.rego", "package prism.strict_test\n\nimport data.prism.authz\n\ntest_readers_write if authz.allow with input as {\"subject\": \"r\", \"operation\": \"put\", \"access\": {\"readers\": [\"r\"]}}\n"),
			reason:    "1 of",
			detailHas: []string{"strict_test.rego:5", "test_readers_write: FAIL"},
		},
		{
			name:      "runtime conflict",
			modules:   map[string]string{"authz.rego": conflictingAuthz, "pii.rego": Default()["pii.rego"]},
			reason:    "fails at runtime",
			detailHas: []string{"eval_conflict_error", "produced conflicting values", `operation get`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(context.Background(), tc.modules)
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("Check = %v, want a *CheckError", err)
			}
			if !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", ce.Reason, tc.reason)
			}
			all := strings.Join(ce.Details, "\n")
			for _, want := range tc.detailHas {
				if !strings.Contains(all, want) {
					t.Errorf("details do not mention %q:\n%s", want, all)
				}
			}
		})
	}
}

func TestProbeFindsNamespaceSpecificConflicts(t *testing.T) {
	src := strings.Replace(conflictingAuthz, `input.operation == "get"`, `input.namespace == "orders"`, 1)
	e, err := Compile(context.Background(), map[string]string{"authz.rego": src, "pii.rego": Default()["pii.rego"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Probe(context.Background(), GenericProbes()); err != nil {
		t.Fatalf("generic probes name no namespace orders, yet: %v", err)
	}
	err = e.Probe(context.Background(), ProbeInputs("orders", nil, Access{Owners: []string{owner}}, []string{OpGet}))
	if err == nil || !strings.Contains(err.Error(), "eval_conflict_error") {
		t.Fatalf("Probe on orders = %v, want a conflict", err)
	}
}

func TestVersionIsAContentHash(t *testing.T) {
	a := Default()
	b := maps.Clone(a)
	if Version(a) != Version(b) {
		t.Fatal("equal modules, different versions")
	}
	b["authz.rego"] += "\n# a comment\n"
	if Version(a) == Version(b) {
		t.Fatal("an edit kept the version")
	}
	// Moving text between files is an edit too.
	x := map[string]string{"a.rego": "ab", "b.rego": "c"}
	y := map[string]string{"a.rego": "a", "b.rego": "bc"}
	if Version(x) == Version(y) {
		t.Fatal("moving text between modules kept the version")
	}
}

// BenchmarkCheck is what the control plane spends on a policy PUT of the
// default policy: parse, compile, 19 Rego tests, the generic probes.
func BenchmarkCheck(b *testing.B) {
	mods := Default()
	for b.Loop() {
		if _, err := Check(context.Background(), mods); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeNamespace is what extproc spends per policy-decided KV
// namespace on every Apply: 4 subjects × 6 operations, no memo.
func BenchmarkProbeNamespace(b *testing.B) {
	e := defaultEngine(b)
	in := ProbeInputs("user-profiles", piiFields, Access{Owners: []string{owner}, Readers: []string{reader}}, []string{OpGet, OpPut, OpDelete, OpScan, OpMultiGet, OpBatch})
	for b.Loop() {
		if err := e.Probe(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
