package xdsclient

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/server"
	"github.com/prism-gw/prism/xds/store"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// controlPlane is the real `prism xds` core — store, controller, ADS
// server — on a loopback port, which can be stopped and started again on
// the same address and store.
type controlPlane struct {
	t         *testing.T
	storePath string
	addr      string
	// sent counts the resources in every delta response, to check what a
	// reconnecting client is sent again.
	sent atomic.Int64

	mu   sync.Mutex
	srv  *server.Server
	ctl  *server.Controller
	stop func()
}

func newControlPlane(t *testing.T) *controlPlane {
	cp := &controlPlane{t: t, storePath: filepath.Join(t.TempDir(), "xds.db"), addr: "127.0.0.1:0"}
	cp.start()
	t.Cleanup(cp.shutdown)
	return cp
}

// start serves the stored state on cp.addr (a new port the first time).
func (cp *controlPlane) start() {
	cp.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, cp.storePath)
	if err != nil {
		cp.t.Fatal(err)
	}
	srv := server.New(ctx, server.Options{Logger: quietLog()})
	ctl := server.NewController(st, srv, server.ControllerOptions{Logger: quietLog()})
	if err := ctl.Start(ctx); err != nil {
		cp.t.Fatal(err)
	}
	var lis net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if lis, err = net.Listen("tcp", cp.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		cp.t.Fatalf("control plane listener: %v", err)
	}
	g := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, countingStream{ServerStream: ss, n: &cp.sent})
	}))
	srv.Register(g)
	go g.Serve(lis)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.addr, cp.srv, cp.ctl = lis.Addr().String(), srv, ctl
	cp.stop = func() {
		cancel() // ends the xDS streams
		g.Stop()
		st.Close()
	}
}

// shutdown stops the control plane; the clients see their streams end.
func (cp *controlPlane) shutdown() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stop != nil {
		cp.stop()
		cp.stop = nil
	}
}

type countingStream struct {
	grpc.ServerStream
	n *atomic.Int64
}

func (s countingStream) SendMsg(m any) error {
	if r, ok := m.(*discoveryv3.DeltaDiscoveryResponse); ok {
		s.n.Add(int64(len(r.GetResources())))
	}
	return s.ServerStream.SendMsg(m)
}

// update changes the desired state as the admin API does.
func (cp *controlPlane) update(change func(*desired.State) error) {
	cp.t.Helper()
	cp.mu.Lock()
	ctl := cp.ctl
	cp.mu.Unlock()
	if _, _, err := ctl.Update(context.Background(), change); err != nil {
		cp.t.Fatalf("control plane update: %v", err)
	}
}

func (cp *controlPlane) put(msgs ...proto.Message) {
	cp.t.Helper()
	cp.update(func(s *desired.State) error {
		for _, m := range msgs {
			if err := s.Put(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// node returns the status the control plane keeps of a node.
func (cp *controlPlane) node(id string) (server.NodeStatus, bool) {
	cp.mu.Lock()
	srv := cp.srv
	cp.mu.Unlock()
	for _, n := range srv.Nodes() {
		if n.ID == id {
			return n, true
		}
	}
	return server.NodeStatus{}, false
}

// typeStatus returns a node's status for one type URL.
func (cp *controlPlane) typeStatus(id, typeURL string) server.TypeStatus {
	n, _ := cp.node(id)
	for _, ts := range n.Types {
		if ts.TypeURL == typeURL {
			return ts
		}
	}
	return server.TypeStatus{}
}

// recorder is an Applier that records what it is given and can refuse.
type recorder struct {
	mu    sync.Mutex
	calls [][]string // per call: "b:<name>" and "n:<name>" entries
	fail  func(backends []*configv1.Backend, namespaces []*configv1.Namespace) error
}

func (r *recorder) Apply(_ context.Context, cfg *configv1.DevConfig) error {
	backends, namespaces := cfg.GetBackends(), cfg.GetNamespaces()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(backends, namespaces); err != nil {
			return err
		}
	}
	var call []string
	for _, b := range backends {
		call = append(call, "b:"+b.GetName())
	}
	for _, n := range namespaces {
		call = append(call, "n:"+n.GetNamespace())
	}
	r.calls = append(r.calls, call)
	return nil
}

// current is the last config accepted, as "b:" and "n:" names.
func (r *recorder) current() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return slices.Clone(r.calls[len(r.calls)-1])
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) setFail(f func([]*configv1.Backend, []*configv1.Namespace) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

// runClient runs a client until the test ends.
func runClient(t *testing.T, a Applier, opts Options) *Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLog()
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	c, err := New(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	})
	return c
}

// waitFor polls cond for up to 10s, failing with what describes the state.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitReady(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the client was not ready within 10s")
	}
}

func sqliteBackend(name, path string) *configv1.Backend {
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: path}}}
}

func kvNamespace(name, backend string) *configv1.Namespace {
	return &configv1.Namespace{Namespace: name, Abstraction: configv1.Abstraction_KEYVALUE, Backend: backend}
}

type serverTypeStatus = server.TypeStatus
