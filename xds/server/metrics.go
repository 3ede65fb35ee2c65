package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// xdsMetrics count the protocol events the tracker sees. They are created
// with the tracker (counting costs next to nothing) and exported once
// RegisterMetrics is called.
type xdsMetrics struct {
	pushes *prometheus.CounterVec
	acks   *prometheus.CounterVec
	nacks  *prometheus.CounterVec
}

func newXDSMetrics() *xdsMetrics {
	return &xdsMetrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_xds_pushes_total",
			Help: "xDS responses sent to nodes, by resource type.",
		}, []string{"type"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_xds_acks_total",
			Help: "xDS responses nodes accepted, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_xds_nacks_total",
			Help: "xDS responses nodes rejected (they keep their previous version), by resource type.",
		}, []string{"type"}),
	}
}

// typeLabel shortens a type URL to its message name
// (type.googleapis.com/envoy.config.cluster.v3.Cluster → envoy.config.cluster.v3.Cluster).
func typeLabel(typeURL string) string {
	if i := strings.LastIndexByte(typeURL, '/'); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}

func (m *xdsMetrics) pushed(typeURL string) { m.pushes.WithLabelValues(typeLabel(typeURL)).Inc() }
func (m *xdsMetrics) acked(typeURL string)  { m.acks.WithLabelValues(typeLabel(typeURL)).Inc() }
func (m *xdsMetrics) nacked(typeURL string) { m.nacks.WithLabelValues(typeLabel(typeURL)).Inc() }

// RegisterMetrics exports the control plane's xDS metrics on reg: push,
// ACK and NACK counters, and, read from the node tracker at each scrape,
// the connected nodes and each node's versions.
func (s *Server) RegisterMetrics(reg prometheus.Registerer) error {
	m := s.nodes.metrics
	for _, c := range []prometheus.Collector{m.pushes, m.acks, m.nacks, nodeCollector{s.nodes}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// nodeCollector reports the tracker's per-node state at scrape time, so
// the gauges never disagree with the admin API's node list.
type nodeCollector struct{ t *tracker }

var (
	connectedDesc = prometheus.NewDesc("prism_xds_connected_nodes",
		"xDS nodes with an open stream, by class (envoy, extproc, grpc).", []string{"class"}, nil)
	versionDesc = prometheus.NewDesc("prism_xds_node_config_version_info",
		"The config version a node has ACKed, per resource type (value 1; the version is a label, as versions are not numbers).",
		[]string{"node", "type", "version"}, nil)
	inSyncDesc = prometheus.NewDesc("prism_xds_node_in_sync",
		"1 when the node has ACKed the last version sent of the type, 0 while a push is in flight or after a NACK.",
		[]string{"node", "type"}, nil)
)

// Describe implements prometheus.Collector.
func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectedDesc
	ch <- versionDesc
	ch <- inSyncDesc
}

// Collect implements prometheus.Collector.
func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	connected := map[string]int{}
	for _, n := range c.t.Nodes() {
		if !n.Connected {
			continue
		}
		connected[string(n.Class)]++
		for _, ts := range n.Types {
			typ := typeLabel(ts.TypeURL)
			if ts.AckedVersion != "" {
				ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, 1, n.ID, typ, ts.AckedVersion)
			}
			inSync := 0.0
			if ts.InSync {
				inSync = 1
			}
			ch <- prometheus.MustNewConstMetric(inSyncDesc, prometheus.GaugeValue, inSync, n.ID, typ)
		}
	}
	for class, n := range connected {
		ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, float64(n), class)
	}
}
