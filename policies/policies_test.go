package policies

import (
	"context"
	"maps"
	"reflect"
	"strings"
	"testing"
)

const (
	owner    = "spiffe://prism.local/profile-svc"
	reader   = "spiffe://prism.local/support-tool"
	stranger = "spiffe://prism.local/someone-else"
)

var piiFields = []Field{
	{Path: "email", Class: "email"},
	{Path: "address.street", Class: "address"},
	{Path: "ssn", Class: "ssn"},
}

func input(subject, op string) Input {
	return Input{
		Subject:   subject,
		Namespace: "user-profiles",
		Operation: op,
		Key:       "u-1",
		Fields:    piiFields,
		RequestID: "r-1",
		Access:    Access{Owners: []string{owner}, Readers: []string{reader}, RequireIdentity: true},
	}
}

func defaultEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := Compile(context.Background(), Default())
	if err != nil {
		t.Fatalf("Compile(Default()): %v", err)
	}
	return e
}

// TestRegoUnitTests runs the *_test.rego files of the default policy through
// OPA's tester, so `make test` runs them.
func TestRegoUnitTests(t *testing.T) {
	results, err := RunTests(context.Background(), Default())
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	if len(results) < 10 {
		t.Fatalf("RunTests ran %d Rego tests, want the default policy's tests (>= 10)", len(results))
	}
	for _, r := range results {
		if r.Failed() {
			t.Errorf("Rego test failed: %s", r)
		}
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	mods := map[string]string{
		"x_test.rego": "package x_test\n\ntest_ok if true\n\ntest_bad if 1 == 2\n\ntest_err if to_number(\"nope\") == 1\n",
	}
	results, err := RunTests(context.Background(), mods)
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	got := map[string]bool{}
	for _, r := range results {
		got[r.Name] = r.Failed()
	}
	want := map[string]bool{"test_ok": false, "test_bad": true, "test_err": true}
	if !maps.Equal(got, want) {
		t.Fatalf("failed per test = %v, want %v", got, want)
	}
}

func TestDefaultDecisions(t *testing.T) {
	e := defaultEngine(t)
	all := func(a Action) map[string]Action {
		m := map[string]Action{}
		for _, f := range piiFields {
			m[f.Path] = a
		}
		return m
	}
	tests := []struct {
		name    string
		in      Input
		allow   bool
		role    string
		actions map[string]Action
	}{
		{"owner reads plaintext", input(owner, OpGet), true, "owner", all(Plain)},
		{"owner writes", input(owner, OpPut), true, "owner", all(Plain)},
		{"owner traverses", input(owner, OpTraverse), true, "owner", all(Plain)},
		{"reader reads masked", input(reader, OpScan), true, "reader", all(Mask)},
		{"reader tails masked", input(reader, OpTail), true, "reader", all(Mask)},
		{"reader may not write", input(reader, OpPut), false, "reader", all(Deny)},
		{"reader may not delete", input(reader, OpDeleteNode), false, "reader", all(Deny)},
		{"stranger denied", input(stranger, OpGet), false, "none", all(Deny)},
		{"no identity denied", input("", OpGet), false, "none", all(Deny)},
		{"unknown operation denied", input(owner, "truncate"), false, "owner", all(Deny)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(context.Background(), tt.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Allow != tt.allow || d.Role != tt.role || !maps.Equal(d.Fields, tt.actions) {
				t.Errorf("Decide = allow %v role %q fields %v, want allow %v role %q fields %v (reason %q)",
					d.Allow, d.Role, d.Fields, tt.allow, tt.role, tt.actions, d.Reason)
			}
			if !d.Audit {
				t.Errorf("Decide: Audit = false, want every access to PII fields audited")
			}
			if d.Reason == "" {
				t.Errorf("Decide: empty Reason")
			}
		})
	}
}

func TestDefaultNoPIINoAudit(t *testing.T) {
	in := input(owner, OpGet)
	in.Fields = nil
	d, err := defaultEngine(t).Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if !d.Allow || d.Audit || len(d.Fields) != 0 {
		t.Fatalf("Decide without PII fields = %+v, want allowed, not audited, no fields", d)
	}
}

// TestDefaultClassifiesEveryOperation keeps the Go operation names and the
// policy's operation sets in step: an operation the policy does not know is
// denied even to owners.
func TestDefaultClassifiesEveryOperation(t *testing.T) {
	e := defaultEngine(t)
	for _, op := range Operations {
		d, err := e.Decide(context.Background(), input(owner, op))
		if err != nil {
			t.Fatalf("Decide(%s): %v", op, err)
		}
		if !d.Allow {
			t.Errorf("owner %s: denied (%s), want the default policy to know the operation", op, d.Reason)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	defaults := Default()
	with := func(name, src string) map[string]string {
		m := maps.Clone(defaults)
		m[name] = src
		return m
	}
	tests := []struct {
		name    string
		modules map[string]string
		want    []string
	}{
		{"no modules", nil, []string{"no Rego modules"}},
		{"syntax error", with("broken.rego", "package prism.extra\n\nallow if {\n"), []string{"broken.rego:", "parse"}},
		{"two syntax errors in two files", with("b1.rego", "package a b"), []string{"b1.rego:"}},
		{"unsafe variable", with("unsafe.rego", "package prism.extra\n\nx if y == 1\n"), []string{"unsafe.rego:3", "var y is unsafe"}},
		{"undefined function", with("fn.rego", "package prism.extra\n\nx if nope(1)\n"), []string{"fn.rego:3", "undefined function nope"}},
		{"missing decision", map[string]string{"authz.rego": defaults["authz.rego"]}, []string{"no rule prism.pii.decision"}},
		{"rego v0 syntax", with("old.rego", "package prism.extra\n\nx { true }\n"), []string{"old.rego:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(context.Background(), tt.modules)
			if err == nil {
				t.Fatalf("Compile succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Compile error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileLeavesTestsOut(t *testing.T) {
	m := Default()
	m["broken_test.rego"] = "package prism.authz_test\n\ntest_x if nope()\n"
	if _, err := Compile(context.Background(), m); err != nil {
		t.Fatalf("Compile with a broken test file: %v, want tests left out", err)
	}
	if _, err := RunTests(context.Background(), m); err == nil || !strings.Contains(err.Error(), "undefined function nope") {
		t.Fatalf("RunTests with a broken test file: err = %v, want the compile error", err)
	}
}

func TestDecideFailsClosed(t *testing.T) {
	authz := Default()["authz.rego"]
	tests := []struct {
		name string
		pii  string
		want string
	}{
		{"undefined decision", "package prism.pii\n\ndecision := {\"fields\": {}} if input.nope\n", "undefined"},
		{"bad action", "package prism.pii\n\ndecision := {\"fields\": {\"email\": \"show\"}, \"audit\": true}\n", `fields["email"] is show`},
		{"audit not boolean", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": \"yes\"}\n", "audit is string"},
		{"conflict at runtime", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": true} if input.subject != \"\"\n\ndecision := {\"fields\": {}, \"audit\": false} if input.namespace != \"\"\n", "conflicting values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(context.Background(), map[string]string{"authz.rego": authz, "pii.rego": tt.pii})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			d, err := e.Decide(context.Background(), input(owner, OpGet))
			if err == nil {
				t.Fatalf("Decide = %+v, want an error", d)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decide error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestFieldMissingFromPolicyIsDenied(t *testing.T) {
	pii := "package prism.pii\n\ndecision := {\"fields\": {\"email\": \"plain\"}, \"audit\": false}\n"
	e, err := Compile(context.Background(), map[string]string{"authz.rego": Default()["authz.rego"], "pii.rego": pii})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	d, err := e.Decide(context.Background(), input(owner, OpGet))
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	want := map[string]Action{"email": Plain, "address.street": Deny, "ssn": Deny}
	if d.Allow || !reflect.DeepEqual(d.Fields, want) || !strings.Contains(d.Reason, "address.street") {
		t.Fatalf("Decide = %+v, want denied with fields %v", d, want)
	}
}

func TestPurposeAndKeyReachThePolicy(t *testing.T) {
	// Owners acting for analytics see masked values; only key u-1 is audited.
	pii := `package prism.pii

act := "mask" if input.purpose == "analytics"
else := "plain"

decision := {"fields": {f.path: act | some f in input.fields}, "audit": input.key == "u-1"}
`
	e, err := Compile(context.Background(), map[string]string{"authz.rego": Default()["authz.rego"], "pii.rego": pii})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	in := input(owner, OpGet)
	in.Purpose = "analytics"
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if d.Fields["email"] != Mask || !d.Audit {
		t.Fatalf("purpose analytics, key u-1: email %q audit %v, want mask and audited", d.Fields["email"], d.Audit)
	}
	in.Purpose, in.Key = "", "u-2"
	if d, err = e.Decide(context.Background(), in); err != nil || d.Fields["email"] != Plain || d.Audit {
		t.Fatalf("no purpose, key u-2: email %q audit %v err %v, want plain, not audited", d.Fields["email"], d.Audit, err)
	}
}

func TestLoadDirMatchesDefault(t *testing.T) {
	m, err := LoadDir(".")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if !maps.Equal(m, Default()) {
		t.Fatalf("LoadDir(.) has files %v, Default() %v", keys(m), keys(Default()))
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// BenchmarkDecide measures Decide with the default policy for a value with
// three PII fields: "memoized" is the steady state of the hot path,
// "evaluate" a full Rego evaluation (the first request of a subject,
// namespace and operation). Neither parses or compiles.
func BenchmarkDecide(b *testing.B) {
	e := defaultEngine(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		in   Input
	}{
		{"owner", input(owner, OpGet)},
		{"reader", input(reader, OpGet)},
		{"stranger", input(stranger, OpGet)},
	} {
		b.Run("memoized/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(ctx, bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("evaluate/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.eval(ctx, &bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideParallel checks that one Engine serves concurrent requests.
func BenchmarkDecideParallel(b *testing.B) {
	e := defaultEngine(b)
	in := input(reader, OpGet)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Decide(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
