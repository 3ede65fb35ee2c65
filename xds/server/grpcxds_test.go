package server_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"
	"google.golang.org/protobuf/types/known/emptypb"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/resource"
)

// startPool runs a gRPC server that answers every method with an error
// naming the pool, so a caller can tell which pool served it.
func startPool(t *testing.T, name string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		return status.Error(codes.Aborted, "pool="+name)
	}))
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// whoServes makes n calls and counts the pools that answered.
func whoServes(t *testing.T, conn *grpc.ClientConn, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := conn.Invoke(ctx, "/prism.test.Probe/Who", &emptypb.Empty{}, &emptypb.Empty{}, grpc.WaitForReady(true))
		cancel()
		seen[status.Convert(err).Message()]++
	}
	return seen
}

// TestGRPCXDSClientFollowsEndpointWeights resolves xds:///prism-extproc with
// grpc-go's own xDS client — an independent implementation that checks LDS,
// RDS, CDS and EDS as it reads them — against the resources Prism generates,
// and follows a canary shift of pool weights.
func TestGRPCXDSClientFollowsEndpointWeights(t *testing.T) {
	blue, green := startPool(t, "blue"), startPool(t, "green")
	greenPort := mustPort(t, green)
	// green is declared by host name, as in compose, and resolved by the
	// control plane.
	s := startStack(t, map[string][]netip.Addr{"extproc-green": {netip.MustParseAddr("127.0.0.1")}})
	s.put(t,
		&configv1.ExtprocPool{Name: "blue", Endpoints: []string{blue}, Weight: 100},
		&configv1.ExtprocPool{Name: "green", Endpoints: []string{fmt.Sprintf("extproc-green:%d", greenPort)}, Weight: 0},
	)
	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "grpc-test-1", "cluster": %q}
	}`, s.addr, resource.ClusterGRPC)
	builder, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+resource.ExtprocListener,
		grpc.WithResolvers(builder), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if got := whoServes(t, conn, 20); got["pool=blue"] != 20 {
		t.Fatalf("with blue 100 / green 0, calls went to %v; want all to blue", got)
	}
	s.put(t,
		&configv1.ExtprocPool{Name: "blue", Endpoints: []string{blue}, Weight: 0},
		&configv1.ExtprocPool{Name: "green", Endpoints: []string{fmt.Sprintf("extproc-green:%d", greenPort)}, Weight: 100},
	)
	waitFor(t, func() bool { return whoServes(t, conn, 1)["pool=green"] == 1 })
	if got := whoServes(t, conn, 20); got["pool=green"] != 20 {
		t.Fatalf("after shifting to green 100 / blue 0, calls went to %v; want all to green", got)
	}
	s.put(t, &configv1.ExtprocPool{Name: "blue", Endpoints: []string{blue}, Weight: 50},
		&configv1.ExtprocPool{Name: "green", Endpoints: []string{fmt.Sprintf("extproc-green:%d", greenPort)}, Weight: 50})
	waitFor(t, func() bool { return whoServes(t, conn, 1)["pool=blue"] == 1 })
	if got := whoServes(t, conn, 100); got["pool=blue"] < 10 || got["pool=green"] < 10 {
		t.Fatalf("with blue 50 / green 50, calls went to %v; want both pools used", got)
	}
	// The client ACKed what it was sent: it accepted every resource.
	for _, n := range s.srv.Nodes() {
		if n.ID != "grpc-test-1" {
			continue
		}
		for _, ts := range n.Types {
			if !ts.InSync || ts.LastNack != nil {
				t.Errorf("grpc client %s: %+v (nack %+v)", ts.TypeURL, ts, ts.LastNack)
			}
		}
		if len(n.Types) != 4 {
			t.Errorf("grpc client subscribed to %d types, want LDS, RDS, CDS, EDS: %+v", len(n.Types), n.Types)
		}
		return
	}
	t.Fatalf("grpc client not among the nodes: %+v", s.srv.Nodes())
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return int(ap.Port())
}
