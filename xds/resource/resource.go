// Package resource is the contract between `prism xds` and its clients: the
// type URLs of Prism's own resources, the node clusters that decide what a
// node is served, and the names of the Envoy resources Prism generates.
package resource

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Type URLs of Prism resources, served to extproc nodes. Each resource is
// named by its name field (a Namespace and a Migration by their namespace).
const (
	BackendType   = "type.googleapis.com/prism.config.v1.Backend"
	PolicyType    = "type.googleapis.com/prism.config.v1.Policy"
	NamespaceType = "type.googleapis.com/prism.config.v1.Namespace"
	MigrationType = "type.googleapis.com/prism.config.v1.Migration"
)

// PrismTypes lists the Prism type URLs in dependency order: a resource only
// refers to resources of types before it. Clients should subscribe in this
// order, and the server pushes changes in it (deletes in reverse).
func PrismTypes() []string {
	return []string{BackendType, PolicyType, NamespaceType, MigrationType}
}

// IsPrismType reports whether a type URL is one of Prism's own.
func IsPrismType(typeURL string) bool {
	for _, t := range PrismTypes() {
		if t == typeURL {
			return true
		}
	}
	return false
}

// Node clusters. A node's `cluster` (in its bootstrap) decides its class;
// its `id` must be unique per instance because the admin API reports ACKs
// and NACKs per node id.
const (
	// ClusterEnvoy nodes get the listener, routes, clusters, endpoints and
	// secrets of the data path.
	ClusterEnvoy = "prism-envoy"
	// ClusterExtproc nodes get the Prism resources.
	ClusterExtproc = "prism-extproc"
	// ClusterGRPC nodes are proxyless gRPC clients (grpc-go's xds:///
	// resolver) that reach extproc through ExtprocListener.
	ClusterGRPC = "prism-grpc"
)

// Class is what kind of xDS client a node is.
type Class string

// Node classes.
const (
	ClassEnvoy   Class = "envoy"
	ClassExtproc Class = "extproc"
	ClassGRPC    Class = "grpc"
	// ClassUnknown nodes are served nothing.
	ClassUnknown Class = "unknown"
)

// Classify returns the class of a node by its cluster.
func Classify(node *corev3.Node) Class {
	switch node.GetCluster() {
	case ClusterEnvoy:
		return ClassEnvoy
	case ClusterExtproc:
		return ClassExtproc
	case ClusterGRPC:
		return ClassGRPC
	}
	return ClassUnknown
}

// Names of the Envoy resources Prism generates.
const (
	// Listener is the HTTPS listener of the data API.
	Listener = "prism-https"
	// RouteConfig holds one route per namespace.
	RouteConfig = "prism-routes"
	// ExtprocCluster is the cluster of extproc endpoints, in CDS and EDS.
	ExtprocCluster = "prism-extproc"
	// ServerSecret is Envoy's serving certificate (SDS).
	ServerSecret = "prism-server-cert"
	// ClientCASecret validates client certificates (SDS).
	ClientCASecret = "prism-client-ca"
	// ExtprocListener is the API listener proxyless gRPC clients resolve:
	// dial "xds:///prism-extproc".
	ExtprocListener = "prism-extproc"
	// ExtprocGRPCRoutes is the route configuration of ExtprocListener.
	ExtprocGRPCRoutes = "prism-extproc-grpc"
)

// Names of Envoy's HTTP filters, also the keys of per-route configuration
// and of the attributes ext_proc sends.
const (
	FilterExtProc   = "envoy.filters.http.ext_proc"
	FilterRBAC      = "envoy.filters.http.rbac"
	FilterRateLimit = "envoy.filters.http.local_ratelimit"
	FilterRouter    = "envoy.filters.http.router"
)

// RouteMetadataKey is the filter_metadata key of a namespace route; its
// struct holds "namespace" and "abstraction" and reaches extproc in the
// xds.route_metadata attribute.
const RouteMetadataKey = "prism"
