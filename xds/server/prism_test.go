package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rsrc "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/resource"
	"github.com/prism-gw/prism/xds/server"
)

var extprocNode = &corev3.Node{Id: "extproc-1", Cluster: resource.ClusterExtproc}

// namespaces decodes the Namespace resources of a response.
func namespaces(t *testing.T, resp *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, a := range resp.GetResources() {
		var ns configv1.Namespace
		if err := a.UnmarshalTo(&ns); err != nil {
			t.Fatalf("resource %s is not a Namespace: %v", a.GetTypeUrl(), err)
		}
		names = append(names, ns.GetNamespace())
	}
	slices.Sort(names)
	return names
}

func nodeType(t *testing.T, srv *server.Server, id, typeURL string) server.TypeStatus {
	t.Helper()
	for _, n := range srv.Nodes() {
		if n.ID != id {
			continue
		}
		for _, ts := range n.Types {
			if ts.TypeURL == typeURL {
				return ts
			}
		}
	}
	t.Fatalf("node %s has no status for %s in %+v", id, typeURL, srv.Nodes())
	return server.TypeStatus{}
}

// TestExtprocNodeGetsNamespacesAndNacksAreRecorded is an extproc node's life
// over a raw state-of-the-world ADS stream: the namespaces, ACK, a new
// version after a change, and a NACK that the server records while the node
// keeps its ACKed version.
func TestExtprocNodeGetsNamespacesAndNacksAreRecorded(t *testing.T) {
	s := startStack(t, nil)
	s.put(t, sqliteBackend("lite"), kvNamespace("orders", "lite"))
	stream := s.ads(t)

	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: extprocNode, TypeUrl: resource.NamespaceType}); err != nil {
		t.Fatal(err)
	}
	first := recv(t, stream.Recv)
	if got := namespaces(t, first); !slices.Equal(got, []string{"orders"}) || first.GetTypeUrl() != resource.NamespaceType {
		t.Fatalf("first response: type %s namespaces %v, want %s [orders]", first.GetTypeUrl(), got, resource.NamespaceType)
	}
	ack := &discoveryv3.DiscoveryRequest{TypeUrl: resource.NamespaceType, VersionInfo: first.GetVersionInfo(), ResponseNonce: first.GetNonce()}
	if err := stream.Send(ack); err != nil {
		t.Fatal(err)
	}

	s.put(t, kvNamespace("payments", "lite"))
	second := recv(t, stream.Recv)
	if second.GetVersionInfo() == first.GetVersionInfo() || !slices.Contains(namespaces(t, second), "payments") {
		t.Fatalf("after a PUT: version %s (was %s), namespaces %v; want a new version with payments",
			second.GetVersionInfo(), first.GetVersionInfo(), namespaces(t, second))
	}
	if ts := nodeType(t, s.srv, "extproc-1", resource.NamespaceType); ts.AckedVersion != first.GetVersionInfo() || ts.SentVersion != second.GetVersionInfo() {
		t.Fatalf("before the NACK: %+v, want acked %s sent %s", ts, first.GetVersionInfo(), second.GetVersionInfo())
	}

	const reason = "namespace payments: backend lite cannot be opened: disk full"
	nack := &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.NamespaceType, VersionInfo: first.GetVersionInfo(), ResponseNonce: second.GetNonce(),
		ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: reason},
	}
	if err := stream.Send(nack); err != nil {
		t.Fatal(err)
	}
	// The tracker sees the NACK when the server reads it; a following
	// request on the stream proves it has been read.
	waitFor(t, func() bool {
		ts := nodeType(t, s.srv, "extproc-1", resource.NamespaceType)
		return ts.LastNack != nil
	})
	ts := nodeType(t, s.srv, "extproc-1", resource.NamespaceType)
	if ts.LastNack.Version != second.GetVersionInfo() || ts.LastNack.Error != reason || ts.AckedVersion != first.GetVersionInfo() || ts.InSync {
		t.Fatalf("after the NACK: %+v (nack %+v); want the NACK of %s with its reason, acked still %s, not in sync",
			ts, ts.LastNack, second.GetVersionInfo(), first.GetVersionInfo())
	}

	// A fixed config is ACKed; the NACK stays visible as history.
	s.put(t, kvNamespace("payments", "lite"), kvNamespace("refunds", "lite"))
	third := recv(t, stream.Recv)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.NamespaceType, VersionInfo: third.GetVersionInfo(), ResponseNonce: third.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return nodeType(t, s.srv, "extproc-1", resource.NamespaceType).InSync })
	if ts := nodeType(t, s.srv, "extproc-1", resource.NamespaceType); ts.AckedVersion != third.GetVersionInfo() || ts.LastNack == nil {
		t.Fatalf("after ACKing the fix: %+v", ts)
	}
}

