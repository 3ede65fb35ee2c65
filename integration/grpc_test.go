package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/prism-gw/prism/envoy/devedge"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// rawCall drives one request over a raw ext_proc stream the way Envoy does in
// BUFFERED mode: it sends request_headers and waits for their answer before
// it sends the body. A server that waits for the body before answering the
// headers fails here with a timeout, as it would deadlock under Envoy.
func rawCall(t *testing.T, client extprocv3.ExternalProcessorClient, method, path string, body string) *extprocv3.ImmediateResponse {
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
	}
	if err := stream.Send(devedge.HeadersMessage(req, "req-"+method, body == "")); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("%s %s: no answer to request_headers: %v", method, path, err)
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		if body != "" && ir.GetStatus().GetCode() < 400 {
			t.Fatalf("%s %s: success answered before the body was sent", method, path)
		}
		return ir
	}
	if resp.GetRequestHeaders() == nil {
		t.Fatalf("%s %s: answer to request_headers is %T", method, path, resp.GetResponse())
	}
	if body == "" {
		t.Fatalf("%s %s: CONTINUE for a data API request without body", method, path)
	}
	if err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true},
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatalf("%s %s: no answer to request_body: %v", method, path, err)
	}
	ir := resp.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("%s %s: answer to request_body is %T, want ImmediateResponse", method, path, resp.GetResponse())
	}
	return ir
}

func header(ir *extprocv3.ImmediateResponse, key string) string {
	for _, h := range ir.GetHeaders().GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			if h.GetHeader().GetValue() != "" {
				return "BOTH value AND raw_value SET" // Envoy answers 500 to this
			}
			return string(h.GetHeader().GetRawValue())
		}
	}
	return ""
}

func TestKVOverRawExtProc(t *testing.T) {
	st := startStack(t, []*configv1.Backend{sqliteBackend(t, "db")}, []*configv1.Namespace{kvNamespace("orders", "db", 0)})
	c := st.client

	ir := rawCall(t, c, "PUT", "/v1/kv/orders/o-1", `{"total":5}`)
	if ir.GetStatus().GetCode() != 200 {
		t.Fatalf("PUT: status %d: %s", ir.GetStatus().GetCode(), ir.GetBody())
	}
	var put struct{ Key, Version string }
	if err := json.Unmarshal(ir.GetBody(), &put); err != nil || put.Version == "" {
		t.Fatalf("PUT body %q", ir.GetBody())
	}
	if header(ir, "etag") != `"`+put.Version+`"` || header(ir, "x-request-id") != "req-PUT" {
		t.Fatalf("PUT headers: etag %q x-request-id %q", header(ir, "etag"), header(ir, "x-request-id"))
	}

	ir = rawCall(t, c, "GET", "/v1/kv/orders/o-1", "")
	if ir.GetStatus().GetCode() != 200 || string(ir.GetBody()) != `{"total":5}` || header(ir, "content-type") != "application/octet-stream" {
		t.Fatalf("GET: %d %q %q", ir.GetStatus().GetCode(), ir.GetBody(), header(ir, "content-type"))
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/kv/orders?prefix=o-", "", 200},
		{"POST", "/v1/kv/orders/_mget", `{"keys":["o-1"]}`, 200},
		{"POST", "/v1/kv/orders/_batch", `{"ops":[{"op":"delete","key":"o-1"}]}`, 200},
		{"GET", "/v1/kv/orders/o-1", "", 404},
		{"DELETE", "/v1/kv/orders/o-1", "", 204},
		{"GET", "/v1/kv/unknown/o-1", "", 404},
		{"POST", "/v1/kv/orders/_batch", `{"ops":`, 400},
	} {
		ir := rawCall(t, c, tc.method, tc.path, tc.body)
		if int(ir.GetStatus().GetCode()) != tc.status {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, ir.GetStatus().GetCode(), tc.status, ir.GetBody())
		}
		if header(ir, "x-request-id") == "" {
			t.Errorf("%s %s: no x-request-id", tc.method, tc.path)
		}
	}
}

// TestPassThroughContinues checks that requests outside /v1/ are left alone:
// CONTINUE for headers and body, no immediate response.
func TestPassThroughContinues(t *testing.T) {
	st := startStack(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := st.client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/upload", strings.NewReader("data"))
	if err := stream.Send(devedge.HeadersMessage(req, "r1", false)); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetRequestHeaders() == nil {
		t.Fatalf("headers: %v %v, want CONTINUE", resp, err)
	}
	if err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte("data"), EndOfStream: true},
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil || resp.GetRequestBody() == nil {
		t.Fatalf("body: %v %v, want CONTINUE", resp, err)
	}
}
