package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/prism-gw/prism/xds/admin"
	"github.com/prism-gw/prism/xds/resource"
	"github.com/prism-gw/prism/xds/server"
	"github.com/prism-gw/prism/xds/store"
)

const token = "s3cret-admin-token"

type env struct {
	base    string
	xdsAddr string
	ctl     *server.Controller
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs the admin API over a real store, controller and ADS server,
// with a small body limit.
func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, admin.Options{MaxBody: 4096})
}

// startPolicies is start with the default body limit: policies with their
// tests are larger than the 4 KiB the other tests use.
func startPolicies(t *testing.T) *env {
	t.Helper()
	return startWith(t, admin.Options{})
}

// startWith is start with other options (the optional readers of the audit
// and traffic endpoints, the body limit); the token and logger are set.
func startWith(t *testing.T, opts admin.Options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "xds.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(ctx, server.Options{Logger: quietLog()})
	ctl := server.NewController(st, srv, server.ControllerOptions{Logger: quietLog()})
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	opts.Token, opts.Logger = token, quietLog()
	h := httptest.NewServer(admin.New(ctl, srv, opts))
	t.Cleanup(func() {
		h.Close()
		cancel()
		g.Stop()
		st.Close()
	})
	return &env{base: h.URL, xdsAddr: lis.Addr().String(), ctl: ctl}
}

type response struct {
	status int
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return send(t, req)
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL.Path, raw)
	}
	if resp.Header.Get("x-request-id") == "" {
		t.Errorf("%s %s: no x-request-id", req.Method, req.URL.Path)
	}
	return r
}

// errorOf returns code and message of an API.md error body.
func (r response) errorOf(t *testing.T) (string, string) {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	if !ok || e["request_id"] == "" {
		t.Fatalf("status %d without an API.md error body: %s", r.status, r.raw)
	}
	return e["code"].(string), e["message"].(string)
}

func (e *env) mustDo(t *testing.T, method, path, body string) response {
	t.Helper()
	r := e.do(t, method, path, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method, path, r.status, r.raw)
	}
	return r
}

func TestAdminNeedsTheToken(t *testing.T) {
	e := start(t)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token, token} {
		req, _ := http.NewRequest("GET", e.base+"/v1/admin/backends", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		r := send(t, req)
		if code, _ := r.errorOf(t); r.status != http.StatusUnauthorized || code != admin.CodeUnauthenticated {
			t.Errorf("Authorization %q: %d %s, want 401 UNAUTHENTICATED", auth, r.status, code)
		}
	}
	e.mustDo(t, "GET", "/v1/admin/backends", "")
}

