// Package extproc is Prism's Envoy External Processing server: it decodes
// data API requests from the ext_proc stream, runs them on the namespace's
// backend and answers with an ImmediateResponse.
package extproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/prism-gw/prism/backends/kv/cache"
	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Options configure a Server. The zero value works.
type Options struct {
	Logger *slog.Logger
	// Cache, when set, puts Redis in front of every KeyValue namespace: reads
	// of namespaces with a cache block go through it, and writes of all
	// namespaces invalidate it (so turning a cache on later never serves an
	// entry that missed an invalidation). The server does not own it.
	Cache *cache.Client
	// Metrics, when set, is where the data path's Prometheus metrics are
	// registered.
	Metrics prometheus.Registerer
	// RetireAfter is how long a backend removed from the config stays open for
	// requests already holding it (default 1 minute).
	RetireAfter time.Duration
	// Policy is the built-in Rego policy (file name → source) deciding
	// access and PII field actions of namespaces whose policy is "default"
	// (or empty) while no policy named "default" has been pushed; nil means
	// policies.Default(). It is compiled once, by the first Apply with a
	// namespace that needs it (PII schema or access lists). Pushed policies
	// arrive in the config (DevConfig.policies).
	Policy map[string]string
	// Keyring holds the data keys of namespaces with a PII schema. Without
	// it, Apply refuses such namespaces: PII is never stored in plaintext.
	Keyring *pii.Keyring
	// TracerProvider, when set, traces requests (OpenTelemetry); nil
	// traces nothing at no cost.
	TracerProvider trace.TracerProvider
	// Audit is where PII accesses are recorded before they are answered.
	// Without it, Apply refuses namespaces with a PII schema.
	Audit audit.Log
}

// Server implements envoy.service.ext_proc.v3.ExternalProcessor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	log         *slog.Logger
	cache       *cache.Client
	metrics     *Metrics
	retireAfter time.Duration
	state       atomic.Pointer[state]

	policyModules map[string]string
	keyring       *pii.Keyring
	audit         audit.Log
	engine        *policies.Engine // compiled on first need; guarded by applyMu
	tracer        trace.Tracer     // nil: tracing off
	// policies are the pushed policies in force, applying those of the
	// Apply in progress (both guarded by applyMu; see policyset.go).
	policies, applying policySet

	applyMu sync.Mutex // serialises Apply and Close
	stores  map[storeKey]*openStore
	// migSeen is the last migration config applied per namespace (applyMu).
	migSeen map[string]*configv1.Migration
	// migs are the counters reported to the control plane.
	migMu       sync.Mutex
	migs        map[string]*migCounters
	comparisons chan struct{} // shadow reads in flight
	closing     chan struct{}
	wg          sync.WaitGroup
}

// NewServer makes a server with an empty config: every data API request gets
// 404 until Apply installs namespaces.
func NewServer(opts Options) *Server {
	s := &Server{
		log:         opts.Logger,
		cache:       opts.Cache,
		metrics:     newMetrics(opts.Metrics),
		retireAfter: opts.RetireAfter,
		stores:      map[storeKey]*openStore{},
		closing:     make(chan struct{}),
		migSeen:     map[string]*configv1.Migration{},
		migs:        map[string]*migCounters{},
		comparisons: make(chan struct{}, maxComparisons),

		policyModules: opts.Policy,
		keyring:       opts.Keyring,
		tracer:        newTracer(opts.TracerProvider),
		audit:         opts.Audit,
	}
	if s.policyModules == nil {
		s.policyModules = policies.Default()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.retireAfter <= 0 {
		s.retireAfter = time.Minute
	}
	s.state.Store(&state{namespaces: map[string]*namespace{}})
	return s
}

// Close closes every backend. Call it after the gRPC server has stopped.
func (s *Server) Close() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	select {
	case <-s.closing:
		return nil
	default:
	}
	close(s.closing)
	s.wg.Wait()
	var errs []error
	for _, o := range s.stores {
		errs = append(errs, o.store.Close())
	}
	s.stores = map[storeKey]*openStore{}
	s.state.Store(&state{namespaces: map[string]*namespace{}})
	return errors.Join(errs...)
}

// pending is a data API request waiting for its body.
type pending struct {
	req  httpRequest
	call *call
	body []byte
}

