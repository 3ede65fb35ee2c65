package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/prism-gw/prism/envoy/certs"
	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
)

// matrixOp is one operation of the matrix. Paths and bodies may contain
// {s}, replaced by the subject, so that writes of different subjects do not
// collide.
type matrixOp struct {
	name         string
	method, path string
	body         string
	write        bool
	okStatus     int // for an allowed call
}

var matrixOps = []matrixOp{
	// KeyValue
	{name: "kv put", method: "PUT", path: "/v1/kv/m-kv/w-{s}", body: mtlsDoc, write: true, okStatus: 200},
	{name: "kv batch", method: "POST", path: "/v1/kv/m-kv/_batch", body: `{"ops":[{"op":"put","key":"b-{s}","value":` + mtlsDoc + `}]}`, write: true, okStatus: 200},
	{name: "kv get", method: "GET", path: "/v1/kv/m-kv/seed", okStatus: 200},
	{name: "kv scan", method: "GET", path: "/v1/kv/m-kv?prefix=seed", okStatus: 200},
	{name: "kv mget", method: "POST", path: "/v1/kv/m-kv/_mget", body: `{"keys":["seed"]}`, okStatus: 200},
	{name: "kv delete", method: "DELETE", path: "/v1/kv/m-kv/w-{s}", write: true, okStatus: 204},
	// TimeSeries
	{name: "ts append", method: "POST", path: "/v1/ts/m-ts/events", body: `{"events":[{"series":"s-{s}","id":"e1","data":` + mtlsDoc + `}]}`, write: true, okStatus: 200},
	{name: "ts query", method: "GET", path: "/v1/ts/m-ts/events?series=seed", okStatus: 200},
	{name: "ts tail", method: "GET", path: "/v1/ts/m-ts/tail?series=seed&wait=0s&after={cursor}", okStatus: 200},
	// Graph
	{name: "graph put node", method: "PUT", path: "/v1/graph/m-graph/nodes/n-{s}", body: `{"label":"user","props":` + mtlsDoc + `}`, write: true, okStatus: 200},
	{name: "graph get node", method: "GET", path: "/v1/graph/m-graph/nodes/seed", okStatus: 200},
	{name: "graph traverse", method: "POST", path: "/v1/graph/m-graph/traverse", body: `{"start":"seed","max_depth":1}`, okStatus: 200},
	{name: "graph delete node", method: "DELETE", path: "/v1/graph/m-graph/nodes/n-{s}", write: true, okStatus: 204},
}

