package extproc

import (
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/ts"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// FuzzDecodeKV feeds arbitrary request lines, conditions and bodies to the
// KV decoders: they must never panic, and must either reject with a 4xx or
// produce a request that satisfies the API's rules.
func FuzzDecodeKV(f *testing.F) {
	seeds := []struct{ method, path, ifMatch, ifNone, body string }{
		{"GET", "/v1/kv/default/a", "", "", ""},
		{"PUT", "/v1/kv/default/a%2Fb?ttl=30s", `"12"`, "", "hello"},
		{"PUT", "/v1/kv/default/new", "", "*", "{}"},
		{"DELETE", "/v1/kv/default/a", "7", "", ""},
		{"GET", "/v1/kv/default?prefix=a&start=b&end=c&limit=10&cursor=AWE", "", "", ""},
		{"POST", "/v1/kv/default/_mget", "", "", `{"keys":["a","b"]}`},
		{"POST", "/v1/kv/default/_batch", "", "", `{"ops":[{"op":"put","key":"a","value":{"x":1},"ttl":"1m"},{"op":"delete","key":"b","if_match":"3"}]}`},
		{"POST", "/v1/kv/default/_batch", "", "", `{"ops":[{"op":"put","key":"a","value_base64":"aGk=","content_type":"text/plain"}]}`},
		{"GET", "/v1/kv/default/%ff", "", "", ""},
		{"GET", "/v1/kv/default?cursor=%%", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ifMatch, s.ifNone, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, ifMatch, ifNone string, body []byte) {
		r := newTestRequest(method, path)
		r.ifMatch, r.ifNoneMatch = ifMatch, ifNone
		if rt, e := parseRoute(r.path); e == nil {
			req, e := decodeKV(&r, rt)
			checkDecoded(t, req, e)
		} else if e.Status != http.StatusNotFound {
			t.Fatalf("parseRoute(%q): status %d, want 404", r.path, e.Status)
		}
		if keys, e := decodeMultiGet(body); e == nil {
			for _, k := range keys {
				checkKey(t, k)
			}
		} else if e.Status != http.StatusBadRequest {
			t.Fatalf("decodeMultiGet: status %d, want 400", e.Status)
		}
		if ops, e := decodeBatch(body); e == nil {
			for _, op := range ops {
				checkKey(t, op.Put.Key)
				if op.Put.TTL < 0 {
					t.Fatalf("negative ttl %v accepted", op.Put.TTL)
				}
			}
		} else if e.Status != http.StatusBadRequest {
			t.Fatalf("decodeBatch: status %d, want 400", e.Status)
		}
	})
}

func checkDecoded(t *testing.T, req kvRequest, e *apiError) {
	t.Helper()
	if e != nil {
		if e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
			t.Fatalf("decode error %+v: want a 4xx with code and message", e)
		}
		return
	}
	switch req.op {
	case kvGet, kvPut, kvDelete:
		checkKey(t, req.key)
	case kvScan:
		if req.scan.Limit < 1 || req.scan.Limit > kv.MaxScanLimit {
			t.Fatalf("scan limit %d accepted", req.scan.Limit)
		}
	}
	if req.put.TTL < 0 {
		t.Fatalf("negative ttl %v accepted", req.put.TTL)
	}
}

func checkKey(t *testing.T, k string) {
	t.Helper()
	if k == "" || len(k) > kv.MaxKeyBytes || !utf8.ValidString(k) {
		t.Fatalf("invalid key %q accepted", k)
	}
}

// FuzzKVCursor checks that any cursor string is either rejected with 400 or
// names a valid key that encodes back to a cursor naming the same key.
func FuzzKVCursor(f *testing.F) {
	for _, s := range []string{"", "AWE", encodeKVCursor("a/b"), encodeKVCursor("日本"), "AA", "!!", "Ag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		k, e := decodeKVCursor(c)
		if e != nil {
			if e.Status != http.StatusBadRequest {
				t.Fatalf("decodeKVCursor(%q): status %d, want 400", c, e.Status)
			}
			return
		}
		checkKey(t, k)
		if k2, e := decodeKVCursor(encodeKVCursor(k)); e != nil || k2 != k {
			t.Fatalf("cursor of %q does not round trip: %q, %v", k, k2, e)
		}
	})
}

