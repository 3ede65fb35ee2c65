package integration

import (
	"bytes"
	"context"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

const (
	piiOwner    = "spiffe://prism.local/profile-svc"
	piiReader   = "spiffe://prism.local/support-tool"
	piiStranger = "spiffe://prism.local/someone-else"
)

// piiStack is a stack whose extproc has a keyring and an audit log.
type piiStack struct {
	edgeURL  string
	client   extprocv3.ExternalProcessorClient
	dbPath   string
	auditLog string
}

func startPIIStack(t *testing.T) *piiStack {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "kv.db")
	kek, err := pii.NewLocalKEK(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keyring := pii.NewKeyring(pii.NewFileKeyStore(filepath.Join(dir, "keys.json")), kek)
	auditPath := filepath.Join(dir, "audit.log")
	al, err := audit.OpenFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := extproc.NewServer(extproc.Options{Logger: log, Keyring: keyring, Audit: al})
	backends := []*configv1.Backend{{Name: "db", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: dbPath}}}}
	namespaces := []*configv1.Namespace{
		{
			Namespace: "profiles", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "db",
			Schema: &configv1.Schema{Pii: []*configv1.PiiField{
				{Path: "email", Class: configv1.PiiClass_EMAIL},
			}},
			Access: &configv1.Access{Owners: []string{piiOwner}, Readers: []string{piiReader}},
		},
		kvNamespace("plain", "db", 0),
		{
			Namespace: "signups", Abstraction: configv1.Abstraction_TIMESERIES, Backend: "db",
			Schema: &configv1.Schema{Pii: []*configv1.PiiField{
				{Path: "email", Class: configv1.PiiClass_EMAIL},
			}},
			Access: &configv1.Access{Owners: []string{piiOwner}, Readers: []string{piiReader}},
		},
		{
			Namespace: "people", Abstraction: configv1.Abstraction_GRAPH, Backend: "db",
			Schema: &configv1.Schema{Pii: []*configv1.PiiField{
				{Path: "email", Class: configv1.PiiClass_EMAIL},
			}},
			Access: &configv1.Access{Owners: []string{piiOwner}, Readers: []string{piiReader}},
		},
	}
	if err := srv.Apply(context.Background(), &configv1.DevConfig{Backends: backends, Namespaces: namespaces}); err != nil {
		t.Fatalf("applying config: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(g, srv)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := extprocv3.NewExternalProcessorClient(conn)
	edge := httptest.NewServer(devedge.New(client, devedge.Options{Logger: log}))
	t.Cleanup(func() {
		edge.Close()
		conn.Close()
		g.Stop()
		srv.Close()
		al.Close()
	})
	return &piiStack{edgeURL: edge.URL, client: client, dbPath: dbPath, auditLog: auditPath}
}

// subjectCall is rawCall with a client identity: the message the dev edge
// builds, plus the connection.uri_san_peer_certificate attribute Envoy
// sends for an mTLS client.
func subjectCall(t *testing.T, client extprocv3.ExternalProcessorClient, subject, method, path, body string, headers ...string) *extprocv3.ImmediateResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		req.ContentLength = 0
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	msg := devedge.HeadersMessage(req, "req-"+method+"-"+subject, body == "")
	if subject != "" {
		msg.Attributes["envoy.filters.http.ext_proc"].Fields["connection.uri_san_peer_certificate"] = structpb.NewStringValue(subject)
	}
	if err := stream.Send(msg); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		return ir
	}
	if err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true},
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	ir := resp.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("%s %s: answer to request_body is %T", method, path, resp.GetResponse())
	}
	return ir
}

