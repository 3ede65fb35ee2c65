package translate

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/resource"
)

// extprocCluster is the extproc cluster, shared by Envoy and proxyless gRPC
// clients: EDS over ADS, HTTP/2 (ext_proc is gRPC), locality weights so that
// pools can be shifted, active health checks and outlier detection so that a
// dead or failing extproc leaves rotation.
func extprocCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 resource.ExtprocCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(time.Second),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{
			LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
				LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
			},
		},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
							// Detects a silently dead connection well within
							// a request's message timeout.
							ConnectionKeepalive: &corev3.KeepaliveSettings{
								Interval: durationpb.New(30 * time.Second),
								Timeout:  durationpb.New(5 * time.Second),
							},
						},
					},
				}},
			}),
		},
		// A TCP connect check works against any extproc build; a gRPC health
		// check needs grpc.health.v1 registered on the extproc server.
		HealthChecks: []*corev3.HealthCheck{{
			Timeout:            durationpb.New(time.Second),
			Interval:           durationpb.New(5 * time.Second),
			UnhealthyThreshold: wrapperspb.UInt32(2),
			HealthyThreshold:   wrapperspb.UInt32(1),
			HealthChecker:      &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}},
		}},
		OutlierDetection: &clusterv3.OutlierDetection{
			Consecutive_5Xx:           wrapperspb.UInt32(5),
			ConsecutiveGatewayFailure: wrapperspb.UInt32(5),
			Interval:                  durationpb.New(10 * time.Second),
			BaseEjectionTime:          durationpb.New(30 * time.Second),
			MaxEjectionPercent:        wrapperspb.UInt32(50),
		},
		// Every data API request is one ext_proc stream; Envoy's default of
		// 1024 concurrent requests per cluster would cap the whole gateway.
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     wrapperspb.UInt32(10_000),
			MaxPendingRequests: wrapperspb.UInt32(10_000),
			MaxRequests:        wrapperspb.UInt32(100_000),
		}}},
	}
}

// extprocEndpoints has one locality per pool, weighted; drained pools are
// already absent from the model.
func extprocEndpoints(e model.Extproc) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: resource.ExtprocCluster}
	for _, p := range e.Pools {
		loc := &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Region: "prism", SubZone: p.Name},
			LoadBalancingWeight: wrapperspb.UInt32(p.Weight),
		}
		for _, ep := range p.Endpoints {
			loc.LbEndpoints = append(loc.LbEndpoints, &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address:  socketAddress(ep.Addr.Addr().String(), uint32(ep.Addr.Port())),
					Hostname: ep.Hostname,
				}},
			})
		}
		cla.Endpoints = append(cla.Endpoints, loc)
	}
	return cla
}

// secrets reference the certificate files on the Envoy host; Envoy watches
// the directory and reloads rotated files. Key material never travels over
// xDS.
func secrets(l model.Listener) []types.Resource {
	return []types.Resource{
		&tlsv3.Secret{
			Name: resource.ServerSecret,
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: fileSource(l.CertFile),
				PrivateKey:       fileSource(l.KeyFile),
				WatchedDirectory: &corev3.WatchedDirectory{Path: l.CertDir},
			}},
		},
		&tlsv3.Secret{
			Name: resource.ClientCASecret,
			Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa:        fileSource(l.CAFile),
				WatchedDirectory: &corev3.WatchedDirectory{Path: l.CertDir},
			}},
		},
	}
}
