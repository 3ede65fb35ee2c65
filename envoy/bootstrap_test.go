package envoy_test

import (
	"net"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3" // typed_config in the bootstrap
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"                           // typed_extension_protocol_options
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/prism-gw/prism/envoy"
	"github.com/prism-gw/prism/xds/resource"
)

// parseBootstrap reads bootstrap.yaml the way Envoy does: YAML into the
// Bootstrap proto, unknown fields refused.
func parseBootstrap(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	js, err := yaml.YAMLToJSON(envoy.Bootstrap())
	if err != nil {
		t.Fatalf("bootstrap.yaml: %v", err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("bootstrap.yaml is not an envoy.config.bootstrap.v3.Bootstrap: %v", err)
	}
	return &b
}

func TestBootstrapIsValid(t *testing.T) {
	b := parseBootstrap(t)
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("bootstrap.yaml fails Envoy's proto constraints: %v", err)
	}
}

// TestBootstrapPointsADSAtPrismXDS: Envoy's whole config comes over ADS from
// a static cluster, as a node of the cluster prism xds serves Envoy types to.
func TestBootstrapPointsADSAtPrismXDS(t *testing.T) {
	b := parseBootstrap(t)
	if b.GetNode().GetCluster() != resource.ClusterEnvoy || b.GetNode().GetId() == "" {
		t.Errorf("node = %v, want an id and cluster %s", b.GetNode(), resource.ClusterEnvoy)
	}
	dyn := b.GetDynamicResources()
	if dyn.GetLdsConfig().GetAds() == nil || dyn.GetCdsConfig().GetAds() == nil {
		t.Errorf("LDS and CDS must come over ADS: lds %v, cds %v", dyn.GetLdsConfig(), dyn.GetCdsConfig())
	}
	ads := dyn.GetAdsConfig().GetGrpcServices()
	if len(ads) != 1 {
		t.Fatalf("ads_config has %d gRPC services, want 1", len(ads))
	}
	name := ads[0].GetEnvoyGrpc().GetClusterName()
	host, port := xdsEndpoint(t, b, name)
	if host == "" || port == 0 {
		t.Fatalf("ADS cluster %q has no endpoint in static_resources", name)
	}
	admin := b.GetAdmin().GetAddress().GetSocketAddress()
	if ip := net.ParseIP(admin.GetAddress()); ip == nil || !ip.IsLoopback() {
		t.Errorf("Envoy's admin listens on %s, want loopback only", admin.GetAddress())
	}
}

// xdsEndpoint returns the address of the static cluster that ADS uses.
func xdsEndpoint(t *testing.T, b *bootstrapv3.Bootstrap, cluster string) (string, uint32) {
	t.Helper()
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != cluster {
			continue
		}
		if _, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; !ok {
			t.Errorf("cluster %s does not speak HTTP/2; ADS is gRPC", cluster)
		}
		for _, l := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				return sa.GetAddress(), sa.GetPortValue()
			}
		}
	}
	return "", 0
}
