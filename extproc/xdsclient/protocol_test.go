package xdsclient

import (
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"

	"github.com/prism-gw/prism/xds/resource"
)

// scriptedADS is an ADS server a test drives message by message, to check
// the client's side of the protocol exactly, including orders the real
// server avoids.
type scriptedADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	reqs  chan *discoveryv3.DeltaDiscoveryRequest
	resps chan *discoveryv3.DeltaDiscoveryResponse
	end   chan struct{} // ends the current stream
}

func (a *scriptedADS) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			a.reqs <- r
		}
	}()
	for {
		select {
		case r := <-a.resps:
			if err := s.Send(r); err != nil {
				return err
			}
		case <-a.end:
			return nil
		case <-s.Context().Done():
			return nil
		}
	}
}

func startScripted(t *testing.T) (*scriptedADS, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &scriptedADS{reqs: make(chan *discoveryv3.DeltaDiscoveryRequest, 100), resps: make(chan *discoveryv3.DeltaDiscoveryResponse), end: make(chan struct{})}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, a)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return a, lis.Addr().String()
}

func (a *scriptedADS) next(t *testing.T) *discoveryv3.DeltaDiscoveryRequest {
	t.Helper()
	select {
	case r := <-a.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request from the client within 10s")
		return nil
	}
}

func (a *scriptedADS) send(t *testing.T, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.Helper()
	select {
	case a.resps <- resp:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not take a response within 10s")
	}
}

// expectAck reads the client's answer to a response: an ACK, or a NACK
// when wantNack.
func (a *scriptedADS) expectAck(t *testing.T, typeURL, nonce string, wantNack bool) *discoveryv3.DeltaDiscoveryRequest {
	t.Helper()
	r := a.next(t)
	if r.GetTypeUrl() != typeURL || r.GetResponseNonce() != nonce || (r.GetErrorDetail() != nil) != wantNack {
		t.Fatalf("answer to %s nonce %s = type %s nonce %s error %v; want a NACK: %v", typeURL, nonce, r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail(), wantNack)
	}
	return r
}

// TestProtocolOrderAndGaps: the client names its node and subscribes to
// Backend alone, then — after ACKing its first response — to the other
// types in dependency order. A namespace that arrives before its backend is
// ACKed and held out, and comes into force with the backend.
func TestProtocolOrderAndGaps(t *testing.T) {
	ads, addr := startScripted(t)
	rec := &recorder{}
	runClient(t, rec, Options{Addr: addr, NodeID: "ep-1"})

	first := ads.next(t)
	if first.GetNode().GetId() != "ep-1" || first.GetNode().GetCluster() != resource.ClusterExtproc ||
		first.GetTypeUrl() != resource.BackendType || !slices.Equal(first.GetResourceNamesSubscribe(), []string{"*"}) {
		t.Fatalf("first request = %v; want node ep-1 of %s subscribing to every Backend", first, resource.ClusterExtproc)
	}
	ads.send(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resource.BackendType, Nonce: "1", SystemVersionInfo: "v1"})
	ads.expectAck(t, resource.BackendType, "1", false)
	for _, typeURL := range resource.PrismTypes()[1:] {
		if r := ads.next(t); r.GetTypeUrl() != typeURL || !slices.Equal(r.GetResourceNamesSubscribe(), []string{"*"}) {
			t.Fatalf("subscription = %v, want %s next", r, typeURL)
		}
	}

	ads.send(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resource.NamespaceType, Nonce: "2", SystemVersionInfo: "v1",
		Resources: []*discoveryv3.Resource{deltaResource(t, "orders", "h1", kvNamespace("orders", "lite"))}})
	ads.expectAck(t, resource.NamespaceType, "2", false)
	if got := rec.current(); len(got) != 0 {
		t.Fatalf("config with a namespace whose backend is missing = %v, want it held out", got)
	}

	ads.send(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resource.BackendType, Nonce: "3", SystemVersionInfo: "v2",
		Resources: []*discoveryv3.Resource{deltaResource(t, "lite", "h2", sqliteBackend("lite", "/x"))}})
	ads.expectAck(t, resource.BackendType, "3", false)
	if got := rec.current(); !slices.Equal(got, []string{"b:lite", "n:orders"}) {
		t.Fatalf("config once the backend arrived = %v, want [b:lite n:orders]", got)
	}

	// A resource that does not decode is NACKed and never applied.
	bad := deltaResource(t, "x", "h3", kvNamespace("x", "lite"))
	bad.Resource.Value = []byte{0xff}
	ads.send(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resource.NamespaceType, Nonce: "4", Resources: []*discoveryv3.Resource{bad}})
	if r := ads.expectAck(t, resource.NamespaceType, "4", true); r.GetErrorDetail().GetMessage() == "" {
		t.Fatal("NACK without a message")
	}
	if got := rec.current(); !slices.Equal(got, []string{"b:lite", "n:orders"}) {
		t.Fatalf("config after an undecodable response = %v", got)
	}

	// A new stream announces the versions in force, for every type.
	ads.end <- struct{}{}
	r := ads.next(t)
	if r.GetTypeUrl() != resource.BackendType || !maps.Equal(r.GetInitialResourceVersions(), map[string]string{"lite": "h2"}) {
		t.Fatalf("first request of a new stream = %v, want Backend with initial versions lite:h2", r)
	}
	ads.send(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resource.BackendType, Nonce: "1"})
	ads.expectAck(t, resource.BackendType, "1", false)
	for _, typeURL := range resource.PrismTypes()[1:] {
		r := ads.next(t)
		want := map[string]string{}
		if typeURL == resource.NamespaceType {
			want["orders"] = "h1"
		}
		if r.GetTypeUrl() != typeURL || !maps.Equal(r.GetInitialResourceVersions(), want) {
			t.Fatalf("subscription = %v, want %s with initial versions %v", r, typeURL, want)
		}
	}
}
