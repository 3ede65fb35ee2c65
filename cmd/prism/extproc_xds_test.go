package main

import (
	"context"
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

	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/xdsclient"
	"github.com/prism-gw/prism/xds/resource"
)

// The ext_proc server is what the xDS client applies to.
var _ xdsclient.Applier = (*extproc.Server)(nil)

// xdsStack is `prism xds` and `prism extproc --xds` in-process on loopback
// ports, with a dev edge in front of extproc: the real ADS, admin API,
// ext_proc gRPC and data API, each of which a test can stop and restart.
type xdsStack struct {
	t        *testing.T
	dir      string
	xdsAddr  string
	store    string
	cache    string
	admin    string
	stopXDS  func() error
	edge     string
	grpcAddr string // extproc's ext_proc listener
	stopProc func()
	nodeID   string
}

func newXDSStack(t *testing.T) *xdsStack {
	dir := t.TempDir()
	s := &xdsStack{
		t: t, dir: dir, xdsAddr: freeAddr(t),
		store: filepath.Join(dir, "xds", "xds.db"), cache: filepath.Join(dir, "extproc", "xds-cache.json"),
		nodeID: "extproc-test",
	}
	t.Cleanup(func() {
		if s.stopProc != nil {
			s.stopProc()
		}
		if s.stopXDS != nil {
			s.stopXDS()
		}
	})
	return s
}

// startControlPlane runs prism xds on the stack's ADS address and store.
func (s *xdsStack) startControlPlane() {
	s.t.Helper()
	s.admin, s.stopXDS = startXDS(s.t, "--xds", s.xdsAddr, "--store", s.store)
}

func (s *xdsStack) stopControlPlane() {
	s.t.Helper()
	if err := s.stopXDS(); err != nil {
		s.t.Fatalf("prism xds: %v", err)
	}
	s.stopXDS = nil
}

// startExtproc runs prism extproc --xds and a dev edge in front of it, and
// waits until extproc takes traffic — which it does only with a config.
func (s *xdsStack) startExtproc() {
	s.t.Helper()
	grpcAddr := freeAddr(s.t)
	s.grpcAddr = grpcAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runExtproc(ctx, []string{"--grpc", grpcAddr, "--xds", s.xdsAddr, "--node-id", s.nodeID,
			"--xds-cache", s.cache, "--log-level", "warn",
			"--kek-file", filepath.Join(s.dir, "extproc", "kek"), "--keys-file", filepath.Join(s.dir, "extproc", "keys.json"),
			"--audit-log", filepath.Join(s.dir, "extproc", "audit.log")}, io.Discard)
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", grpcAddr); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			s.t.Fatalf("prism extproc exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			s.t.Fatal("prism extproc did not take traffic within 10s")
		}
	}
	conn, err := dialExtproc(grpcAddr)
	if err != nil {
		s.t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	edge := httptest.NewServer(devedge.New(extprocv3.NewExternalProcessorClient(conn), devedge.Options{Logger: quiet}))
	s.edge = edge.URL
	s.stopProc = func() {
		edge.Close()
		conn.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				s.t.Errorf("prism extproc: %v", err)
			}
		case <-time.After(20 * time.Second):
			s.t.Error("prism extproc did not stop within 20s of cancel")
		}
		s.stopProc = nil
	}
}

// put applies a resource through the admin API.
func (s *xdsStack) put(kind, name, body string) {
	s.t.Helper()
	if code, out := adminDo(s.t, "PUT", s.admin+"/v1/admin/"+kind+"/"+name, "", body); code != http.StatusOK {
		s.t.Fatalf("PUT %s/%s = %d %v", kind, name, code, out)
	}
}

// kv sends one data API request through the dev edge.
func (s *xdsStack) kv(method, path, body string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.edge+"/v1/kv/"+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *xdsStack) mustKV(method, path, body string, want int) string {
	s.t.Helper()
	code, got := s.kv(method, path, body)
	if code != want {
		s.t.Fatalf("%s %s = %d %s, want %d", method, path, code, got, want)
	}
	return got
}