func TestPIIPolicyKV(t *testing.T) {
	st := startPIIStack(t)
	c := st.client
	const doc = `{"email":"jane@example.com","name":"Jane"}`
	want := func(ir *extprocv3.ImmediateResponse, status int, what string) {
		t.Helper()
		if got := int(ir.GetStatus().GetCode()); got != status {
			t.Fatalf("%s: status %d, want %d: %s", what, got, status, ir.GetBody())
		}
	}
	jsonCT := []string{"content-type", "application/json"}

	// Writes: owner only, JSON only.
	want(subjectCall(t, c, piiOwner, "PUT", "/v1/kv/profiles/u-1", doc, jsonCT...), 200, "owner PUT")
	want(subjectCall(t, c, piiOwner, "PUT", "/v1/kv/profiles/u-2", doc, "content-type", "text/plain"), 400, "owner PUT text/plain")
	want(subjectCall(t, c, piiOwner, "POST", "/v1/kv/profiles/_batch",
		`{"ops":[{"op":"put","key":"u-3","value":{"email":"max@example.org","name":"Max"}}]}`), 200, "owner batch")
	want(subjectCall(t, c, piiReader, "PUT", "/v1/kv/profiles/u-1", doc, jsonCT...), 403, "reader PUT")

	// Reads.
	ir := subjectCall(t, c, piiOwner, "GET", "/v1/kv/profiles/u-1", "")
	want(ir, 200, "owner GET")
	if string(ir.GetBody()) != doc {
		t.Fatalf("owner GET: %s, want %s", ir.GetBody(), doc)
	}
	ir = subjectCall(t, c, piiReader, "GET", "/v1/kv/profiles/u-1", "")
	want(ir, 200, "reader GET")
	var got map[string]any
	if err := json.Unmarshal(ir.GetBody(), &got); err != nil || got["email"] != "j***@example.com" || got["name"] != "Jane" {
		t.Fatalf("reader GET: %s (%v), want the email masked", ir.GetBody(), err)
	}
	ir = subjectCall(t, c, piiReader, "GET", "/v1/kv/profiles?prefix=u-", "")
	want(ir, 200, "reader scan")
	if bytes.Contains(ir.GetBody(), []byte("jane@")) || !bytes.Contains(ir.GetBody(), []byte("m***@example.org")) {
		t.Fatalf("reader scan: %s", ir.GetBody())
	}
	ir = subjectCall(t, c, piiReader, "POST", "/v1/kv/profiles/_mget", `{"keys":["u-1","u-3","nope"]}`)
	want(ir, 200, "reader mget")
	if bytes.Contains(ir.GetBody(), []byte("jane@")) || !bytes.Contains(ir.GetBody(), []byte("j***@example.com")) {
		t.Fatalf("reader mget: %s", ir.GetBody())
	}
	ir = subjectCall(t, c, piiStranger, "GET", "/v1/kv/profiles/u-1", "")
	want(ir, 403, "stranger GET")
	if !bytes.Contains(ir.GetBody(), []byte("PERMISSION_DENIED")) {
		t.Fatalf("stranger GET: %s", ir.GetBody())
	}
	want(subjectCall(t, c, "", "GET", "/v1/kv/profiles/u-1", ""), 403, "no identity GET")

	// Through the dev edge over plain HTTP there is no identity, and an
	// XFCC header from the client is stripped, not believed.
	req, _ := http.NewRequest("GET", st.edgeURL+"/v1/kv/profiles/u-1", nil)
	req.Header.Set("x-forwarded-client-cert", `URI=`+piiOwner)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("edge GET with a forged XFCC: status %d, want 403", resp.StatusCode)
	}

	// A namespace without PII and access lists is unchanged.
	want(subjectCall(t, c, "", "PUT", "/v1/kv/plain/k", `{"email":"x@y.z"}`), 200, "open PUT")
	ir = subjectCall(t, c, "", "GET", "/v1/kv/plain/k", "")
	want(ir, 200, "open GET")
	if string(ir.GetBody()) != `{"email":"x@y.z"}` {
		t.Fatalf("open GET: %s", ir.GetBody())
	}

	// The backend holds no plaintext email.
	ctx := context.Background()
	store, err := kv.Open(ctx, "sqlite", st.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	page, err := store.Scan(ctx, "profiles", kv.ScanQuery{Limit: 100})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 {
		t.Fatalf("backend holds %d items, want 2", len(page.Items))
	}
	for _, it := range page.Items {
		if bytes.Contains(it.Value, []byte("@example.")) || !bytes.Contains(it.Value, []byte(`"$pii"`)) {
			t.Fatalf("backend value of %s: %s", it.Key, it.Value)
		}
	}
	files, _ := filepath.Glob(st.dbPath + "*")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("jane@example.com")) || bytes.Contains(raw, []byte("max@example.org")) {
			t.Fatalf("%s holds a plaintext email", f)
		}
	}

	// The audit log is intact and records the reads and the denials.
	n, err := audit.VerifyFile(ctx, st.auditLog)
	if err != nil {
		t.Fatalf("audit verify after %d records: %v", n, err)
	}
	raw, err := os.ReadFile(st.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("jane@")) {
		t.Fatal("audit log holds a PII value")
	}
	count := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Namespace != "profiles" {
			t.Fatalf("audit record for namespace %q", r.Namespace)
		}
		count[r.Operation+" "+r.Subject+" "+r.Decision]++
	}
	for _, k := range []string{
		"put " + piiOwner + " email=plain",
		"batch " + piiOwner + " email=plain",
		"put " + piiReader + " deny",
		"get " + piiOwner + " email=plain",
		"get " + piiReader + " email=mask",
		"scan " + piiReader + " email=mask",
		"mget " + piiReader + " email=mask",
		"get " + piiStranger + " deny",
		"get  deny",
	} {
		if count[k] == 0 {
			t.Errorf("no audit record %q; have %v", k, count)
		}
	}
	if n != len(bytes.Split(bytes.TrimSpace(raw), []byte("\n"))) {
		t.Errorf("verified %d records", n)
	}
}

