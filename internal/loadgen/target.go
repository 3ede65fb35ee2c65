package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/prism-gw/prism/envoy/devedge"
)

// Target runs operations: Prism through ext_proc or HTTP, the floor, or a
// backend directly.
type Target interface {
	// Do runs one operation; an error is a failed request (transport error
	// or a status the operation does not expect).
	Do(ctx context.Context, op *Op) error
	Close() error
}

// StatusError is an answer with an unexpected HTTP status.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %.200s", e.Status, e.Body)
}

// maxMessage matches what prism extproc accepts and sends.
const maxMessage = 64 << 20

// ExtprocTarget drives an ext_proc server the way Envoy's ext_proc filter
// does: a few long-lived HTTP/2 connections, one Process stream per request,
// request_headers (built by the dev edge's HeadersMessage, so pseudo-headers,
// raw_value and attributes are Envoy's) answered before the buffered body is
// sent, and the ImmediateResponse read as the final answer.
type ExtprocTarget struct {
	conns   []*grpc.ClientConn
	clients []extprocv3.ExternalProcessorClient
	next    atomic.Uint64
	// base is the path prefix, /v1/{abstraction}/{ns}.
	base string
	// subject, when set, is sent as the peer certificate's URI SAN.
	subject string
	// timeout bounds each request, like the filter's message timeout.
	timeout time.Duration
}

// DialExtproc opens conns HTTP/2 connections to an ext_proc server at addr.
// Requests go to /v1/{abstraction}/{namespace}, as subject when not empty.
func DialExtproc(addr string, conns int, abstraction, namespace, subject string) (*ExtprocTarget, error) {
	t := &ExtprocTarget{base: "/v1/" + abstraction + "/" + namespace, subject: subject, timeout: 10 * time.Second}
	for range max(conns, 1) {
		// One ClientConn is one HTTP/2 connection; Envoy spreads streams
		// over a few of them (one per worker thread).
		c, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("dialing ext_proc at %s: %w", addr, err)
		}
		t.conns = append(t.conns, c)
		t.clients = append(t.clients, extprocv3.NewExternalProcessorClient(c))
	}
	return t, nil
}

// Close closes the connections.
func (t *ExtprocTarget) Close() error {
	var errs []error
	for _, c := range t.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Do runs op as one ext_proc stream.
func (t *ExtprocTarget) Do(ctx context.Context, op *Op) error {
	ir, err := t.exchange(ctx, op)
	if err != nil {
		return err
	}
	if code := int(ir.GetStatus().GetCode()); code < 200 || code > 299 {
		return &StatusError{Status: code, Body: string(ir.GetBody())}
	}
	return nil
}

// exchange sends op's messages and returns the ImmediateResponse.
func (t *ExtprocTarget) exchange(ctx context.Context, op *Op) (*extprocv3.ImmediateResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel() // resets the stream, as Envoy does once it has its answer
	client := t.clients[t.next.Add(1)%uint64(len(t.clients))]
	stream, err := client.Process(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening ext_proc stream: %w", err)
	}
	noBody := len(op.Body) == 0
	if err := stream.Send(t.headers(op, noBody)); err != nil {
		return nil, fmt.Errorf("sending request_headers: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("awaiting the answer to request_headers: %w", err)
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		return ir, nil
	}
	if resp.GetRequestHeaders() == nil || noBody {
		return nil, fmt.Errorf("unexpected answer to request_headers: %v", resp)
	}
	if err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: op.Body, EndOfStream: true},
	}}); err != nil {
		return nil, fmt.Errorf("sending request_body: %w", err)
	}
	resp, err = stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("awaiting the answer to request_body: %w", err)
	}
	ir := resp.GetImmediateResponse()
	if ir == nil {
		return nil, fmt.Errorf("unexpected answer to request_body: %v", resp)
	}
	return ir, nil
}

// headers is the request_headers message Envoy would send for op.
func (t *ExtprocTarget) headers(op *Op, noBody bool) *extprocv3.ProcessingRequest {
	r := &http.Request{
		Method: op.Method,
		URL:    &url.URL{Path: t.base, RawQuery: ""},
		Host:   "prism.local",
		Header: http.Header{},
	}
	path, query, _ := cutQuery(op.Path)
	r.URL.Path += path
	r.URL.RawQuery = query
	if op.ContentType != "" {
		r.Header["Content-Type"] = []string{op.ContentType}
	}
	if !noBody {
		r.ContentLength = int64(len(op.Body))
		r.Header["Content-Length"] = []string{strconv.Itoa(len(op.Body))}
	}
	msg := devedge.HeadersMessage(r, newRequestID(), noBody)
	if t.subject != "" {
		// What Envoy adds for an mTLS client (the dev edge takes it from
		// the TLS state, which a bench client has none of).
		msg.Attributes["envoy.filters.http.ext_proc"].Fields["connection.uri_san_peer_certificate"] = structpb.NewStringValue(t.subject)
	}
	return msg
}

func cutQuery(p string) (path, query string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

var requestSeq atomic.Uint64

// newRequestID is cheap and unique within the run: the bench measures
// Prism, not a random source.
func newRequestID() string {
	return "bench-" + strconv.FormatUint(requestSeq.Add(1), 36)
}

// HTTPTarget sends requests over HTTP to the dev edge or an Envoy.
type HTTPTarget struct {
	client *http.Client
	base   string
}

// NewHTTPTarget sends requests to baseURL + /v1/{abstraction}/{namespace}.
func NewHTTPTarget(baseURL string, conns int, abstraction, namespace string) *HTTPTarget {
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	_ = conns // HTTP/1.1 needs a connection per concurrent request
	return &HTTPTarget{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: baseURL + "/v1/" + abstraction + "/" + namespace}
}

// Do runs op as one HTTP request.
func (t *HTTPTarget) Do(ctx context.Context, op *Op) error {
	var body io.Reader
	if len(op.Body) > 0 {
		body = bytes.NewReader(op.Body)
	}
	req, err := http.NewRequestWithContext(ctx, op.Method, t.base+op.Path, body)
	if err != nil {
		return err
	}
	if op.ContentType != "" {
		req.Header.Set("Content-Type", op.ContentType)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Status: resp.StatusCode, Body: string(b)}
	}
	return nil
}

// Close releases idle connections.
func (t *HTTPTarget) Close() error {
	t.client.CloseIdleConnections()
	return nil
}
