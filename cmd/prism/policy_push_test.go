package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/prism-gw/prism/envoy/certs"
	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/policies"
	"github.com/prism-gw/prism/xds/resource"
)

const (
	pushOwner  = "profile-svc"
	pushReader = "support-tool"
)

// mtlsClient is a data API client with a client certificate, through a dev
// edge that terminates mutual TLS in front of the stack's extproc and sends
// the certificate's URI SAN as Envoy does.
type mtlsClient struct {
	t    *testing.T
	base string
	http *http.Client
}

// mtlsEdge starts a TLS dev edge in front of the stack's extproc and returns
// a client per identity name.
func (s *xdsStack) mtlsEdge(names ...string) map[string]*mtlsClient {
	s.t.Helper()
	ca, err := certs.NewCA("", 0)
	if err != nil {
		s.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	issue := func(r certs.Request) tls.Certificate {
		is, err := ca.Issue(r)
		if err != nil {
			s.t.Fatal(err)
		}
		c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
		if err != nil {
			s.t.Fatal(err)
		}
		return c
	}
	conn, err := dialExtproc(s.grpcAddr)
	if err != nil {
		s.t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	edge := httptest.NewUnstartedServer(devedge.New(extprocv3.NewExternalProcessorClient(conn), devedge.Options{Logger: quiet}))
	edge.TLS = &tls.Config{
		Certificates: []tls.Certificate{issue(certs.Request{Name: "edge", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: certs.ServerAuth})},
		ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}
	edge.StartTLS()
	s.t.Cleanup(func() {
		edge.Close()
		conn.Close()
	})
	clients := map[string]*mtlsClient{}
	for _, name := range names {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{issue(certs.Request{Name: name, Usage: certs.ClientAuth})}}}
		s.t.Cleanup(tr.CloseIdleConnections)
		clients[name] = &mtlsClient{t: s.t, base: edge.URL, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	}
	return clients
}

func (c *mtlsClient) kv(method, path, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+"/v1/kv/"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *mtlsClient) must(method, path, body string, want int) string {
	c.t.Helper()
	code, got := c.kv(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, code, got, want)
	}
	return got
}