// TestDeltaClientSeesDeletions: state-of-the-world cannot express the
// deletion of a Prism resource (they are not full-state types), incremental
// xDS can. This is why extproc should subscribe with delta ADS.
func TestDeltaClientSeesDeletions(t *testing.T) {
	s := startStack(t, nil)
	s.put(t, sqliteBackend("lite"), kvNamespace("orders", "lite"), kvNamespace("payments", "lite"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(s.dial(t)).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, typeURL := range resource.PrismTypes() {
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: extprocNode, TypeUrl: typeURL, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{}
	// One response per type with resources (empty types may answer too).
	for len(got[resource.NamespaceType]) == 0 || len(got[resource.BackendType]) == 0 {
		resp := recv(t, stream.Recv)
		for _, r := range resp.GetResources() {
			got[resp.GetTypeUrl()] = append(got[resp.GetTypeUrl()], r.GetName())
		}
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got[resource.NamespaceType])
	if !slices.Equal(got[resource.NamespaceType], []string{"orders", "payments"}) || !slices.Equal(got[resource.BackendType], []string{"lite"}) {
		t.Fatalf("initial delta resources: %v", got)
	}
	if _, _, err := s.ctl.Update(ctx, func(st *desired.State) error { st.Delete(desired.Namespace, "payments"); return nil }); err != nil {
		t.Fatal(err)
	}
	resp := recv(t, stream.Recv)
	for resp.GetTypeUrl() != resource.NamespaceType { // initial empty answers of other types
		resp = recv(t, stream.Recv)
	}
	if !slices.Equal(resp.GetRemovedResources(), []string{"payments"}) || len(resp.GetResources()) != 0 {
		t.Fatalf("after deleting payments: %v", resp)
	}
}

// TestNodesAreServedByCluster: a node gets only what its cluster is for.
func TestNodesAreServedByCluster(t *testing.T) {
	s := startStack(t, nil)
	s.put(t, sqliteBackend("lite"), kvNamespace("orders", "lite"))
	tests := []struct {
		name    string
		node    *corev3.Node
		typeURL string
	}{
		{"envoy asks for Prism types", &corev3.Node{Id: "envoy-1", Cluster: resource.ClusterEnvoy}, resource.NamespaceType},
		{"extproc asks for Envoy types", &corev3.Node{Id: "extproc-1", Cluster: resource.ClusterExtproc}, rsrc.ListenerType},
		{"unknown cluster", &corev3.Node{Id: "x", Cluster: "somebody"}, rsrc.ClusterType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := s.ads(t)
			if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: tt.node, TypeUrl: tt.typeURL}); err != nil {
				t.Fatal(err)
			}
			_, err := stream.Recv()
			if grpcstatus.Code(err) != codes.PermissionDenied {
				t.Fatalf("Recv = %v, want PermissionDenied naming the clusters", err)
			}
		})
	}
	t.Run("envoy gets the listener", func(t *testing.T) {
		stream := s.ads(t)
		if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "envoy-1", Cluster: resource.ClusterEnvoy}, TypeUrl: rsrc.ListenerType}); err != nil {
			t.Fatal(err)
		}
		resp := recv(t, stream.Recv)
		served := s.srv.Served()
		if len(resp.GetResources()) != 1 || resp.GetVersionInfo() != served.EnvoyVersion {
			t.Fatalf("LDS: %d resources at version %s, want 1 at %s", len(resp.GetResources()), resp.GetVersionInfo(), served.EnvoyVersion)
		}
	})
}

// TestNackedVersionIsNotResent: after a NACK the server waits for the next
// version instead of resending the rejected one (which the node would
// reject again, in a loop).
func TestNackedVersionIsNotResent(t *testing.T) {
	s := startStack(t, nil)
	s.put(t, sqliteBackend("lite"))
	stream := s.ads(t)
	envoy := &corev3.Node{Id: "envoy-1", Cluster: resource.ClusterEnvoy}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: envoy, TypeUrl: rsrc.ListenerType}); err != nil {
		t.Fatal(err)
	}
	first := recv(t, stream.Recv)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{
		TypeUrl: rsrc.ListenerType, ResponseNonce: first.GetNonce(),
		ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: "listener rejected"},
	}); err != nil {
		t.Fatal(err)
	}
	next := make(chan *discoveryv3.DiscoveryResponse, 1)
	go func() {
		resp, err := stream.Recv()
		if err == nil {
			next <- resp
		}
	}()
	select {
	case resp := <-next:
		t.Fatalf("the NACKed version was sent again: %s", resp.GetVersionInfo())
	case <-time.After(300 * time.Millisecond):
	}
	s.put(t, kvNamespace("orders", "lite"))
	select {
	case resp := <-next:
		if resp.GetVersionInfo() == first.GetVersionInfo() {
			t.Fatalf("got the rejected version %s again", resp.GetVersionInfo())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no new version after a change")
	}
	if ts := nodeType(t, s.srv, "envoy-1", rsrc.ListenerType); ts.LastNack == nil || ts.LastNack.Error != "listener rejected" {
		t.Fatalf("envoy-1 LDS status %+v", ts)
	}
}
