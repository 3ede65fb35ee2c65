package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/prism-gw/prism/xds/resource"
)

// TestXDSMetricsAfterKnownTraffic scrapes the control plane's metrics after
// an extproc node got two versions, ACKed the first and NACKed the second.
func TestXDSMetricsAfterKnownTraffic(t *testing.T) {
	s := startStack(t, nil)
	reg := prometheus.NewRegistry()
	if err := s.srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	s.put(t, sqliteBackend("lite"), kvNamespace("orders", "lite"))
	stream := s.ads(t)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: extprocNode, TypeUrl: resource.NamespaceType}); err != nil {
		t.Fatal(err)
	}
	first := recv(t, stream.Recv)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.NamespaceType, VersionInfo: first.GetVersionInfo(), ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	s.put(t, kvNamespace("payments", "lite"))
	second := recv(t, stream.Recv)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resource.NamespaceType, VersionInfo: first.GetVersionInfo(), ResponseNonce: second.GetNonce(),
		ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: "rejected"},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return nodeType(t, s.srv, "extproc-1", resource.NamespaceType).LastNack != nil })

	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scrape.Close()
	resp, err := http.Get(scrape.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	typ := resource.NamespaceType[strings.LastIndexByte(resource.NamespaceType, '/')+1:]
	for _, want := range []string{
		`prism_xds_pushes_total{type="` + typ + `"} 2`,
		`prism_xds_acks_total{type="` + typ + `"} 1`,
		`prism_xds_nacks_total{type="` + typ + `"} 1`,
		`prism_xds_connected_nodes{class="extproc"} 1`,
		`prism_xds_node_config_version_info{node="extproc-1",type="` + typ + `",version="` + first.GetVersionInfo() + `"} 1`,
		`prism_xds_node_in_sync{node="extproc-1",type="` + typ + `"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}
