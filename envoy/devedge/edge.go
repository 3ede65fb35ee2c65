// Package devedge plays Envoy's part for `prism dev` and tests: an HTTP
// listener that sends every request to the ext_proc server over the real
// gRPC protocol, exactly as Envoy's ext_proc filter does (request_headers
// with pseudo-headers and attributes, wait for its answer, then the buffered
// body), and renders the ImmediateResponse.
package devedge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Defaults mirror what Prism's generated Envoy config sets.
const (
	DefaultMessageTimeout    = 5 * time.Second
	DefaultMaxMessageTimeout = 40 * time.Second
	DefaultMaxBody           = 8 << 20
)

// Options configure an Edge. The zero value works.
type Options struct {
	// MessageTimeout bounds the wait for each ext_proc answer, like the
	// filter's message_timeout; on expiry the client gets 504.
	MessageTimeout time.Duration
	// MaxMessageTimeout bounds what the processor may ask for with
	// override_message_timeout (the filter's max_message_timeout).
	MaxMessageTimeout time.Duration
	// MaxBody is the buffer limit; a larger body gets 413, as from Envoy.
	MaxBody int64
	Logger  *slog.Logger
}

// Edge is an http.Handler that forwards to an ext_proc server.
type Edge struct {
	client extprocv3.ExternalProcessorClient
	opts   Options
}

// New makes an Edge over an ext_proc client.
func New(client extprocv3.ExternalProcessorClient, opts Options) *Edge {
	if opts.MessageTimeout <= 0 {
		opts.MessageTimeout = DefaultMessageTimeout
	}
	if opts.MaxMessageTimeout <= 0 {
		opts.MaxMessageTimeout = DefaultMaxMessageTimeout
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Edge{client: client, opts: opts}
}

// ServeHTTP runs one request through ext_proc.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := r.Header.Get("x-request-id")
	if requestID == "" {
		requestID = newRequestID()
	}
	if r.ContentLength > e.opts.MaxBody {
		localReply(w, http.StatusRequestEntityTooLarge, "Payload Too Large", requestID)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stream, err := e.client.Process(ctx)
	if err != nil {
		e.opts.Logger.Warn("ext_proc stream failed", "err", err)
		localReply(w, http.StatusInternalServerError, "ext_proc unavailable", requestID)
		return
	}
	defer stream.CloseSend()

	// Envoy knows there is no body when there is neither a non-zero
	// Content-Length nor a chunked transfer encoding.
	noBody := r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody
	if err := stream.Send(HeadersMessage(r, requestID, noBody)); err != nil {
		localReply(w, http.StatusInternalServerError, "ext_proc send failed", requestID)
		return
	}
	resp, err := e.recv(stream, cancel)
	if err != nil {
		e.fail(w, err, requestID)
		return
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		render(w, ir)
		return
	}
	if resp.GetRequestHeaders() == nil {
		localReply(w, http.StatusInternalServerError, "unexpected ext_proc response to request_headers", requestID)
		return
	}
	if noBody {
		// CONTINUE: Envoy would route upstream; the dev edge has no upstream.
		localReply(w, http.StatusNotFound, "no route", requestID)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, e.opts.MaxBody+1))
	if err != nil {
		localReply(w, http.StatusBadRequest, "reading request body failed", requestID)
		return
	}
	if int64(len(body)) > e.opts.MaxBody {
		localReply(w, http.StatusRequestEntityTooLarge, "Payload Too Large", requestID)
		return
	}
	if err := stream.Send(&extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true},
		},
	}); err != nil {
		localReply(w, http.StatusInternalServerError, "ext_proc send failed", requestID)
		return
	}
	resp, err = e.recv(stream, cancel)
	if err != nil {
		e.fail(w, err, requestID)
		return
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		render(w, ir)
		return
	}
	localReply(w, http.StatusNotFound, "no route", requestID)
}

var errMessageTimeout = errors.New("ext_proc message timeout")

