package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/policies"
)

func TestPolicyTestRunsTheRegoTests(t *testing.T) {
	var out strings.Builder
	if err := runPolicy(context.Background(), []string{"test", "-"}, &out, io.Discard); err != nil {
		t.Fatalf("built-in policy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "tests passed") {
		t.Fatalf("output %q does not report passing tests", out.String())
	}

	// A copy of the defaults with one test made to fail must fail.
	dir := t.TempDir()
	for name, src := range policies.Default() {
		if strings.HasSuffix(name, "_test.rego") {
			src += "\ntest_made_to_fail if { false }\n"
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	err := runPolicy(context.Background(), []string{"test", dir}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("policy with a failing test: err %v, output %q", err, out.String())
	}
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"spiffe://a", "spiffe://b"} {
		if err := log.Append(context.Background(), audit.Record{Time: time.Now(), Subject: subj, Namespace: "ns", Key: "k", Fields: []string{"email"}, Decision: "mask"}); err != nil {
			t.Fatal(err)
		}
	}
	log.Close()
	var out strings.Builder
	if err := runAudit(context.Background(), []string{"verify", path}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "2 records") {
		t.Fatalf("verify of an intact log: %v %q", err, out.String())
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), "spiffe://a", "spiffe://x", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runAudit(context.Background(), []string{"verify", path}, io.Discard, io.Discard); err == nil {
		t.Fatal("verify accepted an edited record")
	}
}
