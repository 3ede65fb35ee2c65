package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/extproc/pii"
)

const keysTestConfig = `
backends:
  - name: local
    sqlite: {path: %s}
namespaces:
  - namespace: people
    abstraction: keyvalue
    backend: local
    schema: {pii: [{path: email, class: email}, {path: ssn, class: ssn}]}
    access:
      owners: ["spiffe://prism.local/app"]
      readers: ["spiffe://partner.example/support"]
      require_identity: true
`

// devTLS is a `prism dev --tls` running in-process for a test.
type devTLS struct {
	dir, base, certDir, dbPath, auditDB, kekFile, keysFile string
}

// startDevTLS runs `prism dev --tls` with everything under a temporary
// directory and waits until its mTLS edge answers.
func startDevTLS(t *testing.T) *devTLS {
	t.Helper()
	dir := t.TempDir()
	d := &devTLS{
		dir: dir, certDir: filepath.Join(dir, "certs"), dbPath: filepath.Join(dir, "data.db"),
		auditDB: filepath.Join(dir, "audit.db"), kekFile: filepath.Join(dir, "kek"), keysFile: filepath.Join(dir, "keys.json"),
	}
	cfg := filepath.Join(dir, "prism.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, keysTestConfig, d.dbPath), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	d.base = "https://" + httpAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, []string{"--config", cfg, "--http", httpAddr, "--grpc", freeAddr(t), "--admin", freeAddr(t),
			"--xds", "127.0.0.1:0", "--store", filepath.Join(dir, "xds.db"), "--log-level", "warn",
			"--kek-file", d.kekFile, "--keys-file", d.keysFile, "--audit-log", d.auditDB,
			"--tls", "--tls-dir", d.certDir}, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("prism dev: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("prism dev did not stop within 20s of cancel")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(d.certDir, "ca.pem")); err == nil {
			if resp, err := d.client(t, "").Get(d.base + "/v1/kv/people/__probe"); err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("probe without a client certificate: status %d, want 401", resp.StatusCode)
				}
				return d
			}
		}
		select {
		case err := <-done:
			t.Fatalf("prism dev --tls exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("prism dev --tls did not answer within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is an HTTPS client trusting the dev CA, with the client
// certificate <name>.pem of the cert dir ("" for none).
func (d *devTLS) client(t *testing.T, name string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(d.certDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool}
	if name != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(d.certDir, name+".pem"), filepath.Join(d.certDir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func (d *devTLS) do(t *testing.T, c *http.Client, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	} else {
		req.Header.Set("content-type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var kidRE = regexp.MustCompile(`"\$pii":"v1:([0-9a-z]+):`)

// storedKIDs maps each stored key of the namespace to the data key ids its
// envelopes name, read from the backend directly.
func storedKIDs(t *testing.T, dbPath string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	store, err := kv.Open(ctx, "sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	page, err := store.Scan(ctx, "people", kv.ScanQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, it := range page.Items {
		for _, m := range kidRE.FindAllSubmatch(it.Value, -1) {
			out[it.Key] = append(out[it.Key], string(m[1]))
		}
	}
	return out
}

// TestDevTLSKeysRotateAndReencrypt is the operator's path end to end:
// `prism dev --tls` makes its CA, `prism certs --client` issues client
// certificates, identities come from them, `prism keys rotate` adds a key
// the running dev picks up, `prism keys reencrypt` moves the old values to
// it through the data API, and `prism audit verify` checks the SQLite
// audit log and names the row an edit broke.
func TestDevTLSKeysRotateAndReencrypt(t *testing.T) {
	d := startDevTLS(t)
	var out bytes.Buffer
	if err := runCerts([]string{"-out", d.certDir, "-client", "app"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := runCerts([]string{"-out", d.certDir, "-client", "support", "-san", "spiffe://partner.example/support"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "spiffe://partner.example/support") {
		t.Fatalf("certs output: %s", out.String())
	}
	owner, reader, none := d.client(t, "app"), d.client(t, "support"), d.client(t, "")
	const doc = `{"email":"ann@example.com","ssn":"123-45-6789","n":%d}`
	for i := 0; i < 5; i++ {
		if st, b := d.do(t, owner, "PUT", fmt.Sprintf("/v1/kv/people/k%d", i), fmt.Sprintf(doc, i)); st != 200 {
			t.Fatalf("owner PUT: %d %s", st, b)
		}
	}
	if st, b := d.do(t, reader, "GET", "/v1/kv/people/k1", ""); st != 200 || !bytes.Contains(b, []byte(`a***@example.com`)) || bytes.Contains(b, []byte("ann@")) {
		t.Fatalf("reader GET: %d %s, want the email masked", st, b)
	}
	if st, b := d.do(t, none, "GET", "/v1/kv/people/k1", ""); st != 401 || !bytes.Contains(b, []byte("UNAUTHENTICATED")) {
		t.Fatalf("GET without a client certificate: %d %s, want 401", st, b)
	}
	if st, b := d.do(t, reader, "PUT", "/v1/kv/people/k1", fmt.Sprintf(doc, 9)); st != 403 {
		t.Fatalf("reader PUT: %d %s, want 403", st, b)
	}
	before := storedKIDs(t, d.dbPath)
	oldKID := before["k0"][0]

	out.Reset()
	if err := runKeys(context.Background(), []string{"rotate", "people", "--kek-file", d.kekFile, "--keys-file", d.keysFile}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	keys, err := pii.NewFileKeyStore(d.keysFile).Keys(context.Background(), "people")
	if err != nil || len(keys) != 2 {
		t.Fatalf("key store after rotate: %v, %v; want 2 keys", keys, err)
	}
	newKID := keys[1].ID
	if !strings.Contains(out.String(), newKID) {
		t.Fatalf("rotate output %q does not name the new key %s", out.String(), newKID)
	}
	// The running dev picks the key up on its next reload (every 2s).
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, b := d.do(t, owner, "PUT", "/v1/kv/people/probe", fmt.Sprintf(doc, 99)); st != 200 {
			t.Fatalf("owner PUT after rotate: %d %s", st, b)
		}
		if storedKIDs(t, d.dbPath)["probe"][0] == newKID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("prism dev still seals with the old key 15s after the rotation")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, b := d.do(t, owner, "GET", "/v1/kv/people/k0", ""); st != 200 || !bytes.Contains(b, []byte("ann@example.com")) {
		t.Fatalf("owner GET of a value under the old key: %d %s", st, b)
	}

	out.Reset()
	err = runKeys(context.Background(), []string{"reencrypt", "people", "--url", d.base,
		"--cert", filepath.Join(d.certDir, "app.pem"), "--key", filepath.Join(d.certDir, "app-key.pem"),
		"--ca", filepath.Join(d.certDir, "ca.pem"), "--page", "2"}, &out, io.Discard)
	if err != nil {
		t.Fatalf("reencrypt: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "6 values read, 6 rewritten") {
		t.Fatalf("reencrypt output:\n%s", out.String())
	}
	for key, kids := range storedKIDs(t, d.dbPath) {
		for _, kid := range kids {
			if kid != newKID {
				t.Fatalf("after reencrypt %s is still sealed with %s (old %s), want %s", key, kid, oldKID, newKID)
			}
		}
	}
	for i := 0; i < 5; i++ {
		if st, b := d.do(t, owner, "GET", fmt.Sprintf("/v1/kv/people/k%d", i), ""); st != 200 || string(b) != fmt.Sprintf(doc, i) {
			t.Fatalf("owner GET k%d after reencrypt: %d %s", i, st, b)
		}
	}
	// Without an owner's certificate the job fails, and says why.
	out.Reset()
	err = runKeys(context.Background(), []string{"reencrypt", "people", "--url", d.base,
		"--cert", filepath.Join(d.certDir, "support.pem"), "--key", filepath.Join(d.certDir, "support-key.pem"),
		"--ca", filepath.Join(d.certDir, "ca.pem")}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("reencrypt as a reader: %v, want a 403 error", err)
	}

	// The audit log is the SQLite database; verify it, edit a row, verify.
	out.Reset()
	if err := runAudit(context.Background(), []string{"verify", d.auditDB}, &out, io.Discard); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if !strings.Contains(out.String(), "hash chain intact") {
		t.Fatalf("audit verify output: %s", out.String())
	}
	db, err := sql.Open("sqlite", d.auditDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE prism_audit SET subject = 'spiffe://prism.local/someone' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	err = runAudit(context.Background(), []string{"verify", d.auditDB}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "row id 3 ") || !strings.Contains(err.Error(), "2 records intact") {
		t.Fatalf("audit verify after editing row 3: %v, want it to name row id 3", err)
	}
}