// recv waits for one answer within the message timeout; on expiry the stream
// is cancelled, as Envoy resets it. Like Envoy, a response that carries only
// override_message_timeout restarts the timer with that duration, when it is
// within MaxMessageTimeout, and the wait goes on.
func (e *Edge) recv(stream extprocv3.ExternalProcessor_ProcessClient, cancel context.CancelFunc) (*extprocv3.ProcessingResponse, error) {
	timeout := e.opts.MessageTimeout
	for {
		timedOut := make(chan struct{})
		t := time.AfterFunc(timeout, func() {
			close(timedOut)
			cancel()
		})
		resp, err := stream.Recv()
		if !t.Stop() {
			<-timedOut
			return nil, errMessageTimeout
		}
		if err != nil || resp.GetResponse() != nil || resp.GetOverrideMessageTimeout() == nil {
			return resp, err
		}
		if d := resp.GetOverrideMessageTimeout().AsDuration(); d > 0 && d <= e.opts.MaxMessageTimeout {
			timeout = d
		}
	}
}

func (e *Edge) fail(w http.ResponseWriter, err error, requestID string) {
	if errors.Is(err, errMessageTimeout) {
		localReply(w, http.StatusGatewayTimeout, "ext_proc message timeout", requestID)
		return
	}
	e.opts.Logger.Warn("ext_proc stream failed", "err", err)
	localReply(w, http.StatusInternalServerError, "ext_proc stream failed", requestID)
}

// HeadersMessage builds the request_headers message Envoy sends for r:
// pseudo-headers first, header values in raw_value, and the attributes the
// Prism listener asks for under the filter's name.
func HeadersMessage(r *http.Request, requestID string, endOfStream bool) *extprocv3.ProcessingRequest {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	headers := []*corev3.HeaderValue{
		hv(":authority", r.Host),
		hv(":path", r.URL.RequestURI()),
		hv(":method", r.Method),
		hv(":scheme", scheme),
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "x-request-id" || k == "x-forwarded-client-cert" {
			continue // Envoy sets these itself
		}
		for _, v := range vs {
			headers = append(headers, hv(k, v))
		}
	}
	if r.ContentLength > 0 && r.Header.Get("content-length") == "" {
		headers = append(headers, hv("content-length", strconv.FormatInt(r.ContentLength, 10)))
	}
	headers = append(headers, hv("x-forwarded-proto", scheme), hv("x-request-id", requestID))
	attrs := map[string]any{"request.id": requestID}
	if san := peerURISAN(r); san != "" {
		attrs["connection.uri_san_peer_certificate"] = san
	}
	st, _ := structpb.NewStruct(attrs)
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{
				Headers:     &corev3.HeaderMap{Headers: headers},
				EndOfStream: endOfStream,
			},
		},
		Attributes: map[string]*structpb.Struct{"envoy.filters.http.ext_proc": st},
	}
}

// peerURISAN is the first URI SAN of a verified client certificate.
func peerURISAN(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	for _, u := range r.TLS.PeerCertificates[0].URIs {
		return u.String()
	}
	return ""
}

// render writes an ImmediateResponse the way Envoy's local reply does.
func render(w http.ResponseWriter, ir *extprocv3.ImmediateResponse) {
	for _, h := range ir.GetHeaders().GetSetHeaders() {
		v := string(h.GetHeader().GetRawValue())
		if v == "" {
			v = h.GetHeader().GetValue()
		}
		w.Header().Set(h.GetHeader().GetKey(), v)
	}
	code := int(ir.GetStatus().GetCode())
	if code < 200 || code > 599 {
		code = http.StatusOK // Envoy's default for an unset status
	}
	w.WriteHeader(code)
	_, _ = w.Write(ir.GetBody())
}

// localReply answers like Envoy's own local replies: plain text.
func localReply(w http.ResponseWriter, code int, msg, requestID string) {
	w.Header().Set("content-type", "text/plain")
	w.Header().Set("x-request-id", requestID)
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
