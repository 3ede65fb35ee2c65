// Package server is the xDS side of `prism xds`: go-control-plane's ADS
// server over a SnapshotCache for Envoy types and one LinearCache per Prism
// type, combined by a MuxCache; callbacks that track ACKs and NACKs per node;
// and the controller that keeps the caches in step with the desired state.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/xds/resource"
	"github.com/prism-gw/prism/xds/translate"
)

// Options configure a Server. The zero value works.
type Options struct {
	Logger *slog.Logger
	// BootID prefixes the versions of Prism resources so that versions from
	// an earlier run of the process are never mistaken for current ones.
	// Default: the start time.
	BootID string
	// NodeRetention is how long a disconnected node stays in Nodes.
	// Default 1h.
	NodeRetention time.Duration
}

// Server serves xDS.
type Server struct {
	log       *slog.Logger
	snapshots cachev3.SnapshotCache
	linear    map[string]*cachev3.LinearCache
	xds       serverv3.Server
	nodes     *tracker

	mu     sync.Mutex
	pushed *translate.Resources
	served Served
}

// Served names what the Server currently serves.
type Served struct {
	// StateVersion is the desired state version of the last push.
	StateVersion int64 `json:"state_version"`
	// EnvoyVersion and GRPCVersion are the snapshot versions Envoy nodes and
	// proxyless gRPC nodes get: "<state version>-<hash of the resources>".
	EnvoyVersion string `json:"envoy_version"`
	GRPCVersion  string `json:"grpc_version"`
}

// Snapshot cache keys: every node of a class shares one snapshot.
const (
	keyEnvoy = string(resource.ClassEnvoy)
	keyGRPC  = string(resource.ClassGRPC)
)

// classHash makes the SnapshotCache key a node by its class, not its id:
// Envoy nodes share one snapshot, proxyless gRPC nodes another.
type classHash struct{}

// ID implements cachev3.NodeHash.
func (classHash) ID(n *corev3.Node) string { return string(resource.Classify(n)) }

// New makes a Server; it serves nothing until the first Push. ctx bounds
// the lifetime of the xDS streams.
func New(ctx context.Context, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BootID == "" {
		opts.BootID = fmt.Sprintf("%x", time.Now().UnixNano())
	}
	if opts.NodeRetention <= 0 {
		opts.NodeRetention = time.Hour
	}
	lg := cpLogger{opts.Logger}
	s := &Server{
		log:       opts.Logger,
		snapshots: cachev3.NewSnapshotCache(true, classHash{}, lg),
		linear:    map[string]*cachev3.LinearCache{},
		nodes:     newTracker(opts.Logger, opts.NodeRetention),
	}
	caches := map[string]cachev3.Cache{keySnapshot: s.snapshots, keyDenied: denied{}}
	for _, typeURL := range resource.PrismTypes() {
		lc := cachev3.NewLinearCache(typeURL, cachev3.WithVersionPrefix(opts.BootID+"-"), cachev3.WithLogger(lg))
		s.linear[typeURL] = lc
		caches[typeURL] = lc
	}
	mux := &cachev3.MuxCache{
		Classify: func(r *cachev3.Request) string { return classify(r.GetNode(), r.GetTypeUrl()) },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string {
			return classify(r.GetNode(), r.GetTypeUrl())
		},
		Caches: caches,
	}
	s.xds = serverv3.NewServer(ctx, mux, s.nodes)
	return s
}

// MuxCache keys besides the Prism type URLs.
const (
	keySnapshot = "snapshot"
	keyDenied   = "denied"
)

// classify routes a request to a cache: Prism types to their LinearCache for
// extproc nodes only; Envoy types to the SnapshotCache for Envoy and gRPC
// nodes; anything else is refused with a reason.
func classify(n *corev3.Node, typeURL string) string {
	class := resource.Classify(n)
	switch {
	case resource.IsPrismType(typeURL) && class == resource.ClassExtproc:
		return typeURL
	case !resource.IsPrismType(typeURL) && (class == resource.ClassEnvoy || class == resource.ClassGRPC):
		return keySnapshot
	}
	return keyDenied
}

// denied refuses a watch with a reason the client can read, rather than
// MuxCache's "no cache defined for key".
type denied struct{}

func deniedErr(n *corev3.Node, typeURL string) error {
	return status.Errorf(codes.PermissionDenied,
		"prism xds: node %q of cluster %q may not subscribe to %s (clusters: %s gets Envoy types, %s gets Prism types, %s gets the extproc API listener)",
		n.GetId(), n.GetCluster(), typeURL, resource.ClusterEnvoy, resource.ClusterExtproc, resource.ClusterGRPC)
}

// CreateWatch implements cachev3.Cache by refusing.
func (denied) CreateWatch(r *cachev3.Request, _ cachev3.Subscription, _ chan cachev3.Response) (func(), error) {
	return nil, deniedErr(r.GetNode(), r.GetTypeUrl())
}

// CreateDeltaWatch implements cachev3.Cache by refusing.
func (denied) CreateDeltaWatch(r *cachev3.DeltaRequest, _ cachev3.Subscription, _ chan cachev3.DeltaResponse) (func(), error) {
	return nil, deniedErr(r.GetNode(), r.GetTypeUrl())
}