// waitServed polls until a PUT to a namespace succeeds: the namespace has
// reached extproc.
func (s *xdsStack) waitServed(ns string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := s.kv("PUT", ns+"/probe", "x")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("namespace %s not served within 10s: last answer %d %s", ns, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeType is the admin API's view of this stack's extproc for one type.
func (s *xdsStack) nodeType(typeURL string) (connected bool, ts map[string]any) {
	s.t.Helper()
	code, out := adminDo(s.t, "GET", s.admin+"/v1/admin/nodes", "", "")
	if code != http.StatusOK {
		s.t.Fatalf("GET nodes = %d %v", code, out)
	}
	nodes, _ := out["nodes"].([]any)
	for _, n := range nodes {
		n := n.(map[string]any)
		if n["id"] != s.nodeID {
			continue
		}
		if n["cluster"] != resource.ClusterExtproc {
			s.t.Fatalf("node %s has cluster %v, want %s", s.nodeID, n["cluster"], resource.ClusterExtproc)
		}
		types, _ := n["types"].([]any)
		for _, t := range types {
			if t := t.(map[string]any); t["type_url"] == typeURL {
				return n["connected"] == true, t
			}
		}
		return n["connected"] == true, nil
	}
	return false, nil
}

func (s *xdsStack) waitNode(what, typeURL string, cond func(connected bool, ts map[string]any) bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		connected, ts := s.nodeType(typeURL)
		if ts != nil && cond(connected, ts) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("node %s within 10s: %s; last status connected=%v %v", s.nodeID, what, connected, ts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seed declares backend lite and namespace orders on it.
func (s *xdsStack) seed() {
	s.t.Helper()
	s.put("backends", "lite", "sqlite: {path: "+filepath.Join(s.dir, "data", "lite.db")+"}\n")
	s.put("namespaces", "orders", "abstraction: keyvalue\nbackend: lite\n")
}

// TestExtprocServesWhatTheControlPlaneSends: a namespace put through the
// admin API is served by extproc, and the node reports every type in sync.
func TestExtprocServesWhatTheControlPlaneSends(t *testing.T) {
	s := newXDSStack(t)
	s.startControlPlane()
	s.seed()
	s.startExtproc()
	s.mustKV("PUT", "orders/o-1", "hello", http.StatusOK)
	if got := s.mustKV("GET", "orders/o-1", "", http.StatusOK); got != "hello" {
		t.Fatalf("GET orders/o-1 = %q, want hello", got)
	}

	s.put("namespaces", "payments", "abstraction: keyvalue\nbackend: lite\n")
	s.waitServed("payments")
	for _, typeURL := range resource.PrismTypes() {
		s.waitNode("connected and in sync", typeURL, func(connected bool, ts map[string]any) bool {
			return connected && ts["in_sync"] == true
		})
	}
}

// TestExtprocNacksAConfigItCannotApply: a backend whose SQLite file cannot
// be created passes the control plane's validation but not extproc's
// Apply. The NACK and its reason show in the admin API, the namespaces in
// force keep serving, and fixing the backend brings the rejected namespace
// in.
func TestExtprocNacksAConfigItCannotApply(t *testing.T) {
	s := newXDSStack(t)
	s.startControlPlane()
	s.seed()
	s.startExtproc()
	s.mustKV("PUT", "orders/o-1", "hello", http.StatusOK)

	notDir := filepath.Join(s.dir, "a-file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.put("backends", "broken", "sqlite: {path: "+filepath.Join(notDir, "kv.db")+"}\n")
	s.put("namespaces", "reports", "abstraction: keyvalue\nbackend: broken\n")
	s.waitNode("NACKs the Namespace type naming the backend", resource.NamespaceType, func(_ bool, ts map[string]any) bool {
		nack, _ := ts["last_nack"].(map[string]any)
		msg, _ := nack["error"].(string)
		return strings.Contains(msg, "broken") && strings.Contains(msg, "not a directory") && ts["in_sync"] == false
	})
	if got := s.mustKV("GET", "orders/o-1", "", http.StatusOK); got != "hello" {
		t.Fatalf("GET orders/o-1 after the NACK = %q, want hello", got)
	}
	s.mustKV("PUT", "reports/r-1", "x", http.StatusNotFound)

	s.put("backends", "broken", "sqlite: {path: "+filepath.Join(s.dir, "data", "fixed.db")+"}\n")
	s.waitServed("reports")
	s.waitNode("in sync again after the fix", resource.NamespaceType, func(_ bool, ts map[string]any) bool {
		return ts["in_sync"] == true && ts["last_nack"] != nil
	})
	if got := s.mustKV("GET", "orders/o-1", "", http.StatusOK); got != "hello" {
		t.Fatalf("GET orders/o-1 after the fix = %q, want hello", got)
	}
}

// TestExtprocKeepsServingWhileTheControlPlaneIsDown: stopping the control
// plane changes nothing on the data path; once it is back, changes arrive
// again.
func TestExtprocKeepsServingWhileTheControlPlaneIsDown(t *testing.T) {
	s := newXDSStack(t)
	s.startControlPlane()
	s.seed()
	s.startExtproc()
	s.mustKV("PUT", "orders/o-1", "hello", http.StatusOK)

	s.stopControlPlane()
	time.Sleep(200 * time.Millisecond) // the stream has failed, reconnects are failing
	if got := s.mustKV("GET", "orders/o-1", "", http.StatusOK); got != "hello" {
		t.Fatalf("GET orders/o-1 without the control plane = %q, want hello", got)
	}
	s.mustKV("PUT", "orders/o-2", "while away", http.StatusOK)

	s.startControlPlane()
	s.put("namespaces", "payments", "abstraction: keyvalue\nbackend: lite\n")
	s.waitServed("payments")
	if got := s.mustKV("GET", "orders/o-2", "", http.StatusOK); got != "while away" {
		t.Fatalf("GET orders/o-2 = %q", got)
	}
}

// TestExtprocRestartsFromTheCacheWhileTheControlPlaneIsDown: an extproc
// restarted during an outage serves the config it last applied, from its
// cache file.
func TestExtprocRestartsFromTheCacheWhileTheControlPlaneIsDown(t *testing.T) {
	s := newXDSStack(t)
	s.startControlPlane()
	s.seed()
	s.startExtproc()
	s.mustKV("PUT", "orders/o-1", "hello", http.StatusOK)
	s.stopProc()
	s.stopControlPlane()
	if fi, err := os.Stat(s.cache); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file %s: %v (mode %v), want it written with mode 0600", s.cache, err, fi.Mode().Perm())
	}

	start := time.Now()
	s.startExtproc()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to serve from the cache; a refused connection should not wait", d)
	}
	if got := s.mustKV("GET", "orders/o-1", "", http.StatusOK); got != "hello" {
		t.Fatalf("GET orders/o-1 from the cached config = %q, want hello", got)
	}

	// And it follows the control plane once it is back.
	s.startControlPlane()
	s.put("namespaces", "payments", "abstraction: keyvalue\nbackend: lite\n")
	s.waitServed("payments")
}

// TestExtprocRefusesConfigWithXDS: with --xds the namespaces come from the
// control plane; a --config as well is a mistake worth stopping on.
func TestExtprocRefusesConfigWithXDS(t *testing.T) {
	err := runExtproc(context.Background(), []string{"--xds", "127.0.0.1:1", "--config", "prism.yaml"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exclusive") {
		t.Fatalf("runExtproc --xds --config = %v, want an error", err)
	}
}
