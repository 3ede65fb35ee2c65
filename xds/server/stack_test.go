package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/server"
	"github.com/prism-gw/prism/xds/store"
)

// stack is a running control plane on a real gRPC listener.
type stack struct {
	srv  *server.Server
	ctl  *server.Controller
	addr string
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startStack runs store, controller and ADS server until the test ends.
// Host names resolve through hosts.
func startStack(t *testing.T, hosts map[string][]netip.Addr) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "xds.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(ctx, server.Options{Logger: quietLog(), BootID: "test"})
	ctl := server.NewController(st, srv, server.ControllerOptions{
		Logger: quietLog(),
		Lookup: func(_ context.Context, host string) ([]netip.Addr, error) { return hosts[host], nil },
	})
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
	t.Cleanup(func() {
		cancel()
		g.Stop()
		st.Close()
	})
	return &stack{srv: srv, ctl: ctl, addr: lis.Addr().String()}
}

// put applies resources through the controller, as the admin API does.
func (s *stack) put(t *testing.T, msgs ...proto.Message) *desired.State {
	t.Helper()
	st, _, err := s.ctl.Update(context.Background(), func(next *desired.State) error {
		for _, m := range msgs {
			if err := next.Put(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return st
}

func (s *stack) dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// ads opens a raw ADS stream, as an extproc node would.
func (s *stack) ads(t *testing.T) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(s.dial(t)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

// recv waits for one response, failing after timeout.
func recv[T any](t *testing.T, fn func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() { v, err := fn(); ch <- result{v, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("xds stream: %v", r.err)
		}
		return r.v
	case <-time.After(10 * time.Second):
		t.Fatal("no xds response within 10s")
	}
	var zero T
	return zero
}

func sqliteBackend(name string) *configv1.Backend {
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "/data/" + name + ".db"}}}
}

func kvNamespace(name, backend string) *configv1.Namespace {
	return &configv1.Namespace{Namespace: name, Abstraction: configv1.Abstraction_KEYVALUE, Backend: backend}
}