// Fetch implements cachev3.Cache by refusing.
func (denied) Fetch(_ context.Context, r *cachev3.Request) (cachev3.Response, error) {
	return nil, deniedErr(r.GetNode(), r.GetTypeUrl())
}

// Register adds the ADS service (and the per-type discovery services, for
// clients that do not aggregate) to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
	secretservice.RegisterSecretDiscoveryServiceServer(g, s.xds)
}

// Nodes reports every xDS client seen recently with its ACKed and NACKed
// versions.
func (s *Server) Nodes() []NodeStatus { return s.nodes.Nodes() }

// Served reports what the Server currently serves.
func (s *Server) Served() Served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Push makes r the served resources. Resources of an older state version
// than the last push are ignored, so that concurrent pushes cannot roll
// back. Prism resources are updated in dependency order and deleted in
// reverse, so a client never sees a reference to something it lacks.
func (s *Server) Push(ctx context.Context, r *translate.Resources) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pushed != nil && r.Version < s.pushed.Version {
		s.log.Debug("xds push skipped: older than the one served", "version", r.Version, "served", s.pushed.Version)
		return nil
	}
	envoyVersion, err := snapshotVersion(r.Version, r.Envoy)
	if err != nil {
		return err
	}
	grpcVersion, err := snapshotVersion(r.Version, r.GRPC)
	if err != nil {
		return err
	}
	if err := s.setSnapshot(ctx, keyEnvoy, envoyVersion, r.Envoy, true); err != nil {
		return err
	}
	// go-control-plane's consistency check does not follow an API listener
	// to its routes; translate's tests check that set instead.
	if err := s.setSnapshot(ctx, keyGRPC, grpcVersion, r.GRPC, false); err != nil {
		return err
	}
	types := resource.PrismTypes()
	for _, typeURL := range types {
		if upd := s.changed(typeURL, r.Prism[typeURL]); len(upd) > 0 {
			if err := s.linear[typeURL].UpdateResources(upd, nil); err != nil {
				return fmt.Errorf("xds push %s: %w", typeURL, err)
			}
		}
	}
	for _, typeURL := range slices.Backward(types) {
		if del := s.removed(typeURL, r.Prism[typeURL]); len(del) > 0 {
			if err := s.linear[typeURL].UpdateResources(nil, del); err != nil {
				return fmt.Errorf("xds push %s: %w", typeURL, err)
			}
		}
	}
	if s.served.EnvoyVersion != envoyVersion || s.served.StateVersion != r.Version {
		s.log.Info("xds pushed", "state_version", r.Version, "envoy_version", envoyVersion, "grpc_version", grpcVersion)
	}
	s.pushed = r
	s.served = Served{StateVersion: r.Version, EnvoyVersion: envoyVersion, GRPCVersion: grpcVersion}
	return nil
}

// setSnapshot replaces one class's snapshot, optionally after checking that
// every RDS and EDS resource the listeners and clusters name is in it.
func (s *Server) setSnapshot(ctx context.Context, key, version string, res map[string][]types.Resource, consistent bool) error {
	snap, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		return fmt.Errorf("xds snapshot %s: %w", key, err)
	}
	if err := snap.Consistent(); consistent && err != nil {
		return fmt.Errorf("xds snapshot %s is inconsistent: %w", key, err)
	}
	if err := s.snapshots.SetSnapshot(ctx, key, snap); err != nil {
		return fmt.Errorf("xds snapshot %s: %w", key, err)
	}
	return nil
}

// changed lists the resources of a type that are new or differ from the
// cache, so that unchanged resources are not re-sent.
func (s *Server) changed(typeURL string, want map[string]types.Resource) map[string]types.Resource {
	have := s.linear[typeURL].GetResources()
	upd := map[string]types.Resource{}
	for name, res := range want {
		if cur, ok := have[name]; !ok || !proto.Equal(cur, res) {
			upd[name] = res
		}
	}
	return upd
}

func (s *Server) removed(typeURL string, want map[string]types.Resource) []string {
	var del []string
	for name := range s.linear[typeURL].GetResources() {
		if _, ok := want[name]; !ok {
			del = append(del, name)
		}
	}
	slices.Sort(del)
	return del
}

// snapshotVersion is "<state version>-<hash>": the hash changes whenever the
// resources do (a new endpoint address, a new Prism build translating
// differently), the state version tells operators which state it is.
func snapshotVersion(stateVersion int64, res map[string][]types.Resource) (string, error) {
	h := sha256.New()
	for _, typeURL := range slices.Sorted(maps.Keys(res)) {
		h.Write([]byte(typeURL))
		for _, r := range res[typeURL] {
			b, err := cachev3.MarshalResource(r)
			if err != nil {
				return "", fmt.Errorf("xds version: %w", err)
			}
			h.Write(b)
		}
	}
	return fmt.Sprintf("%d-%s", stateVersion, hex.EncodeToString(h.Sum(nil))[:12]), nil
}