// Process handles one ext_proc stream, which Envoy opens per HTTP request.
// request_headers is always answered at once — Envoy in BUFFERED mode waits
// for that answer before it sends the body — either with the final
// ImmediateResponse (no body needed) or with CONTINUE; the body message then
// gets the ImmediateResponse.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := stream.Context()
	var p *pending
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if status.Code(err) == codes.Canceled || ctx.Err() != nil {
				return nil // Envoy gave up on the request; nothing to answer.
			}
			return err
		}
		var resp *extprocv3.ProcessingResponse
		switch r := msg.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			req := newHTTPRequest(msg, r.RequestHeaders)
			if !isDataAPI(req.path) {
				resp = continueHeaders()
				break
			}
			if req.requestID == "" {
				req.requestID = newRequestID()
			}
			ctx = s.traceRequest(ctx, msg, &req)
			defer s.endRequest(ctx)
			c, rep := s.tracedDecode(ctx, &req)
			switch {
			case rep != nil:
				s.metrics.rejected(s.state.Load(), &req, rep.status)
			case !c.needsBody() || req.endOfStream:
				if w := c.wait(); w > 0 {
					// Envoy's message_timeout (200 ms by default) would end a
					// long poll; ask for the wait plus the request timeout.
					if err := stream.Send(overrideTimeout(min(w+c.ns.timeout, maxMessageTimeout))); err != nil {
						return err
					}
				}
				rep = s.run(ctx, c, nil)
			case req.contentLength > c.ns.maxValue:
				rep = errorReply(tooLarge("body of %d bytes is over the namespace limit of %d bytes", req.contentLength, c.ns.maxValue), req.requestID)
				s.metrics.rejectedCall(c, rep.status)
			default:
				p = &pending{req: req, call: c}
				resp = continueHeaders()
			}
			if rep != nil {
				return stream.Send(rep.immediate(req.requestID))
			}
		case *extprocv3.ProcessingRequest_RequestBody:
			if p == nil {
				resp = continueBody()
				break
			}
			p.body = append(p.body, r.RequestBody.GetBody()...)
			if int64(len(p.body)) > p.call.ns.maxValue {
				return stream.Send(errorReply(tooLarge("body is over the namespace limit of %d bytes", p.call.ns.maxValue), p.req.requestID).immediate(p.req.requestID))
			}
			if !r.RequestBody.GetEndOfStream() {
				// STREAMED mode delivers chunks; keep them until the last.
				resp = continueBody()
				break
			}
			return stream.Send(s.run(ctx, p.call, p.body).immediate(p.req.requestID))
		case *extprocv3.ProcessingRequest_RequestTrailers:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
		default:
			return status.Errorf(codes.InvalidArgument, "unexpected ext_proc message %T", r)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// maxMessageTimeout is the filter's max_message_timeout in the listener
// prism xds generates (xds/model.MaxMessageTimeout); Envoy ignores a larger
// override, which would leave the long poll to the default message timeout.
const maxMessageTimeout = 35 * time.Second

// overrideTimeout asks Envoy to wait longer for the next answer; it must stay
// within the filter's max_message_timeout.
func overrideTimeout(d time.Duration) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}
}

func continueBody() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{}},
		},
	}
}

// newRequestID makes an id when neither Envoy nor the client sent one.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// call is a decoded data API request bound to its namespace. One of kv, ts
// is meaningful, by the route's abstraction.
type call struct {
	ns          *namespace
	req         *httpRequest
	abstraction string
	kv          kvRequest
	ts          tsRequest
	graph       graphRequest
}

func (c *call) needsBody() bool {
	switch c.abstraction {
	case pathKV:
		return c.kv.needsBody()
	case pathTS:
		return c.ts.op == tsAppend
	case pathGraph:
		return c.graph.needsBody()
	}
	return false
}

// wait is how long the call may block on purpose (a tail's long poll).
func (c *call) wait() time.Duration {
	if c.abstraction == pathTS && c.ts.op == tsTail {
		return c.ts.tail.Wait
	}
	return 0
}

// abstractionOf names the path segment a namespace is served under.
func abstractionOf(a configv1.Abstraction) string {
	switch a {
	case configv1.Abstraction_KEYVALUE:
		return pathKV
	case configv1.Abstraction_TIMESERIES:
		return pathTS
	case configv1.Abstraction_GRAPH:
		return pathGraph
	}
	return ""
}

// decode resolves the namespace and decodes the request line and headers.
func (s *Server) decode(req *httpRequest) (*call, *reply) {
	rt, e := parseRoute(req.path)
	if e != nil {
		return nil, errorReply(e, req.requestID)
	}
	ns, ok := s.state.Load().namespaces[rt.namespace]
	if !ok {
		return nil, errorReply(notFound("unknown namespace %q", rt.namespace), req.requestID)
	}
	if want := abstractionOf(ns.cfg.GetAbstraction()); rt.abstraction != want {
		return nil, errorReply(notFound("namespace %q is served at /v1/%s/%s", rt.namespace, want, rt.namespace), req.requestID)
	}
	c := &call{ns: ns, req: req, abstraction: rt.abstraction}
	switch rt.abstraction {
	case pathKV:
		c.kv, e = decodeKV(req, rt)
	case pathTS:
		c.ts, e = decodeTS(req, rt)
	case pathGraph:
		c.graph, e = decodeGraph(req, rt)
	}
	if e != nil {
		return nil, errorReply(e, req.requestID)
	}
	return c, nil
}

// run performs a decoded call within the namespace's request timeout (plus
// the call's own wait, for long polls).
func (s *Server) run(ctx context.Context, c *call, body []byte) *reply {
	start := time.Now()
	rep := s.runCall(ctx, c, body)
	s.metrics.observe(c, rep.status, time.Since(start))
	traceStatus(ctx, rep.status)
	return rep
}

func (s *Server) runCall(ctx context.Context, c *call, body []byte) *reply {
	ctx, cancel := context.WithTimeout(ctx, c.ns.timeout+c.wait())
	defer cancel()
	if c.wait() > 0 {
		s.metrics.tailWaiters.Inc()
		defer s.metrics.tailWaiters.Dec()
	}
	var rep *reply
	var err error
	switch c.abstraction {
	case pathKV:
		rep, err = s.runKV(ctx, c, body)
	case pathTS:
		rep, err = s.runTS(ctx, c, body)
	case pathGraph:
		rep, err = s.runGraph(ctx, c, body)
	}
	if err != nil {
		e := toAPIError(err)
		switch e.Code {
		case CodeInternal:
			s.log.ErrorContext(ctx, "request failed", "request_id", c.req.requestID, "namespace", c.ns.cfg.GetNamespace(), "operation", c.operation(), "err", err)
		case CodeUnavailable:
			s.log.WarnContext(ctx, "backend unavailable", "request_id", c.req.requestID, "namespace", c.ns.cfg.GetNamespace(), "operation", c.operation(), "err", err)
		}
		return errorReply(e, c.req.requestID)
	}
	return rep
}
