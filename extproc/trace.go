package extproc

import (
	"context"
	"errors"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/ts"
)

// Tracing of the data path with OpenTelemetry. A request's span continues
// the trace of the traceparent header Envoy forwards; below it are spans for
// decoding, the policy decision, the audit write and each backend call.
// Without Options.TracerProvider nothing is traced and nothing allocated:
// every helper returns at once with a non-recording span.
//
// Attributes name the namespace, abstraction, operation, backend and
// status, never a key, a value, a path or a subject: those may be personal
// data (API.md: never in traces).

// tracerName is the instrumentation scope of Prism's spans.
const tracerName = "github.com/prism-gw/prism/extproc"

// noSpan is returned when tracing is off; End and the setters do nothing.
var noSpan = trace.SpanFromContext(context.Background())

// newTracer returns the tracer of a provider, nil when tracing is off.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName)
}

// startSpan starts an internal span under the one in ctx.
func (s *Server) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noSpan
	}
	return s.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends a span, marking it failed when err is set.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrs...)
	if err != nil {
		// The API code only: an error's message may quote a key.
		span.SetStatus(codes.Error, toAPIError(err).Code)
	}
	span.End()
}

func spanDecision(d string) attribute.KeyValue { return attribute.String("prism.policy.decision", d) }

// headerCarrier reads the trace context headers of request_headers.
type headerCarrier []string // key, value, key, value...

func (h headerCarrier) Get(key string) string {
	for i := 0; i+1 < len(h); i += 2 {
		if h[i] == key {
			return h[i+1]
		}
	}
	return ""
}
func (h headerCarrier) Set(string, string) {}
func (h headerCarrier) Keys() []string {
	var keys []string
	for i := 0; i < len(h); i += 2 {
		keys = append(keys, h[i])
	}
	return keys
}

// traceRequest starts the span of a data API request, the child of the
// traceparent Envoy sent, and returns the context carrying it.
func (s *Server) traceRequest(ctx context.Context, msg *extprocv3.ProcessingRequest, req *httpRequest) context.Context {
	if s.tracer == nil {
		return ctx
	}
	var carrier headerCarrier
	for _, h := range msg.GetRequestHeaders().GetHeaders().GetHeaders() {
		if k := strings.ToLower(h.GetKey()); k == "traceparent" || k == "tracestate" {
			carrier = append(carrier, k, headerValue(h))
		}
	}
	ctx = propagation.TraceContext{}.Extract(ctx, carrier)
	ctx, _ = s.tracer.Start(ctx, "prism.request", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", req.method), attribute.String("prism.request_id", req.requestID)))
	return ctx
}

// endRequest ends the request span of ctx.
func (s *Server) endRequest(ctx context.Context) {
	if s.tracer != nil {
		trace.SpanFromContext(ctx).End()
	}
}

// traceStatus records the answer's status on the request span.
func traceStatus(ctx context.Context, status int) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
}

// tracedDecode is decode in a span, naming the call on the request span.
func (s *Server) tracedDecode(ctx context.Context, req *httpRequest) (*call, *reply) {
	if s.tracer == nil {
		return s.decode(req)
	}
	_, span := s.tracer.Start(ctx, "prism.decode")
	c, rep := s.decode(req)
	span.End()
	if c != nil {
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String("prism.namespace", c.ns.cfg.GetNamespace()),
			attribute.String("prism.abstraction", c.abstraction),
			attribute.String("prism.operation", c.operation()),
			attribute.String("prism.backend", c.ns.backend))
	}
	if rep != nil {
		traceStatus(ctx, rep.status)
	}
	return c, rep
}

// traceStores wraps the stores of a new config so each backend call gets a
// span. It is the one place stores are wrapped for tracing.
func (s *Server) traceStores(st *state) {
	if s.tracer == nil {
		return
	}
	for name, ns := range st.namespaces {
		attrs := []attribute.KeyValue{attribute.String("prism.namespace", name), attribute.String("prism.backend", ns.backend)}
		if ns.kv != nil {
			ns.kv = tracedKV{Store: ns.kv, t: s.tracer, attrs: attrs}
		}
		if ns.ts != nil {
			ns.ts = tracedTS{Store: ns.ts, t: s.tracer, attrs: attrs}
		}
		if ns.graph != nil {
			ns.graph = tracedGraph{Store: ns.graph, t: s.tracer, attrs: attrs}
		}
	}
}

