package translate

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/prism-gw/prism/xds/resource"
)

// grpcAPIListener is what a proxyless gRPC client resolving
// xds:///prism-extproc asks for: an API listener whose routes lead to the
// same extproc cluster and endpoints Envoy uses. Tools such as the dev edge
// or a benchmark can so reach the extproc fleet, canary weights included,
// without an Envoy in between.
func grpcAPIListener() *listenerv3.Listener {
	return &listenerv3.Listener{
		Name: resource.ExtprocListener,
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(&hcmv3.HttpConnectionManager{
			StatPrefix: "prism_grpc",
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
				ConfigSource: adsSource(), RouteConfigName: resource.ExtprocGRPCRoutes,
			}},
			HttpFilters: []*hcmv3.HttpFilter{httpFilter(resource.FilterRouter, &routerv3.Router{})},
		})},
	}
}

func grpcRouteConfig() *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: resource.ExtprocGRPCRoutes,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "prism-extproc",
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:  "extproc",
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: resource.ExtprocCluster},
				}},
			}},
		}},
	}
}