// TestPIIMatrixThroughMTLSEdge runs every operation and read path as the
// owner, a reader, a stranger and a caller without a client certificate,
// through the dev edge terminating mTLS with real client certificates, and
// checks each answer (plain, masked with SSNs redacted, 403, 401) and that
// each PII access left exactly one audit record in the SQLite audit log.
func TestPIIMatrixThroughMTLSEdge(t *testing.T) {
	st := startMTLSStack(t, mtlsOptions{})
	var all []sent
	must := func(s sent, status int) sent {
		t.Helper()
		all = append(all, s)
		if s.status != status {
			t.Fatalf("%s %s %s: status %d, want %d: %s", s.subject, s.method, s.path, s.status, status, s.body)
		}
		return s
	}

	// Seed what the reads read, as the owner; a tail cursor from before
	// the append.
	tail0 := must(st.do(t, subjOwner, "GET", "/v1/ts/m-ts/tail?series=seed&wait=0s", ""), 200)
	var cur struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(tail0.body, &cur); err != nil || cur.NextCursor == "" {
		t.Fatalf("first tail: %s (%v)", tail0.body, err)
	}
	must(st.do(t, subjOwner, "PUT", "/v1/kv/m-kv/seed", mtlsDoc), 200)
	must(st.do(t, subjOwner, "POST", "/v1/ts/m-ts/events", `{"events":[{"series":"seed","id":"s1","time":"2026-01-02T03:04:05Z","data":`+mtlsDoc+`}]}`), 200)
	must(st.do(t, subjOwner, "PUT", "/v1/graph/m-graph/nodes/seed", `{"label":"user","props":`+mtlsDoc+`}`), 200)
	must(st.do(t, subjOwner, "PUT", "/v1/graph/m-graph/nodes/seed2", `{"label":"user","props":`+mtlsDoc+`}`), 200)
	must(st.do(t, subjOwner, "PUT", "/v1/graph/m-graph/edges", `{"from":"seed","to":"seed2","label":"knows"}`), 200)

	var plain map[string]any
	if err := json.Unmarshal([]byte(mtlsDoc), &plain); err != nil {
		t.Fatal(err)
	}
	maskedDoc := map[string]any{ // ssn redacted by the matrix policy
		"email": masked(t, pii.Email, mtlsEmail),
		"name":  masked(t, pii.Name, mtlsName),
		"plan":  "pro",
	}

	for _, subj := range []string{subjOwner, subjReader, subjStranger, subjNone} {
		for _, op := range matrixOps {
			t.Run(subj+"/"+op.name, func(t *testing.T) {
				path := strings.NewReplacer("{s}", subj, "{cursor}", cur.NextCursor).Replace(op.path)
				body := strings.ReplaceAll(op.body, "{s}", subj)
				s := st.do(t, subj, op.method, path, body)
				all = append(all, s)
				var wantStatus int
				var wantDoc map[string]any
				switch {
				case subj == subjNone:
					wantStatus = 401
				case subj == subjStranger, subj == subjReader && op.write:
					wantStatus = 403
				case subj == subjReader:
					wantStatus, wantDoc = op.okStatus, maskedDoc
				default:
					wantStatus = op.okStatus
					if !op.write {
						wantDoc = plain
					}
				}
				if s.status != wantStatus {
					t.Fatalf("status %d, want %d: %s", s.status, wantStatus, s.body)
				}
				switch wantStatus {
				case 401:
					wantCode(t, s, "UNAUTHENTICATED")
				case 403:
					wantCode(t, s, "PERMISSION_DENIED")
				}
				if wantDoc == nil {
					return
				}
				docs := docsIn(t, s.body)
				if len(docs) == 0 {
					t.Fatalf("no document in the answer: %s", s.body)
				}
				for _, d := range docs {
					if !reflect.DeepEqual(d, wantDoc) {
						t.Fatalf("document %v, want %v", d, wantDoc)
					}
				}
			})
		}
	}

	// A client-supplied XFCC header is stripped, not believed.
	s := st.do(t, subjNone, "GET", "/v1/kv/m-kv/seed", "", "x-forwarded-client-cert", `By=spiffe://prism.local/envoy;URI=`+st.ids[subjOwner])
	all = append(all, s)
	if s.status != 401 {
		t.Fatalf("no client certificate but a forged XFCC: status %d, want 401: %s", s.status, s.body)
	}
	// Nor can a stranger's certificate claim the owner's identity by XFCC.
	s = st.do(t, subjStranger, "GET", "/v1/kv/m-kv/seed", "", "x-forwarded-client-cert", `URI=`+st.ids[subjOwner])
	all = append(all, s)
	if s.status != 403 {
		t.Fatalf("stranger with a forged XFCC: status %d, want 403: %s", s.status, s.body)
	}

	// Exactly one audit record per PII access, none for the 401s (no
	// identity: refused before the policy), and none the test did not make.
	recs := st.records(t, "m-kv", "m-ts", "m-graph")
	total := 0
	for _, s := range all {
		want := 1
		if s.status == 401 {
			want = 0
		}
		got := recs[s.requestID]
		if len(got) != want {
			t.Errorf("%s %s %s (%d): %d audit records, want %d: %+v", s.subject, s.method, s.path, s.status, len(got), want, got)
			continue
		}
		total += want
		if want == 1 {
			r := got[0]
			if r.Subject != st.ids[s.subject] {
				t.Errorf("%s %s: audit subject %q, want %q", s.method, s.path, r.Subject, st.ids[s.subject])
			}
			if wantDeny := s.status == 403; wantDeny != (r.Decision == "deny") {
				t.Errorf("%s %s %s (%d): audit decision %q", s.subject, s.method, s.path, s.status, r.Decision)
			}
		}
		delete(recs, s.requestID)
	}
	for id, r := range recs {
		t.Errorf("audit record of a request the test did not make (%s): %+v", id, r)
	}
	n, err := audit.VerifySpec(context.Background(), st.auditSpec)
	if err != nil || n != total {
		t.Fatalf("audit verify = %d, %v; want %d records, intact", n, err, total)
	}
	t.Logf("%d requests, %d audit records, chain intact", len(all), total)

	// The open namespace beside them needs no identity and is not audited.
	s = st.do(t, subjNone, "PUT", "/v1/kv/open/k", `{"email":"x@y.z"}`)
	if s.status != 200 {
		t.Fatalf("open namespace PUT without identity: %d %s", s.status, s.body)
	}
	if n2, _ := audit.VerifySpec(context.Background(), st.auditSpec); n2 != n {
		t.Fatalf("a write to a namespace without PII was audited (%d records, had %d)", n2, n)
	}
}

// TestMTLSEdgeRefusesForeignCertificates: a client certificate from another
// CA fails the handshake; it is not taken as "no identity".
func TestMTLSEdgeRefusesForeignCertificates(t *testing.T) {
	st := startMTLSStack(t, mtlsOptions{})
	other, err := certs.NewCA("evil.example", 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath, err := certs.WriteClient(other, dir, "mallory", st.ids[subjOwner])
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	tr := st.clients[subjNone].Transport.(*http.Transport).Clone()
	// Go's client sends no certificate the server's CAs did not sign;
	// force it, as a hostile client would.
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	resp, err := (&http.Client{Transport: tr}).Get(st.url + "/v1/kv/m-kv/seed")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate of a foreign CA naming the owner got status %d, want a failed handshake", resp.StatusCode)
	}
	var certErr *tls.CertificateVerificationError
	if !strings.Contains(err.Error(), "certificate") && !errors.As(err, &certErr) {
		t.Fatalf("foreign certificate: %v, want a TLS certificate error", err)
	}
}

// wantCode fails the test unless the answer is the API's error shape with
// code.
func wantCode(t *testing.T, s sent, code string) {
	t.Helper()
	var e struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(s.body, &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error body %s, want code %s with a message", s.body, code)
	}
	if e.Error.RequestID != s.requestID {
		t.Fatalf("error request_id %q, want %q", e.Error.RequestID, s.requestID)
	}
}