// wantStatus fails the test unless ir has the status.
func wantStatus(t *testing.T, ir *extprocv3.ImmediateResponse, status int, what string) {
	t.Helper()
	if got := int(ir.GetStatus().GetCode()); got != status {
		t.Fatalf("%s: status %d, want %d: %s", what, got, status, ir.GetBody())
	}
}

// noPlaintextOnDisk fails the test if a file of the SQLite database holds s.
func noPlaintextOnDisk(t *testing.T, dbPath, s string) {
	t.Helper()
	files, _ := filepath.Glob(dbPath + "*")
	if len(files) == 0 {
		t.Fatalf("no database files at %s", dbPath)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("%s holds a plaintext email", f)
		}
	}
}

// auditHas fails the test unless the audit log verifies and holds a record
// "operation subject decision" of namespace ns for each of want.
func auditHas(t *testing.T, path, ns string, want ...string) {
	t.Helper()
	if n, err := audit.VerifyFile(context.Background(), path); err != nil {
		t.Fatalf("audit verify after %d records: %v", n, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("@example.")) {
		t.Fatal("audit log holds a PII value")
	}
	count := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Namespace == ns {
			count[r.Operation+" "+r.Subject+" "+r.Decision]++
		}
	}
	for _, k := range want {
		if count[k] == 0 {
			t.Errorf("no audit record %q; have %v", k, count)
		}
	}
}

func TestPIIPolicyTimeSeries(t *testing.T) {
	st := startPIIStack(t)
	c := st.client
	const events = `{"events":[{"series":"user:1","id":"e1","time":"2026-01-02T03:04:05Z","data":{"email":"jane@example.com","plan":"pro"}},` +
		`{"series":"user:1","id":"e2","time":"2026-01-02T03:04:06Z"}]}`
	// A tail cursor from before the append: a tail without one starts at the end.
	ir := subjectCall(t, c, piiReader, "GET", "/v1/ts/signups/tail?series=user:1&wait=0s", "")
	wantStatus(t, ir, 200, "reader first tail")
	var first struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(ir.GetBody(), &first); err != nil || first.NextCursor == "" {
		t.Fatalf("reader first tail: %s (%v)", ir.GetBody(), err)
	}
	wantStatus(t, subjectCall(t, c, piiOwner, "POST", "/v1/ts/signups/events", events), 200, "owner append")
	wantStatus(t, subjectCall(t, c, piiReader, "POST", "/v1/ts/signups/events", events), 403, "reader append")

	ir = subjectCall(t, c, piiOwner, "GET", "/v1/ts/signups/events?series=user:1", "")
	wantStatus(t, ir, 200, "owner query")
	if !bytes.Contains(ir.GetBody(), []byte(`"jane@example.com"`)) {
		t.Fatalf("owner query: %s", ir.GetBody())
	}
	for _, path := range []string{"/v1/ts/signups/events?series=user:1", "/v1/ts/signups/tail?series=user:1&wait=0s&after=" + first.NextCursor} {
		ir = subjectCall(t, c, piiReader, "GET", path, "")
		wantStatus(t, ir, 200, "reader "+path)
		var res struct {
			Events []struct {
				Data map[string]any `json:"data"`
			} `json:"events"`
		}
		if err := json.Unmarshal(ir.GetBody(), &res); err != nil || len(res.Events) != 2 ||
			res.Events[0].Data["email"] != "j***@example.com" || res.Events[0].Data["plan"] != "pro" || res.Events[1].Data != nil {
			t.Fatalf("reader %s: %s (%v), want the email masked", path, ir.GetBody(), err)
		}
		ir = subjectCall(t, c, piiStranger, "GET", path, "")
		wantStatus(t, ir, 403, "stranger "+path)
	}

	noPlaintextOnDisk(t, st.dbPath, "jane@example.com")
	auditHas(t, st.auditLog, "signups",
		"append "+piiOwner+" email=plain",
		"append "+piiReader+" deny",
		"query "+piiOwner+" email=plain",
		"query "+piiReader+" email=mask",
		"tail "+piiReader+" email=mask",
		"query "+piiStranger+" deny",
	)
}

