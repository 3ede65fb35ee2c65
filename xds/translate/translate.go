// Package translate turns a model into xDS resources: Envoy's listener,
// routes, cluster, endpoints and secrets for Envoy nodes, an API listener set
// for proxyless gRPC clients, and Prism's own resources for extproc nodes.
// It is pure: values in, values out, no I/O, so that golden files pin down
// exactly what every node is sent.
package translate

import (
	"errors"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	rsrc "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/resource"
)

// Resources is everything the control plane serves for one model.
type Resources struct {
	// Version is the desired state's version.
	Version int64
	// Envoy maps Envoy type URLs to the resources of Envoy nodes.
	Envoy map[string][]types.Resource
	// GRPC maps Envoy type URLs to the resources of proxyless gRPC nodes.
	GRPC map[string][]types.Resource
	// Prism maps Prism type URLs to resources by name, for extproc nodes.
	Prism map[string]map[string]types.Resource
}

// validator is what every generated Envoy resource implements (PGV).
type validator interface {
	ValidateAll() error
}

// Translate builds the resources of a model and checks each Envoy resource
// against its proto constraints, so that an invalid resource is never
// served.
func Translate(m *model.Model) (*Resources, error) {
	cluster := extprocCluster()
	endpoints := extprocEndpoints(m.Extproc)
	r := &Resources{
		Version: m.Version,
		Envoy: map[string][]types.Resource{
			rsrc.ListenerType: {httpsListener(m.Listener)},
			rsrc.RouteType:    {routeConfig(m.Namespaces)},
			rsrc.ClusterType:  {cluster},
			rsrc.EndpointType: {endpoints},
			rsrc.SecretType:   secrets(m.Listener),
		},
		GRPC: map[string][]types.Resource{
			rsrc.ListenerType: {grpcAPIListener()},
			rsrc.RouteType:    {grpcRouteConfig()},
			rsrc.ClusterType:  {cluster},
			rsrc.EndpointType: {endpoints},
		},
		Prism: map[string]map[string]types.Resource{
			resource.BackendType:   named(m.Prism.Backends),
			resource.PolicyType:    named(m.Prism.Policies),
			resource.NamespaceType: named(m.Prism.Namespaces),
			resource.MigrationType: named(m.Prism.Migrations),
		},
	}
	var errs []error
	for _, set := range []map[string][]types.Resource{r.Envoy, r.GRPC} {
		for typeURL, list := range set {
			for _, res := range list {
				v, ok := res.(validator)
				if !ok {
					errs = append(errs, fmt.Errorf("%s: %T has no ValidateAll", typeURL, res))
					continue
				}
				if err := v.ValidateAll(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", typeURL, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("translate: generated an invalid resource: %w", err)
	}
	return r, nil
}

// named indexes Prism resources by the name they are served under.
func named[M proto.Message](list []M) map[string]types.Resource {
	out := make(map[string]types.Resource, len(list))
	for _, m := range list {
		out[desired.Name(m)] = m
	}
	return out
}
