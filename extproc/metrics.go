package extproc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of the data path. They are registered
// on the registerer given in Options (none: not exported), never globally.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	tailWaiters prometheus.Gauge
	obs         *obsMetrics // observe.go
	migrationMetrics
}

// newMetrics creates and registers the metrics.
func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_requests_total",
			Help: "Data API requests answered by extproc, by namespace, abstraction, operation, backend and HTTP status code.",
		}, []string{"namespace", "abstraction", "operation", "backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_request_duration_seconds",
			Help: "Time from decoding a data API request to its answer, tail waits included.",
			// Classic buckets from 50 µs for scrapers without native
			// histograms; native ones for those with.
			Buckets:                         prometheus.ExponentialBucketsRange(50e-6, 30, 20),
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"namespace", "abstraction", "operation"}),
		tailWaiters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_tail_waiters",
			Help: "TimeSeries tail requests currently waiting for events.",
		}),
		migrationMetrics: newMigrationMetrics(),
	}
	m.obs = newObsMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.tailWaiters, m.shadowWrites, m.shadowReads)
	}
	return m
}

// observe records one answered request.
func (m *Metrics) observe(c *call, status int, took time.Duration) {
	ch := m.children(requestLabels{namespace: c.ns.cfg.GetNamespace(), abstraction: c.abstraction, operation: c.operation(), backend: c.ns.backend, code: status})
	ch.requests.Inc()
	ch.duration.Observe(took.Seconds())
}

// operation names a call for metrics and logs.
func (c *call) operation() string {
	switch c.abstraction {
	case pathKV:
		return [...]string{kvGet: "get", kvPut: "put", kvDelete: "delete", kvScan: "scan", kvMultiGet: "mget", kvBatch: "batch"}[c.kv.op]
	case pathTS:
		return [...]string{tsAppend: "append", tsQuery: "query", tsTail: "tail"}[c.ts.op]
	case pathGraph:
		return [...]string{graphPutNode: "put_node", graphGetNode: "get_node", graphDeleteNode: "delete_node",
			graphPutEdge: "put_edge", graphDeleteEdge: "delete_edge", graphEdges: "edges", graphTraverse: "traverse"}[c.graph.op]
	}
	return "unknown"
}