func TestPIIPolicyGraph(t *testing.T) {
	st := startPIIStack(t)
	c := st.client
	wantStatus(t, subjectCall(t, c, piiOwner, "PUT", "/v1/graph/people/nodes/u-1",
		`{"label":"user","props":{"email":"jane@example.com","name":"Jane"}}`), 200, "owner put node")
	wantStatus(t, subjectCall(t, c, piiOwner, "PUT", "/v1/graph/people/nodes/u-2",
		`{"label":"user","props":{"email":"max@example.org","name":"Max"}}`), 200, "owner put node 2")
	wantStatus(t, subjectCall(t, c, piiOwner, "PUT", "/v1/graph/people/edges",
		`{"from":"u-1","to":"u-2","label":"follows","props":{"since":2024}}`), 200, "owner put edge")
	wantStatus(t, subjectCall(t, c, piiReader, "PUT", "/v1/graph/people/nodes/u-1",
		`{"label":"user","props":{"email":"evil@example.com"}}`), 403, "reader put node")

	ir := subjectCall(t, c, piiOwner, "GET", "/v1/graph/people/nodes/u-1", "")
	wantStatus(t, ir, 200, "owner get node")
	if !bytes.Contains(ir.GetBody(), []byte(`"jane@example.com"`)) {
		t.Fatalf("owner get node: %s", ir.GetBody())
	}
	ir = subjectCall(t, c, piiReader, "GET", "/v1/graph/people/nodes/u-1", "")
	wantStatus(t, ir, 200, "reader get node")
	var node struct {
		Props map[string]any `json:"props"`
	}
	if err := json.Unmarshal(ir.GetBody(), &node); err != nil || node.Props["email"] != "j***@example.com" || node.Props["name"] != "Jane" {
		t.Fatalf("reader get node: %s (%v), want the email masked", ir.GetBody(), err)
	}
	ir = subjectCall(t, c, piiReader, "POST", "/v1/graph/people/traverse", `{"start":"u-1","max_depth":1}`)
	wantStatus(t, ir, 200, "reader traverse")
	if bytes.Contains(ir.GetBody(), []byte("jane@")) || bytes.Contains(ir.GetBody(), []byte("max@")) ||
		!bytes.Contains(ir.GetBody(), []byte("m***@example.org")) || !bytes.Contains(ir.GetBody(), []byte(`"since":2024`)) {
		t.Fatalf("reader traverse: %s", ir.GetBody())
	}
	wantStatus(t, subjectCall(t, c, piiStranger, "GET", "/v1/graph/people/nodes/u-1", ""), 403, "stranger get node")
	wantStatus(t, subjectCall(t, c, piiStranger, "POST", "/v1/graph/people/traverse", `{"start":"u-1"}`), 403, "stranger traverse")

	noPlaintextOnDisk(t, st.dbPath, "jane@example.com")
	noPlaintextOnDisk(t, st.dbPath, "max@example.org")
	auditHas(t, st.auditLog, "people",
		"put_node "+piiOwner+" email=plain",
		"put_node "+piiReader+" deny",
		"get_node "+piiOwner+" email=plain",
		"get_node "+piiReader+" email=mask",
		"traverse "+piiReader+" email=mask",
		"get_node "+piiStranger+" deny",
	)
}
