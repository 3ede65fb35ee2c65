package server

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"

	"github.com/prism-gw/prism/xds/resource"
)

// NodeStatus is what the admin API reports about one xDS client.
type NodeStatus struct {
	ID        string         `json:"id"`
	Cluster   string         `json:"cluster"`
	Class     resource.Class `json:"class"`
	Connected bool           `json:"connected"`
	// Streams is the number of open xDS streams (normally 1 with ADS).
	Streams  int          `json:"streams"`
	LastSeen time.Time    `json:"last_seen"`
	Types    []TypeStatus `json:"types"`
}

// TypeStatus is a node's view of one resource type.
type TypeStatus struct {
	TypeURL string `json:"type_url"`
	// SentVersion is the last version sent; AckedVersion the last one the
	// node accepted. They differ while a push is in flight or after a NACK.
	SentVersion  string `json:"sent_version"`
	AckedVersion string `json:"acked_version"`
	InSync       bool   `json:"in_sync"`
	// LastNack is the node's last rejection, kept after later ACKs so that
	// an operator can still see what happened.
	LastNack *Nack `json:"last_nack,omitempty"`
}

// Nack is a rejected version and the node's reason.
type Nack struct {
	Version string    `json:"version"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// tracker follows every xDS stream through the server callbacks and keeps,
// per node and type, the version sent, the version ACKed and the last NACK.
// In the xDS protocol a request that echoes the nonce of a response is an
// ACK of it, or a NACK when it carries error_detail; the node then keeps the
// version it had.
type tracker struct {
	log       *slog.Logger
	retention time.Duration
	now       func() time.Time
	metrics   *xdsMetrics // metrics.go

	mu      sync.Mutex
	streams map[int64]*stream
	nodes   map[string]*node
}

type stream struct {
	node *node
	// sent maps a type URL to the nonce and version of the last response;
	// only a request echoing that nonce is a current ACK or NACK.
	sent map[string]sentResponse
}

type sentResponse struct{ nonce, version string }

type node struct {
	id, cluster string
	streams     int
	lastSeen    time.Time
	types       map[string]*TypeStatus
}

var _ serverv3.Callbacks = (*tracker)(nil)

func newTracker(log *slog.Logger, retention time.Duration) *tracker {
	return &tracker{
		log:       log,
		retention: retention,
		now:       time.Now,
		metrics:   newXDSMetrics(),
		streams:   map[int64]*stream{},
		nodes:     map[string]*node{},
	}
}

// Nodes returns every node seen within the retention, sorted by id. Nodes
// disconnected for longer are forgotten, so churn cannot grow the map.
func (t *tracker) Nodes() []NodeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out []NodeStatus
	for _, id := range slices.Sorted(maps.Keys(t.nodes)) {
		n := t.nodes[id]
		if n.streams == 0 && now.Sub(n.lastSeen) > t.retention {
			delete(t.nodes, id)
			continue
		}
		st := NodeStatus{
			ID: n.id, Cluster: n.cluster, Class: resource.Classify(&corev3.Node{Cluster: n.cluster}),
			Connected: n.streams > 0, Streams: n.streams, LastSeen: n.lastSeen,
		}
		for _, typeURL := range slices.Sorted(maps.Keys(n.types)) {
			ts := *n.types[typeURL]
			if ts.LastNack != nil {
				nack := *ts.LastNack
				ts.LastNack = &nack
			}
			ts.InSync = ts.SentVersion != "" && ts.SentVersion == ts.AckedVersion
			st.Types = append(st.Types, ts)
		}
		out = append(out, st)
	}
	return out
}

func (t *tracker) open(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams[id] = &stream{sent: map[string]sentResponse{}}
}

func (t *tracker) closed(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[id]
	delete(t.streams, id)
	if !ok || s.node == nil {
		return
	}
	s.node.streams--
	s.node.lastSeen = t.now()
	t.log.Info("xds node disconnected", "node", s.node.id, "cluster", s.node.cluster)
}

// bind attaches a stream to its node on the first request that names it.
func (t *tracker) bind(id int64, n *corev3.Node) *stream {
	s, ok := t.streams[id]
	if !ok {
		s = &stream{sent: map[string]sentResponse{}}
		t.streams[id] = s
	}
	if s.node == nil && n != nil {
		key := n.GetId()
		nd, ok := t.nodes[key]
		if !ok {
			nd = &node{id: key, types: map[string]*TypeStatus{}}
			t.nodes[key] = nd
		}
		nd.cluster = n.GetCluster()
		nd.streams++
		s.node = nd
		class := resource.Classify(n)
		if class == resource.ClassUnknown {
			t.log.Warn("xds node with an unknown cluster is served nothing",
				"node", key, "cluster", n.GetCluster(),
				"want", []string{resource.ClusterEnvoy, resource.ClusterExtproc, resource.ClusterGRPC})
		} else {
			t.log.Info("xds node connected", "node", key, "cluster", n.GetCluster(), "class", class)
		}
	}
	if s.node != nil {
		s.node.lastSeen = t.now()
	}
	return s
}

// request records an ACK or NACK carried by a request. For a current NACK
// it returns the rejected version.
func (t *tracker) request(id int64, n *corev3.Node, typeURL, nonce string, errDetail string, isNack bool) (nacked string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.bind(id, n)
	if s.node == nil || nonce == "" {
		return "" // a first subscription, nothing to acknowledge
	}
	sent, ok := s.sent[typeURL]
	if !ok || sent.nonce != nonce {
		return "" // a stale nonce: the server ignores it too
	}
	ts := s.node.status(typeURL)
	if isNack {
		ts.LastNack = &Nack{Version: sent.version, Error: errDetail, At: t.now()}
		t.metrics.nacked(typeURL)
		t.log.Warn("xds NACK: node rejected a version and keeps its previous one",
			"node", s.node.id, "type", typeURL, "version", sent.version, "kept", ts.AckedVersion, "error", errDetail)
		return sent.version
	}
	ts.AckedVersion = sent.version
	t.metrics.acked(typeURL)
	t.log.Debug("xds ACK", "node", s.node.id, "type", typeURL, "version", sent.version)
	return ""
}

// response records a response about to be sent.
func (t *tracker) response(id int64, typeURL, nonce, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[id]
	if !ok {
		return
	}
	s.sent[typeURL] = sentResponse{nonce: nonce, version: version}
	t.metrics.pushed(typeURL)
	if s.node != nil {
		s.node.status(typeURL).SentVersion = version
	}
}

func (n *node) status(typeURL string) *TypeStatus {
	ts, ok := n.types[typeURL]
	if !ok {
		ts = &TypeStatus{TypeURL: typeURL}
		n.types[typeURL] = ts
	}
	return ts
}

// OnStreamOpen implements serverv3.Callbacks.
func (t *tracker) OnStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(id)
	return nil
}

// OnStreamClosed implements serverv3.Callbacks.
func (t *tracker) OnStreamClosed(id int64, _ *corev3.Node) { t.closed(id) }

// OnStreamRequest implements serverv3.Callbacks: in state-of-the-world a
// request with error_detail is a NACK, otherwise echoing the nonce ACKs.
//
// A NACK carries the version the node still runs, and the caches answer a
// request whose version differs from theirs at once — with the version just
// rejected, which the node rejects again, in a tight loop. So a NACK's
// version_info is set to the rejected version before the request reaches
// the cache: the node is then treated as current and gets the next version
// when there is one. This is the request the server goes on to process.
func (t *tracker) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	if v := t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil); v != "" {
		req.VersionInfo = v
	}
	return nil
}

// OnStreamResponse implements serverv3.Callbacks.
func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	t.response(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

// OnDeltaStreamOpen implements serverv3.Callbacks.
func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(id)
	return nil
}

// OnDeltaStreamClosed implements serverv3.Callbacks.
func (t *tracker) OnDeltaStreamClosed(id int64, _ *corev3.Node) { t.closed(id) }

// OnStreamDeltaRequest implements serverv3.Callbacks; incremental xDS ACKs
// and NACKs the same way, by nonce.
func (t *tracker) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

// OnStreamDeltaResponse implements serverv3.Callbacks; the version of a
// delta response is its system_version_info.
func (t *tracker) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.response(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

// OnFetchRequest implements serverv3.Callbacks (REST fetch; unused).
func (t *tracker) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error { return nil }

// OnFetchResponse implements serverv3.Callbacks.
func (t *tracker) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