// writePolicyDir writes modules as a policy directory.
func writePolicyDir(t *testing.T, modules map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range modules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// push runs `prism policy push DIR` against the stack's control plane.
func (s *xdsStack) push(dir string) (string, error) {
	var out bytes.Buffer
	err := runPolicy(context.Background(), []string{"push", dir, "--admin", s.admin, "--wait", "20s"}, &out, io.Discard)
	return out.String(), err
}

// TestPolicyPushIsEnforcedAndBrokenPoliciesAreRefused is the policy
// distribution path end to end: `prism policy push` through the admin API,
// the control plane's compile and Rego tests, ADS, extproc's Apply, and mTLS
// requests through a dev edge. A push that denies readers turns a reader's
// masked 200 into 403 (the push-to-enforcement time is logged); a push
// with a syntax error is refused by the control plane; one that conflicts
// at runtime only on this deployment's namespace passes the control plane
// but is NACKed by extproc; in both cases the policy in force keeps
// answering.
func TestPolicyPushIsEnforcedAndBrokenPoliciesAreRefused(t *testing.T) {
	s := newXDSStack(t)
	s.startControlPlane()
	s.put("backends", "lite", "sqlite: {path: "+filepath.Join(s.dir, "data", "lite.db")+"}\n")
	s.put("namespaces", "profiles", `abstraction: keyvalue
backend: lite
schema: {pii: [{path: email, class: email}]}
access: {owners: ["spiffe://prism.local/profile-svc"], readers: ["spiffe://prism.local/support-tool"]}
`)
	s.startExtproc()
	c := s.mtlsEdge(pushOwner, pushReader)
	owner, reader := c[pushOwner], c[pushReader]
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := owner.kv("PUT", "profiles/u-1", `{"email":"jane@example.com","plan":"pro"}`); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("namespace profiles not served within 10s")
		}
	}
	if got := reader.must("GET", "profiles/u-1", "", http.StatusOK); !strings.Contains(got, `"j***@example.com"`) {
		t.Fatalf("reader GET under the built-in policy = %s, want the email masked", got)
	}

	// A policy that denies readers, with a Rego test that says so.
	d := policies.Default()
	strict := map[string]string{
		"authz.rego": strings.Replace(d["authz.rego"], `role in {"reader", "open"}`, `role == "open"`, 1),
		"pii.rego":   d["pii.rego"],
		"strict_test.rego": `package prism.strict_test

import data.prism.authz

test_readers_are_denied if {
	not authz.allow with input as {"subject": "r", "operation": "get", "access": {"owners": ["o"], "readers": ["r"]}}
}
`,
	}
	strictDir := writePolicyDir(t, strict)
	start := time.Now()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := s.push(strictDir)
		done <- result{out, err}
	}()
	var enforced time.Duration
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		code, body := reader.kv("GET", "profiles/u-1", "")
		if code == http.StatusForbidden {
			enforced = time.Since(start)
			break
		}
		if code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("reader GET while the strict policy is pushed = %d %s, want 200 then 403", code, body)
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("prism policy push: %v\n%s", r.err, r.out)
	}
	t.Logf("push → enforcement: %v (first 403 seen by a reader); prism policy push said:\n%s", enforced, r.out)
	if !strings.Contains(r.out, "version "+policies.Version(strict)) || !strings.Contains(r.out, "node "+s.nodeID+": ACK") || !strings.Contains(r.out, "enforced on 1 extproc node(s)") {
		t.Errorf("prism policy push output lacks the version, the node's ACK or the enforcement time:\n%s", r.out)
	}
	if got := owner.must("GET", "profiles/u-1", "", http.StatusOK); !strings.Contains(got, "jane@example.com") {
		t.Fatalf("owner GET under the strict policy = %s, want plaintext", got)
	}

	// A syntax error never leaves the control plane.
	broken := map[string]string{"authz.rego": "package prism.authz\n\nallow if {\n", "pii.rego": d["pii.rego"]}
	out, err := s.push(writePolicyDir(t, broken))
	if err == nil || !strings.Contains(err.Error(), "INVALID_ARGUMENT") || !strings.Contains(err.Error(), "rego_parse_error") {
		t.Fatalf("push of a syntax error = %v\n%s, want INVALID_ARGUMENT with the parser's message", err, out)
	}
	reader.must("GET", "profiles/u-1", "", http.StatusForbidden)

	// A conflict on namespace profiles only: the control plane's tests and
	// generic probes pass, extproc's probe of profiles fails, it NACKs.
	conflict := map[string]string{
		"authz.rego": d["authz.rego"], "authz_test.rego": d["authz_test.rego"],
		"pii.rego": d["pii.rego"], "pii_test.rego": d["pii_test.rego"],
		"closed.rego": "package prism.authz\n\ndecision := {\"allow\": false, \"role\": \"none\", \"reason\": \"closed\"} if input.namespace == \"profiles\"\n",
	}
	out, err = s.push(writePolicyDir(t, conflict))
	if err == nil || !strings.Contains(err.Error(), "rejected") || !strings.Contains(out, "NACK") || !strings.Contains(out, "eval_conflict_error") {
		t.Fatalf("push of a policy that conflicts on profiles = %v\n%s, want a NACK with the conflict", err, out)
	}
	connected, ts := s.nodeType(resource.PolicyType)
	if nack, _ := ts["last_nack"].(map[string]any); !connected || nack == nil || !strings.Contains(nack["error"].(string), "namespace profiles") {
		t.Fatalf("GET /v1/admin/nodes after the NACK: connected=%v %v, want the Policy NACK naming namespace profiles", connected, ts)
	}
	reader.must("GET", "profiles/u-1", "", http.StatusForbidden)
	if got := owner.must("GET", "profiles/u-1", "", http.StatusOK); !strings.Contains(got, "jane@example.com") {
		t.Fatalf("owner GET after the NACK = %s, want the strict policy still answering", got)
	}

	// Pushing the built-in policy brings masked reads back.
	if out, err := s.push("-"); err != nil {
		t.Fatalf("push of the built-in policy: %v\n%s", err, out)
	}
	if got := reader.must("GET", "profiles/u-1", "", http.StatusOK); !strings.Contains(got, `"j***@example.com"`) {
		t.Fatalf("reader GET after pushing the built-in policy = %s, want masked", got)
	}
}

// TestXDSSeedsPoliciesAfterCheckingThem: a seed's policies pass the same
// checks as a PUT and are stored with their version; a broken one stops
// prism xds from starting on it.
func TestXDSSeedsPoliciesAfterCheckingThem(t *testing.T) {
	dir := t.TempDir()
	seed := func(modules map[string]string) string {
		b, err := json.Marshal(map[string]any{
			"backends":   []any{map[string]any{"name": "lite", "sqlite": map[string]any{"path": filepath.Join(dir, "kv.db")}}},
			"policies":   []any{map[string]any{"name": "strict", "modules": modules}},
			"namespaces": []any{map[string]any{"namespace": "orders", "abstraction": "keyvalue", "backend": "lite", "policy": "strict"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "prism.yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	broken := seed(map[string]string{"authz.rego": "package prism.authz\n\nallow if {\n"})
	err := runXDS(context.Background(), []string{"--xds", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--store", filepath.Join(dir, "broken.db"), "--seed", broken}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "seed policy strict") || !strings.Contains(err.Error(), "rego_parse_error") {
		t.Fatalf("prism xds with a broken seed policy = %v, want it refused with the parser's message", err)
	}

	admin, stop := startXDS(t, "--store", filepath.Join(dir, "xds.db"), "--seed", seed(policies.Default()))
	defer stop()
	code, body := adminDo(t, "GET", admin+"/v1/admin/policies/strict", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET the seeded policy = %d %v", code, body)
	}
	if v := body["policy"].(map[string]any)["version"]; v != policies.Version(policies.Default()) {
		t.Fatalf("seeded policy version %v, want its content hash", v)
	}
}
