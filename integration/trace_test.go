package integration

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/internal/loadgen"
)

// The trace Envoy would forward: trace id and parent span id of its own
// span around the ext_proc call.
const (
	envoyTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	envoySpanID  = "00f067aa0ba902b7"
)

// tracedCall sends one request the way Envoy does, with a traceparent
// header and the client's identity, and returns the answer.
func tracedCall(t *testing.T, client extprocv3.ExternalProcessorClient, method, path, body string) *extprocv3.ImmediateResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		req.ContentLength = 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("traceparent", "00-"+envoyTraceID+"-"+envoySpanID+"-01")
	msg := devedge.HeadersMessage(req, "req-trace-"+method, body == "")
	msg.Attributes["envoy.filters.http.ext_proc"].Fields["connection.uri_san_peer_certificate"] = structpb.NewStringValue(loadgen.BenchSubject)
	if err := stream.Send(msg); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if body != "" && resp.GetImmediateResponse() == nil {
		if err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}); err != nil {
			t.Fatal(err)
		}
		if resp, err = stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	ir := resp.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("%s %s: no ImmediateResponse: %v", method, path, resp)
	}
	return ir
}

// TestTraceSpanTreeOfOneRequest checks the spans of one PII read: a
// server span continuing Envoy's traceparent, with decode, policy, backend
// and audit spans as its children, and no key or PII value anywhere in
// the attributes.
func TestTraceSpanTreeOfOneRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	st, err := loadgen.StartStack(context.Background(), loadgen.StackOptions{Dir: t.TempDir(), Server: extproc.Options{TracerProvider: tp}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := grpc.NewClient(st.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)

	const secretKey, secretEmail = "customer-4711", "jane.doe@example.com"
	base := "/v1/kv/" + loadgen.Namespace("kv", true) + "/" + secretKey
	if ir := tracedCall(t, client, "PUT", base, `{"email":"`+secretEmail+`","plan":"gold"}`); ir.GetStatus().GetCode() != 200 {
		t.Fatalf("put: %d %s", ir.GetStatus().GetCode(), ir.GetBody())
	}
	// A request span ends when its stream does, which can be after the
	// answer arrived: wait for the put's before starting afresh, or it
	// lands among the get's spans, and for the get's before reading them.
	waitRequestSpan(t, exp)
	exp.Reset()
	if ir := tracedCall(t, client, "GET", base, ""); ir.GetStatus().GetCode() != 200 {
		t.Fatalf("get: %d %s", ir.GetStatus().GetCode(), ir.GetBody())
	}
	waitRequestSpan(t, exp)

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
		for _, a := range s.Attributes {
			v := a.Value.String()
			if strings.Contains(v, secretKey) || strings.Contains(v, secretEmail) || strings.Contains(v, "jane") {
				t.Errorf("span %s attribute %s=%q carries a key or PII value", s.Name, a.Key, v)
			}
		}
	}
	root, ok := byName["prism.request"]
	if !ok {
		t.Fatalf("no prism.request span among %d spans: %v", len(spans), names(spans))
	}
	if got := root.SpanContext.TraceID().String(); got != envoyTraceID {
		t.Errorf("request span trace id %s, want Envoy's %s (traceparent not continued)", got, envoyTraceID)
	}
	if got := root.Parent.SpanID().String(); got != envoySpanID || !root.Parent.IsRemote() {
		t.Errorf("request span parent %s (remote %v), want Envoy's span %s", got, root.Parent.IsRemote(), envoySpanID)
	}
	if root.SpanKind != trace.SpanKindServer {
		t.Errorf("request span kind %v, want server", root.SpanKind)
	}
	attrs := map[string]string{}
	for _, a := range root.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	for k, want := range map[string]string{"prism.namespace": loadgen.Namespace("kv", true), "prism.operation": "get", "http.response.status_code": "200"} {
		if attrs[k] != want {
			t.Errorf("request span %s = %q, want %q", k, attrs[k], want)
		}
	}
	for _, child := range []string{"prism.decode", "prism.policy", "kv.Get", "prism.audit"} {
		s, ok := byName[child]
		if !ok {
			t.Errorf("no %s span (spans: %v)", child, names(spans))
			continue
		}
		if s.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("%s span's parent is %s, want the request span %s", child, s.Parent.SpanID(), root.SpanContext.SpanID())
		}
		if s.EndTime.Before(s.StartTime) || s.EndTime.IsZero() {
			t.Errorf("%s span not ended", child)
		}
	}
	if len(spans) != 5 {
		t.Errorf("%d spans, want 5 (request, decode, policy, backend, audit): %v", len(spans), names(spans))
	}
}

// waitRequestSpan waits until exp holds an ended prism.request span.
func waitRequestSpan(t *testing.T, exp *tracetest.InMemoryExporter) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !slices.ContainsFunc(exp.GetSpans(), func(s tracetest.SpanStub) bool { return s.Name == "prism.request" }); {
		if time.Now().After(deadline) {
			t.Fatal("no request span ended within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