// FuzzProcessingRequest feeds arbitrary ext_proc messages (as Envoy would
// serialize them) through header extraction and request decoding.
func FuzzProcessingRequest(f *testing.F) {
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	for _, path := range []string{"/v1/kv/default/a?ttl=1s", "/v1/kv/default", "/healthz", "/v1/kv/default/_batch",
		"/v1/ts/events/events?series=s-1&start=2026-01-01T00:00:00Z&order=desc&limit=5", "/v1/ts/events/tail?series=s&wait=1s",
		"/v1/graph/social/nodes/a%2Fb/edges?direction=in&label=follows", "/v1/graph/social/edges?from=a&to=b&label=x", "/v1/graph/social/traverse"} {
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				hv(":method", "PUT"), hv(":path", path), hv("content-length", "5"), hv("if-match", `"3"`),
				hv("x-forwarded-client-cert", `By=spiffe://a;URI=spiffe://prism.local/svc`),
			}}},
		}}
		b, _ := proto.Marshal(msg)
		f.Add(b)
	}
	s := NewServer(Options{})
	s.state.Store(&state{namespaces: map[string]*namespace{
		"default": {cfg: &configv1.Namespace{Namespace: "default", Abstraction: configv1.Abstraction_KEYVALUE}, maxValue: defaultMaxValueBytes, timeout: defaultRequestTimeout},
		"events":  {cfg: &configv1.Namespace{Namespace: "events", Abstraction: configv1.Abstraction_TIMESERIES}, maxValue: defaultMaxValueBytes, timeout: defaultRequestTimeout},
		"social":  {cfg: &configv1.Namespace{Namespace: "social", Abstraction: configv1.Abstraction_GRAPH}, maxValue: defaultMaxValueBytes, timeout: defaultRequestTimeout},
	}})
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg extprocv3.ProcessingRequest
		if proto.Unmarshal(data, &msg) != nil {
			return
		}
		hs := msg.GetRequestHeaders()
		if hs == nil {
			return
		}
		req := newHTTPRequest(&msg, hs)
		if !isDataAPI(req.path) {
			return
		}
		c, rep := s.decode(&req)
		if rep != nil {
			if rep.status < 400 || rep.status > 499 {
				t.Fatalf("decode of %q: status %d, want 4xx", req.path, rep.status)
			}
			return
		}
		if c.abstraction == pathKV {
			checkDecoded(t, c.kv, nil)
		}
	})
}

// FuzzDecodeBodies feeds arbitrary bodies to the TimeSeries and Graph body
// decoders: a 400 or a value that passes the backend's own validation.
func FuzzDecodeBodies(f *testing.F) {
	for _, b := range []string{
		`{"events":[{"series":"s-1","time":"2026-01-02T03:04:05.123456789Z","id":"e1","data":{"v":1},"tags":{"k":"v"}}]}`,
		`{"events":[{"series":"bad series"}]}`,
		`{"label":"person","props":{"name":"ada"}}`,
		`{"from":"a","to":"b","label":"follows","props":{}}`,
		`{"start":"a","direction":"both","labels":["x"],"max_depth":3,"limit":10}`,
		`{"start":"a","max_depth":11}`, `[]`, `null`, `{"props":[1]}`,
	} {
		f.Add([]byte(b))
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		if events, e := decodeAppend(body, now); e == nil {
			if err := ts.ValidateEvents(events); err != nil {
				t.Fatalf("decodeAppend accepted events the backend rejects: %v", err)
			}
		} else if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("decodeAppend: status %d", e.Status)
		}
		if n, e := decodeNode("id", body); e == nil {
			if err := n.Validate(); err != nil {
				t.Fatalf("decodeNode accepted %v", err)
			}
		} else if e.Status != http.StatusBadRequest {
			t.Fatalf("decodeNode: status %d", e.Status)
		}
		if ed, e := decodeEdge(body); e == nil {
			if err := ed.Validate(); err != nil {
				t.Fatalf("decodeEdge accepted %v", err)
			}
		} else if e.Status != http.StatusBadRequest {
			t.Fatalf("decodeEdge: status %d", e.Status)
		}
		if a, e := decodeTraverse(body); e == nil {
			if err := a.Validate(); err != nil {
				t.Fatalf("decodeTraverse accepted %v", err)
			}
		} else if e.Status != http.StatusBadRequest {
			t.Fatalf("decodeTraverse: status %d", e.Status)
		}
	})
}
