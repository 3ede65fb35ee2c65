package extproc

import (
	"context"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/policies"
)

// obsMetrics are the data path's metrics beyond requests and latency:
// policy decisions, audit writes, and the cache of request metric children.
type obsMetrics struct {
	decisions *prometheus.CounterVec
	audits    *prometheus.CounterVec
	// children caches the labelled children of the request metrics:
	// resolving five label values (and formatting the status code) on every
	// request was a visible part of a KV get's CPU.
	children sync.Map // requestLabels → *requestChildren
}

type requestLabels struct {
	namespace, abstraction, operation, backend string
	code                                       int
}

type requestChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newObsMetrics(reg prometheus.Registerer) *obsMetrics {
	o := &obsMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_policy_decisions_total",
			Help: "Policy decisions on data API requests: allow, deny, or error (evaluation failed; the request is denied).",
		}, []string{"decision"}),
		audits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_audit_writes_total",
			Help: "Audit records written for PII accesses, by result (ok or error; an access whose record fails is refused).",
		}, []string{"result"}),
	}
	for _, d := range []string{"allow", "deny", "error"} {
		o.decisions.WithLabelValues(d)
	}
	for _, r := range []string{"ok", "error"} {
		o.audits.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(o.decisions, o.audits)
	}
	return o
}

// children returns the request metrics of one label set.
func (m *Metrics) children(l requestLabels) *requestChildren {
	if c, ok := m.obs.children.Load(l); ok {
		return c.(*requestChildren)
	}
	c := &requestChildren{
		requests: m.requests.WithLabelValues(l.namespace, l.abstraction, l.operation, l.backend, strconv.Itoa(l.code)),
	}
	if l.operation != "" {
		c.duration = m.duration.WithLabelValues(l.namespace, l.abstraction, l.operation)
	}
	actual, _ := m.obs.children.LoadOrStore(l, c)
	return actual.(*requestChildren)
}

// rejected counts a data API request answered with an error before it was
// decoded into a call (unknown namespace, bad path, bad query...). Only a
// namespace in the config is used as a label: a client's made-up names
// must not create series.
func (m *Metrics) rejected(st *state, req *httpRequest, status int) {
	l := requestLabels{code: status}
	if rt, e := parseRoute(req.path); e == nil {
		if ns, ok := st.namespaces[rt.namespace]; ok {
			l.namespace, l.abstraction, l.backend = rt.namespace, rt.abstraction, ns.backend
		}
	}
	m.children(l).requests.Inc()
}

// rejectedCall counts a decoded call refused before it ran (its body is
// over the namespace's limit).
func (m *Metrics) rejectedCall(c *call, status int) {
	m.children(requestLabels{namespace: c.ns.cfg.GetNamespace(), abstraction: c.abstraction, operation: c.operation(), backend: c.ns.backend, code: status}).requests.Inc()
}

// decide evaluates the policy in a span of its own and counts the
// decision.
func (s *Server) decide(ctx context.Context, e *policies.Engine, in policies.Input) (policies.Decision, error) {
	ctx, span := s.startSpan(ctx, "prism.policy")
	d, err := e.Decide(ctx, in)
	decision := "deny"
	switch {
	case err != nil:
		decision = "error"
	case d.Allow:
		decision = "allow"
	}
	s.metrics.obs.decisions.WithLabelValues(decision).Inc()
	endSpan(span, err, spanDecision(decision))
	return d, err
}

// appendAudit writes an audit record in a span of its own and counts it.
func (s *Server) appendAudit(ctx context.Context, r audit.Record) error {
	ctx, span := s.startSpan(ctx, "prism.audit")
	err := s.audit.Append(ctx, r)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.obs.audits.WithLabelValues(result).Inc()
	endSpan(span, err)
	return err
}