func TestAdminLifecycle(t *testing.T) {
	e := start(t)
	r := e.mustDo(t, "PUT", "/v1/admin/backends/lite", "sqlite: {path: /data/lite.db}\n")
	if plan := r.body["plan"].(string); !strings.Contains(plan, "backend lite: create (sqlite)") {
		t.Errorf("backend plan = %q", plan)
	}
	e.mustDo(t, "PUT", "/v1/admin/backends/pg", `{"name": "pg", "postgres": {"dsn": "postgres://u:pw@db/prism"}}`)

	// backend: auto picks Postgres for keyvalue and says so.
	r = e.mustDo(t, "PUT", "/v1/admin/namespaces/orders", `
abstraction: keyvalue
backend: auto
access: {owners: ["spiffe://prism.local/orders"]}
limits: {rps: 100}
`)
	plan := r.body["plan"].(string)
	for _, want := range []string{"namespace orders: create", "backend: pg (postgres), chosen for backend: auto", "route /v1/kv/orders", "RBAC allows 1 identities", "rate limit 100 requests/s"} {
		if !strings.Contains(plan, want) {
			t.Errorf("namespace plan lacks %q:\n%s", want, plan)
		}
	}
	st := r.body["status"].(map[string]any)
	if st["changed"] != true || st["state_version"].(float64) != 3 || st["served"].(map[string]any)["state_version"].(float64) != 3 {
		t.Errorf("status = %v, want changed at state version 3, served", st)
	}
	if ns := r.body["namespace"].(map[string]any); ns["backend"] != "pg" {
		t.Errorf("stored namespace = %v, want backend pg", ns)
	}

	// The same PUT again changes nothing; auto keeps an existing namespace
	// where it is.
	r = e.mustDo(t, "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "keyvalue", "backend": "auto", "access": {"owners": ["spiffe://prism.local/orders"]}, "limits": {"rps": 100}}`)
	if r.body["status"].(map[string]any)["changed"] != false || !strings.Contains(r.body["plan"].(string), "unchanged") {
		t.Errorf("repeated PUT: %s", r.raw)
	}
	r = e.mustDo(t, "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "keyvalue", "backend": "pg", "limits": {"rps": 250}}`)
	if plan := r.body["plan"].(string); !strings.Contains(plan, `change limits: {"rps":100} → {"rps":250}`) || !strings.Contains(plan, "change access:") {
		t.Errorf("update plan = %q", plan)
	}
	// Changing a backend's DSN never shows the DSN.
	r = e.mustDo(t, "PUT", "/v1/admin/backends/pg", `{"postgres": {"dsn": "postgres://u:newpw@db/prism"}}`)
	if plan := r.body["plan"].(string); strings.Contains(plan, "newpw") || !strings.Contains(plan, "postgres (value not shown)") || !strings.Contains(plan, "namespace orders") {
		t.Errorf("backend update plan = %q", plan)
	}

	r = e.mustDo(t, "GET", "/v1/admin/namespaces/orders", "")
	if ns := r.body["namespace"].(map[string]any); ns["namespace"] != "orders" || ns["abstraction"] != "KEYVALUE" {
		t.Errorf("GET namespace = %s", r.raw)
	}
	r = e.mustDo(t, "GET", "/v1/admin/backends/pg", "")
	if users := r.body["used_by"].([]any); len(users) != 1 || users[0] != "namespace orders" {
		t.Errorf("GET backend used_by = %v", users)
	}
	r = e.mustDo(t, "GET", "/v1/admin/namespaces", "")
	if list := r.body["namespaces"].([]any); len(list) != 1 {
		t.Errorf("GET namespaces = %s", r.raw)
	}

	e.mustDo(t, "DELETE", "/v1/admin/namespaces/orders", "")
	e.mustDo(t, "DELETE", "/v1/admin/backends/pg", "")
	if r := e.do(t, "GET", "/v1/admin/namespaces/orders", ""); r.status != http.StatusNotFound {
		t.Errorf("GET a deleted namespace = %d", r.status)
	}
}

func TestAdminRefusesBadInputAndKeepsState(t *testing.T) {
	e := start(t)
	e.mustDo(t, "PUT", "/v1/admin/backends/lite", `{"sqlite": {"path": "/data/lite.db"}}`)
	e.mustDo(t, "PUT", "/v1/admin/backends/stream", `{"nats": {"url": "nats://nats:4222"}}`)
	e.mustDo(t, "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "keyvalue", "backend": "lite"}`)
	e.mustDo(t, "PUT", "/v1/admin/pools/blue", `{"endpoints": ["10.0.0.1:9001"], "weight": 100}`)
	before := e.ctl.State()

	tests := []struct {
		name, method, path, body string
		status                   int
		code, message            string
	}{
		{"malformed JSON", "PUT", "/v1/admin/namespaces/x", `{"abstraction": `, 400, "INVALID_ARGUMENT", "namespace body"},
		{"unknown field", "PUT", "/v1/admin/namespaces/x", `{"abstraction": "keyvalue", "backend": "lite", "colour": "red"}`, 400, "INVALID_ARGUMENT", "colour"},
		{"empty body", "PUT", "/v1/admin/namespaces/x", ``, 400, "INVALID_ARGUMENT", "empty document"},
		{"name not allowed", "PUT", "/v1/admin/namespaces/Orders", `{"abstraction": "keyvalue", "backend": "lite"}`, 400, "INVALID_ARGUMENT", "not a DNS label"},
		{"body names another", "PUT", "/v1/admin/namespaces/x", `{"namespace": "y", "abstraction": "keyvalue", "backend": "lite"}`, 400, "INVALID_ARGUMENT", `the body names namespace "y" but the path names "x"`},
		{"missing backend", "PUT", "/v1/admin/namespaces/x", `{"abstraction": "keyvalue", "backend": "nope"}`, 400, "INVALID_ARGUMENT", `unknown backend "nope"`},
		{"backend cannot serve", "PUT", "/v1/admin/namespaces/x", `{"abstraction": "keyvalue", "backend": "stream"}`, 400, "INVALID_ARGUMENT", "backend stream (nats) cannot serve keyvalue"},
		{"bad limits", "PUT", "/v1/admin/namespaces/x", `{"abstraction": "keyvalue", "backend": "lite", "limits": {"rps": 5000000, "request_timeout": "90s"}}`, 400, "INVALID_ARGUMENT", "limits.rps 5000000 is over the maximum of 1000000; namespace x: limits.request_timeout 1m30s is over the maximum of 30s"},
		{"auto finds nothing", "PUT", "/v1/admin/namespaces/x", `{"abstraction": "graph", "backend": "auto", "estimated_write_rps": 5000}`, 400, "INVALID_ARGUMENT", "backend auto found no declared backend for graph"},
		{"bad backend", "PUT", "/v1/admin/backends/k", `{"kafka": {"brokers": ["nohost"]}}`, 400, "INVALID_ARGUMENT", `kafka broker "nohost" is not host:port`},
		{"backend without driver", "PUT", "/v1/admin/backends/k", `{"name": "k"}`, 400, "INVALID_ARGUMENT", "no driver"},
		{"too large", "PUT", "/v1/admin/namespaces/x", `{"abstraction": "keyvalue", "backend": "lite", "schema": {"pii": [` + strings.Repeat(`{"path": "a", "class": "email"},`, 200) + `]}}`, 413, "TOO_LARGE", "over 4096 bytes"},
		{"moving data by PUT", "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "keyvalue", "backend": "auto"}`, 200, "", ""},
		{"changing the abstraction", "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "graph", "backend": "lite"}`, 409, "FAILED_PRECONDITION", "its abstraction cannot change"},
		{"delete a backend in use", "DELETE", "/v1/admin/backends/lite", ``, 409, "FAILED_PRECONDITION", "backend lite is in use by namespace orders"},
		{"delete the last pool", "DELETE", "/v1/admin/pools/blue", ``, 409, "FAILED_PRECONDITION", "last pool with weight"},
		{"drain every pool", "PUT", "/v1/admin/pools/blue", `{"endpoints": ["10.0.0.1:9001"], "weight": 0}`, 400, "INVALID_ARGUMENT", "every extproc pool has weight 0"},
		{"delete what is not there", "DELETE", "/v1/admin/namespaces/ghost", ``, 404, "NOT_FOUND", "namespace ghost does not exist"},
		{"wrong method", "POST", "/v1/admin/namespaces/x", `{}`, 405, "METHOD_NOT_ALLOWED", "POST"},
		{"unknown path", "GET", "/v1/admin/widgets", ``, 404, "NOT_FOUND", "no admin API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.body)
			if tt.status == 200 {
				// backend: auto on an existing namespace keeps its backend: no-op.
				if r.status != 200 || r.body["status"].(map[string]any)["changed"] != false {
					t.Fatalf("%d %s", r.status, r.raw)
				}
			} else {
				code, msg := r.errorOf(t)
				if r.status != tt.status || code != tt.code || !strings.Contains(msg, tt.message) {
					t.Fatalf("%s %s = %d %s %q\nwant %d %s mentioning %q", tt.method, tt.path, r.status, code, msg, tt.status, tt.code, tt.message)
				}
			}
			if after := e.ctl.State(); after.Version != before.Version {
				t.Fatalf("state changed from version %d to %d", before.Version, after.Version)
			}
		})
	}
	// ?force=true switches a namespace's backend knowingly.
	r := e.do(t, "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "timeseries", "backend": "stream"}`)
	if code, _ := r.errorOf(t); r.status != 409 || code != "FAILED_PRECONDITION" {
		t.Fatalf("moving orders without force = %d %s", r.status, r.raw)
	}
	e.mustDo(t, "PUT", "/v1/admin/backends/lite2", `{"sqlite": {"path": "/data/lite2.db"}}`)
	r = e.do(t, "PUT", "/v1/admin/namespaces/orders", `{"abstraction": "keyvalue", "backend": "lite2"}`)
	if code, msg := r.errorOf(t); r.status != 409 || !strings.Contains(msg, "leave its data behind") || code != "FAILED_PRECONDITION" {
		t.Fatalf("moving orders without force = %d %s", r.status, r.raw)
	}
	e.mustDo(t, "PUT", "/v1/admin/namespaces/orders?force=true", `{"abstraction": "keyvalue", "backend": "lite2"}`)
}

// TestAdminShowsNacks: what an extproc node rejects is visible to the
// operator, with the node's reason.
func TestAdminShowsNacks(t *testing.T) {
	e := start(t)
	e.mustDo(t, "PUT", "/v1/admin/backends/lite", `{"sqlite": {"path": "/data/lite.db"}}`)
	conn, err := grpc.NewClient(e.xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "extproc-7", Cluster: resource.ClusterExtproc}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.BackendType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resource.BackendType, ResponseNonce: resp.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: "backend lite: cannot open /data/lite.db: read-only file system"},
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.mustDo(t, "GET", "/v1/admin/nodes", "")
		if strings.Contains(r.raw, "read-only file system") {
			nodes := r.body["nodes"].([]any)
			n := nodes[0].(map[string]any)
			ts := n["types"].([]any)[0].(map[string]any)
			if n["id"] != "extproc-7" || n["class"] != "extproc" || ts["in_sync"] != false || ts["last_nack"].(map[string]any)["version"] != resp.GetVersionInfo() {
				t.Fatalf("nodes = %s", r.raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NACK did not show in GET /v1/admin/nodes: %s", r.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The operator fixes the backend through the admin API; the node gets a
	// new version on its stream and ACKs it.
	r := e.mustDo(t, "PUT", "/v1/admin/backends/lite", `{"sqlite": {"path": "/data/lite-rw.db"}}`)
	if n := r.body["status"].(map[string]any)["nodes"].(map[string]any)["extproc"].(map[string]any); n["connected"].(float64) != 1 || n["in_sync"].(float64) != 0 {
		t.Fatalf("status.nodes.extproc right after the PUT = %v, want 1 connected, not yet in sync", n)
	}
	fixed, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if fixed.GetVersionInfo() == resp.GetVersionInfo() || !strings.Contains(fixed.GetResources()[0].String(), "lite-rw.db") {
		t.Fatalf("after the PUT the node got %v", fixed)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.BackendType, VersionInfo: fixed.GetVersionInfo(), ResponseNonce: fixed.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	for {
		r := e.mustDo(t, "GET", "/v1/admin/nodes", "")
		ts := r.body["nodes"].([]any)[0].(map[string]any)["types"].([]any)[0].(map[string]any)
		if ts["in_sync"] == true && ts["acked_version"] == fixed.GetVersionInfo() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ACK of the fix did not show: %s", r.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