// backendSpan starts the span of one backend call.
func backendSpan(ctx context.Context, t trace.Tracer, name string, attrs []attribute.KeyValue) (context.Context, trace.Span) {
	return t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endBackend ends a backend span; a missing key or node is an answer, not
// a failure.
func endBackend(span trace.Span, err error) {
	if err != nil && (errors.Is(err, kv.ErrNotFound) || errors.Is(err, graph.ErrNotFound)) {
		span.SetAttributes(attribute.Bool("prism.not_found", true))
		err = nil
	}
	endSpan(span, err)
}

type tracedKV struct {
	kv.Store
	t     trace.Tracer
	attrs []attribute.KeyValue
}

func (k tracedKV) Get(ctx context.Context, ns, key string) (kv.Item, error) {
	ctx, span := backendSpan(ctx, k.t, "kv.Get", k.attrs)
	it, err := k.Store.Get(ctx, ns, key)
	endBackend(span, err)
	return it, err
}

func (k tracedKV) Put(ctx context.Context, ns string, op kv.PutOp) (string, error) {
	ctx, span := backendSpan(ctx, k.t, "kv.Put", k.attrs)
	v, err := k.Store.Put(ctx, ns, op)
	endBackend(span, err)
	return v, err
}

func (k tracedKV) Delete(ctx context.Context, ns, key string, cond kv.Cond) error {
	ctx, span := backendSpan(ctx, k.t, "kv.Delete", k.attrs)
	err := k.Store.Delete(ctx, ns, key, cond)
	endBackend(span, err)
	return err
}

func (k tracedKV) Scan(ctx context.Context, ns string, q kv.ScanQuery) (kv.Page, error) {
	ctx, span := backendSpan(ctx, k.t, "kv.Scan", k.attrs)
	p, err := k.Store.Scan(ctx, ns, q)
	endBackend(span, err)
	return p, err
}

func (k tracedKV) MultiGet(ctx context.Context, ns string, keys []string) ([]kv.Item, error) {
	ctx, span := backendSpan(ctx, k.t, "kv.MultiGet", k.attrs)
	items, err := k.Store.MultiGet(ctx, ns, keys)
	endBackend(span, err)
	return items, err
}

func (k tracedKV) Batch(ctx context.Context, ns string, ops []kv.Op) ([]string, error) {
	ctx, span := backendSpan(ctx, k.t, "kv.Batch", k.attrs)
	v, err := k.Store.Batch(ctx, ns, ops)
	endBackend(span, err)
	return v, err
}

type tracedTS struct {
	ts.Store
	t     trace.Tracer
	attrs []attribute.KeyValue
}

func (x tracedTS) Append(ctx context.Context, ns string, events []ts.Event) (int, int, error) {
	ctx, span := backendSpan(ctx, x.t, "ts.Append", x.attrs)
	a, d, err := x.Store.Append(ctx, ns, events)
	endBackend(span, err)
	return a, d, err
}

func (x tracedTS) Query(ctx context.Context, ns string, q ts.QueryArgs) (ts.Page, error) {
	ctx, span := backendSpan(ctx, x.t, "ts.Query", x.attrs)
	p, err := x.Store.Query(ctx, ns, q)
	endBackend(span, err)
	return p, err
}

func (x tracedTS) Tail(ctx context.Context, ns string, a ts.TailArgs) (ts.Page, error) {
	ctx, span := backendSpan(ctx, x.t, "ts.Tail", x.attrs)
	p, err := x.Store.Tail(ctx, ns, a)
	endBackend(span, err)
	return p, err
}

type tracedGraph struct {
	graph.Store
	t     trace.Tracer
	attrs []attribute.KeyValue
}

func (g tracedGraph) PutNode(ctx context.Context, ns string, n graph.Node) error {
	ctx, span := backendSpan(ctx, g.t, "graph.PutNode", g.attrs)
	err := g.Store.PutNode(ctx, ns, n)
	endBackend(span, err)
	return err
}

func (g tracedGraph) GetNode(ctx context.Context, ns, id string) (graph.Node, error) {
	ctx, span := backendSpan(ctx, g.t, "graph.GetNode", g.attrs)
	n, err := g.Store.GetNode(ctx, ns, id)
	endBackend(span, err)
	return n, err
}

func (g tracedGraph) DeleteNode(ctx context.Context, ns, id string) error {
	ctx, span := backendSpan(ctx, g.t, "graph.DeleteNode", g.attrs)
	err := g.Store.DeleteNode(ctx, ns, id)
	endBackend(span, err)
	return err
}

func (g tracedGraph) PutEdge(ctx context.Context, ns string, e graph.Edge) error {
	ctx, span := backendSpan(ctx, g.t, "graph.PutEdge", g.attrs)
	err := g.Store.PutEdge(ctx, ns, e)
	endBackend(span, err)
	return err
}

func (g tracedGraph) DeleteEdge(ctx context.Context, ns, from, to, label string) error {
	ctx, span := backendSpan(ctx, g.t, "graph.DeleteEdge", g.attrs)
	err := g.Store.DeleteEdge(ctx, ns, from, to, label)
	endBackend(span, err)
	return err
}

func (g tracedGraph) Edges(ctx context.Context, ns, id string, dir graph.Direction, label string) ([]graph.Edge, error) {
	ctx, span := backendSpan(ctx, g.t, "graph.Edges", g.attrs)
	e, err := g.Store.Edges(ctx, ns, id, dir, label)
	endBackend(span, err)
	return e, err
}

func (g tracedGraph) Traverse(ctx context.Context, ns string, a graph.TraverseArgs) (graph.Traversal, error) {
	ctx, span := backendSpan(ctx, g.t, "graph.Traverse", g.attrs)
	t, err := g.Store.Traverse(ctx, ns, a)
	endBackend(span, err)
	return t, err
}
