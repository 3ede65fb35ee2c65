package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/prism-gw/prism/envoy/certs"
	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// The PII document of the mTLS tests: three PII fields and a marker field
// ("plan") by which tests find the document in any answer.
const (
	mtlsEmail = "jane.doe@example.com"
	mtlsSSN   = "123-45-6789"
	mtlsName  = "Jane Doe"
	mtlsDoc   = `{"email":"` + mtlsEmail + `","ssn":"` + mtlsSSN + `","name":"` + mtlsName + `","plan":"pro"}`
)

// mtlsPlaintexts are the PII values that must never be at rest or in logs.
var mtlsPlaintexts = []string{mtlsEmail, mtlsSSN, mtlsName}

// Subjects of the matrix; "none" connects without a client certificate.
const (
	subjOwner    = "owner"
	subjReader   = "reader"
	subjStranger = "stranger"
	subjNone     = "none"
)

// mtlsStack is the data path with a dev edge that terminates mTLS with a
// dev CA, an extproc with a keyring, a database audit log and a policy
// that redacts SSNs for readers, and logs captured in a buffer.
type mtlsStack struct {
	url       string
	clients   map[string]*http.Client
	ids       map[string]string // subject → SPIFFE ID
	server    *extproc.Server
	keyring   *pii.Keyring
	keysPath  string
	kek       pii.KEK
	dbPath    string // the SQLite backend
	pgDSN     string // the Postgres backend, "" without one
	auditSpec string
	audit     audit.Store
	logs      *syncBuffer
	certDir   string
}

