package extproc

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// filterName is the key under which Envoy's ext_proc filter puts the
// attributes it was asked to send.
const filterName = "envoy.filters.http.ext_proc"

// httpRequest is what extproc knows of a client request after the
// request_headers message: the pseudo-headers, the headers it uses and the
// attributes Envoy sent.
type httpRequest struct {
	method      string
	path        string // raw path without the query, still percent-encoded
	rawQuery    string
	contentType string
	ifMatch     string
	ifNoneMatch string
	// contentLength is -1 when the header is absent.
	contentLength int64
	requestID     string
	// purpose is the x-prism-purpose header, given to the policy.
	purpose string
	// subject is the client identity (URI SAN of the peer certificate).
	subject string
	// endOfStream is set when the request has no body.
	endOfStream bool
}

// headerValue reads a header value the way Envoy sends it: raw_value, with
// value as the fallback of older Envoys.
func headerValue(h *corev3.HeaderValue) string {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return h.GetValue()
}

// newHTTPRequest extracts the request from Envoy's request_headers message.
func newHTTPRequest(req *extprocv3.ProcessingRequest, hs *extprocv3.HttpHeaders) httpRequest {
	r := httpRequest{contentLength: -1, endOfStream: hs.GetEndOfStream()}
	for _, h := range hs.GetHeaders().GetHeaders() {
		switch strings.ToLower(h.GetKey()) {
		case ":method":
			r.method = headerValue(h)
		case ":path":
			r.path = headerValue(h)
		case "content-type":
			r.contentType = headerValue(h)
		case "content-length":
			if n, err := strconv.ParseInt(headerValue(h), 10, 64); err == nil && n >= 0 {
				r.contentLength = n
			}
		case "if-match":
			r.ifMatch = headerValue(h)
		case "if-none-match":
			r.ifNoneMatch = headerValue(h)
		case "x-prism-purpose":
			r.purpose = headerValue(h)
		case "x-request-id":
			r.requestID = headerValue(h)
		case "x-forwarded-client-cert":
			if r.subject == "" {
				r.subject = xfccURI(headerValue(h))
			}
		}
	}
	if i := strings.IndexByte(r.path, '?'); i >= 0 {
		r.path, r.rawQuery = r.path[:i], r.path[i+1:]
	}
	// Newer Envoys send attributes on the request, older ones on the headers.
	attrs := req.GetAttributes()[filterName]
	if attrs == nil {
		//lint:ignore SA1019 Envoys before 1.27 send attributes only here.
		attrs = hs.GetAttributes()[filterName]
	}
	if id := stringAttr(attrs, "request.id"); id != "" && r.requestID == "" {
		r.requestID = id
	}
	if san := stringAttr(attrs, "connection.uri_san_peer_certificate"); san != "" {
		r.subject = san
	}
	return r
}

func stringAttr(s *structpb.Struct, name string) string {
	if s == nil {
		return ""
	}
	return s.GetFields()[name].GetStringValue()
}

// xfccURI returns the URI element of the first x-forwarded-client-cert entry,
// the fallback identity when the peer-certificate attribute is absent.
func xfccURI(xfcc string) string {
	first, _, _ := strings.Cut(xfcc, ",")
	for _, kv := range strings.Split(first, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, "URI") {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