type mtlsOptions struct {
	// postgres adds the p-kv, p-ts and p-graph namespaces on Postgres.
	postgres bool
	// auditSpec is the audit log; default a SQLite file.
	auditSpec string
	// maxValueBytes limits m-kv's values (0: default).
	maxValueBytes uint32
	// policy replaces the matrix policy.
	policy map[string]string
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// matrixPolicy is the default policy with one override, so the matrix
// sees all three read actions: readers get SSNs redacted.
func matrixPolicy(t testing.TB) map[string]string {
	t.Helper()
	mods := policies.Default()
	src, ok := mods["pii.rego"]
	if !ok || !strings.Contains(src, "class_overrides := {}") {
		t.Fatal("the default pii.rego has no empty class_overrides to override")
	}
	mods["pii.rego"] = strings.Replace(src, "class_overrides := {}", `class_overrides := {"reader": {"ssn": "redact"}}`, 1)
	return mods
}

// piiNamespace declares a namespace with the three PII fields, the owner
// and reader of the stack's CA, and require_identity.
func piiNamespace(name string, abs configv1.Abstraction, backend string, ids map[string]string) *configv1.Namespace {
	return &configv1.Namespace{
		Namespace: name, Abstraction: abs, Backend: backend,
		Schema: &configv1.Schema{Pii: []*configv1.PiiField{
			{Path: "email", Class: configv1.PiiClass_EMAIL},
			{Path: "ssn", Class: configv1.PiiClass_SSN},
			{Path: "name", Class: configv1.PiiClass_NAME},
		}},
		Access: &configv1.Access{Owners: []string{ids[subjOwner]}, Readers: []string{ids[subjReader]}, RequireIdentity: true},
	}
}

func startMTLSStack(t testing.TB, o mtlsOptions) *mtlsStack {
	t.Helper()
	dir := t.TempDir()
	st := &mtlsStack{
		dbPath:    filepath.Join(dir, "data.db"),
		keysPath:  filepath.Join(dir, "keys.json"),
		certDir:   filepath.Join(dir, "certs"),
		logs:      &syncBuffer{},
		auditSpec: o.auditSpec,
	}
	if st.auditSpec == "" {
		st.auditSpec = filepath.Join(dir, "audit.db")
	}

	// The dev CA, as `prism dev --tls` makes it, and one client
	// certificate per subject, as `prism certs --client` issues them.
	ca, err := certs.EnsureDevSet(st.certDir, "", []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := devedge.TLSConfig(st.certDir, false)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	st.ids = map[string]string{}
	st.clients = map[string]*http.Client{}
	for _, s := range []string{subjOwner, subjReader, subjStranger, subjNone} {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if s != subjNone {
			st.ids[s] = ca.ID("matrix/" + s)
			certPath, keyPath, err := certs.WriteClient(ca, st.certDir, s, st.ids[s])
			if err != nil {
				t.Fatal(err)
			}
			cert, err := tls.LoadX509KeyPair(certPath, keyPath)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		st.clients[s] = &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 8}}
	}

	kek, err := pii.NewLocalKEK(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st.kek = kek
	st.keyring = pii.NewKeyring(pii.NewFileKeyStore(st.keysPath), kek)
	st.audit, err = audit.Open(context.Background(), st.auditSpec)
	if err != nil {
		t.Fatalf("audit log %s: %v", st.auditSpec, err)
	}
	log := slog.New(slog.NewJSONHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	policy := o.policy
	if policy == nil {
		policy = matrixPolicy(t)
	}
	st.server = extproc.NewServer(extproc.Options{Logger: log, Keyring: st.keyring, Audit: st.audit, Policy: policy})

	backends := []*configv1.Backend{{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: st.dbPath}}}}
	kvNS := piiNamespace("m-kv", configv1.Abstraction_KEYVALUE, "lite", st.ids)
	if o.maxValueBytes > 0 {
		kvNS.Limits = &configv1.Limits{MaxValueBytes: o.maxValueBytes}
	}
	namespaces := []*configv1.Namespace{
		kvNS,
		piiNamespace("m-ts", configv1.Abstraction_TIMESERIES, "lite", st.ids),
		piiNamespace("m-graph", configv1.Abstraction_GRAPH, "lite", st.ids),
		kvNamespace("open", "lite", 0),
	}
	if o.postgres {
		pg := postgresBackend(t, "pg", "")
		st.pgDSN = pg.GetPostgres().GetDsn()
		backends = append(backends, pg)
		namespaces = append(namespaces,
			piiNamespace("p-kv", configv1.Abstraction_KEYVALUE, "pg", st.ids),
			piiNamespace("p-ts", configv1.Abstraction_TIMESERIES, "pg", st.ids),
			piiNamespace("p-graph", configv1.Abstraction_GRAPH, "pg", st.ids),
		)
	}
	if err := st.server.Apply(context.Background(), &configv1.DevConfig{Backends: backends, Namespaces: namespaces}); err != nil {
		t.Fatalf("applying config: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(g, st.server)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	edge := httptest.NewUnstartedServer(devedge.New(extprocv3.NewExternalProcessorClient(conn), devedge.Options{Logger: log}))
	edge.TLS = tlsCfg
	edge.StartTLS()
	st.url = edge.URL
	t.Cleanup(func() {
		edge.Close()
		conn.Close()
		g.Stop()
		st.server.Close()
		st.audit.Close()
	})
	return st
}

// requestSeq numbers the request ids of the tests.
var requestSeq atomic.Int64

// sent is one request of a test with its answer.
type sent struct {
	subject, method, path, requestID string
	status                           int
	body                             []byte
}

// do sends a request as subject through the mTLS dev edge, with a request
// id of its own so that audit records can be matched to it.
func (st *mtlsStack) do(t testing.TB, subject, method, path, body string, hdr ...string) sent {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, st.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	id := fmt.Sprintf("t-%s-%s-%d", subject, strings.ToLower(method), requestSeq.Add(1))
	req.Header.Set("x-request-id", id)
	resp, err := st.clients[subject].Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", subject, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sent{subject: subject, method: method, path: path, requestID: id, status: resp.StatusCode, body: b}
}

// records returns the audit records of the namespaces, by request id.
func (st *mtlsStack) records(t *testing.T, namespaces ...string) map[string][]audit.Record {
	t.Helper()
	out := map[string][]audit.Record{}
	for _, ns := range namespaces {
		recs, err := st.audit.Recent(context.Background(), ns, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out[r.RequestID] = append(out[r.RequestID], r)
		}
	}
	return out
}

// docsIn returns every JSON object in an answer that has the marker
// field "plan": the PII documents it carries, wherever the API puts them.
func docsIn(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("answer is not JSON: %s", body)
	}
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["plan"]; ok {
				out = append(out, x)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// masked is what the mask action makes of a value of a class.
func masked(t *testing.T, class pii.Class, value string) string {
	t.Helper()
	raw, _ := json.Marshal(value)
	var s string
	if err := json.Unmarshal(pii.MaskValue(class, raw), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// noPlaintextIn fails the test if any PII plaintext is in b.
func noPlaintextIn(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, p := range mtlsPlaintexts {
		if bytes.Contains(b, []byte(p)) {
			i := bytes.Index(b, []byte(p))
			lo, hi := max(0, i-80), min(len(b), i+len(p)+80)
			t.Fatalf("%s holds the plaintext %q: …%s…", what, p, b[lo:hi])
		}
	}
}

// rawFiles fails the test if a file of the SQLite database holds PII.
func (st *mtlsStack) noPlaintextInFiles(t *testing.T, glob string) {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no files match %s", glob)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		noPlaintextIn(t, f, raw)
	}
}
