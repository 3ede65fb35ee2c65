package extproc

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/xds/model"
)

func TestDecodeKVRequests(t *testing.T) {
	long := strings.Repeat("k", kv.MaxKeyBytes)
	tests := []struct {
		name    string
		method  string
		path    string
		ifMatch string
		ifNone  string
		wantOp  kvOp
		wantKey string
		check   func(t *testing.T, r kvRequest)
	}{
		{name: "get", method: "GET", path: "/v1/kv/default/a", wantOp: kvGet, wantKey: "a"},
		{name: "key with slashes and escapes", method: "GET", path: "/v1/kv/default/a/b%2Fc%25d", wantOp: kvGet, wantKey: "a/b/c%d"},
		{name: "unicode key", method: "PUT", path: "/v1/kv/default/%D0%BA%D0%BB%D1%8E%D1%87", wantOp: kvPut, wantKey: "ключ"},
		{name: "longest key", method: "GET", path: "/v1/kv/default/" + long, wantOp: kvGet, wantKey: long},
		{name: "put with ttl", method: "PUT", path: "/v1/kv/default/a?ttl=30s", wantOp: kvPut, wantKey: "a",
			check: func(t *testing.T, r kvRequest) {
				if r.put.TTL != 30*time.Second {
					t.Errorf("ttl = %v, want 30s", r.put.TTL)
				}
			}},
		{name: "put if-match quoted", method: "PUT", path: "/v1/kv/default/a", ifMatch: `"17"`, wantOp: kvPut, wantKey: "a",
			check: func(t *testing.T, r kvRequest) {
				if r.put.Cond.IfMatch != "17" {
					t.Errorf("if-match = %q, want 17", r.put.Cond.IfMatch)
				}
			}},
		{name: "put create only", method: "PUT", path: "/v1/kv/default/a", ifNone: "*", wantOp: kvPut, wantKey: "a",
			check: func(t *testing.T, r kvRequest) {
				if !r.put.Cond.IfNoneMatch {
					t.Error("IfNoneMatch not set")
				}
			}},
		{name: "delete", method: "DELETE", path: "/v1/kv/default/a", wantOp: kvDelete, wantKey: "a"},
		{name: "scan", method: "GET", path: "/v1/kv/default?prefix=a%2F&limit=5", wantOp: kvScan,
			check: func(t *testing.T, r kvRequest) {
				if r.scan.Prefix != "a/" || r.scan.Limit != 5 {
					t.Errorf("scan = %+v, want prefix a/ limit 5", r.scan)
				}
			}},
		{name: "scan default limit", method: "GET", path: "/v1/kv/default", wantOp: kvScan,
			check: func(t *testing.T, r kvRequest) {
				if r.scan.Limit != kv.DefaultLimit {
					t.Errorf("limit = %d, want %d", r.scan.Limit, kv.DefaultLimit)
				}
			}},
		{name: "scan with cursor", method: "GET", path: "/v1/kv/default?cursor=" + encodeKVCursor("k/ü"), wantOp: kvScan,
			check: func(t *testing.T, r kvRequest) {
				if r.scan.After != "k/ü" {
					t.Errorf("after = %q, want k/ü", r.scan.After)
				}
			}},
		{name: "mget", method: "POST", path: "/v1/kv/default/_mget", wantOp: kvMultiGet},
		{name: "batch", method: "POST", path: "/v1/kv/default/_batch", wantOp: kvBatch},
		{name: "get of key named _mget", method: "GET", path: "/v1/kv/default/_mget", wantOp: kvGet, wantKey: "_mget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRequest(tt.method, tt.path)
			r.ifMatch, r.ifNoneMatch = tt.ifMatch, tt.ifNone
			rt, e := parseRoute(r.path)
			if e != nil {
				t.Fatalf("parseRoute(%q): %v", r.path, e)
			}
			got, e := decodeKV(&r, rt)
			if e != nil {
				t.Fatalf("decodeKV(%s %s): %v", tt.method, tt.path, e)
			}
			if got.op != tt.wantOp || got.key != tt.wantKey {
				t.Fatalf("decodeKV(%s %s) = op %d key %q, want op %d key %q", tt.method, tt.path, got.op, got.key, tt.wantOp, tt.wantKey)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestDecodeKVRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, method, path, ifMatch, ifNone string
		wantStatus                          int
	}{
		{"empty key", "GET", "/v1/kv/default/", "", "", http.StatusBadRequest},
		{"key over 1024 bytes", "GET", "/v1/kv/default/" + strings.Repeat("k", kv.MaxKeyBytes+1), "", "", http.StatusBadRequest},
		{"invalid utf-8 key", "GET", "/v1/kv/default/%ff%fe", "", "", http.StatusBadRequest},
		{"bad percent escape", "GET", "/v1/kv/default/a%zz", "", "", http.StatusBadRequest},
		{"bad ttl", "PUT", "/v1/kv/default/a?ttl=soon", "", "", http.StatusBadRequest},
		{"negative ttl", "PUT", "/v1/kv/default/a?ttl=-1s", "", "", http.StatusBadRequest},
		{"zero ttl", "PUT", "/v1/kv/default/a?ttl=0s", "", "", http.StatusBadRequest},
		{"unknown parameter", "GET", "/v1/kv/default/a?tll=1s", "", "", http.StatusBadRequest},
		{"repeated parameter", "PUT", "/v1/kv/default/a?ttl=1s&ttl=2s", "", "", http.StatusBadRequest},
		{"bad cursor", "GET", "/v1/kv/default?cursor=%%%", "", "", http.StatusBadRequest},
		{"cursor not base64", "GET", "/v1/kv/default?cursor=!!", "", "", http.StatusBadRequest},
		{"limit zero", "GET", "/v1/kv/default?limit=0", "", "", http.StatusBadRequest},
		{"limit over max", "GET", "/v1/kv/default?limit=1001", "", "", http.StatusBadRequest},
		{"limit not a number", "GET", "/v1/kv/default?limit=ten", "", "", http.StatusBadRequest},
		{"weak etag", "PUT", "/v1/kv/default/a", `W/"1"`, "", http.StatusBadRequest},
		{"if-none-match not star", "PUT", "/v1/kv/default/a", "", `"1"`, http.StatusBadRequest},
		{"both conditions", "PUT", "/v1/kv/default/a", `"1"`, "*", http.StatusBadRequest},
		{"post to key", "POST", "/v1/kv/default/a", "", "", http.StatusMethodNotAllowed},
		{"put to namespace", "PUT", "/v1/kv/default", "", "", http.StatusMethodNotAllowed},
		{"patch", "PATCH", "/v1/kv/default/a", "", "", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRequest(tt.method, tt.path)
			r.ifMatch, r.ifNoneMatch = tt.ifMatch, tt.ifNone
			rt, e := parseRoute(r.path)
			if e == nil {
				_, e = decodeKV(&r, rt)
			}
			if e == nil {
				t.Fatalf("%s %s: accepted, want status %d", tt.method, tt.path, tt.wantStatus)
			}
			if e.Status != tt.wantStatus {
				t.Fatalf("%s %s: status %d (%s), want %d", tt.method, tt.path, e.Status, e.Message, tt.wantStatus)
			}
		})
	}
}

func TestParseRouteRejectsUnknownPaths(t *testing.T) {
	for _, p := range []string{"/v1/", "/v1/blob/x", "/v1/kv/", "/v1/kv/Upper", "/v1/kv/-x", "/v1/kv/a%2Fb"} {
		if _, e := parseRoute(p); e == nil || e.Status != http.StatusNotFound {
			t.Errorf("parseRoute(%q) = %v, want 404", p, e)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	ops, e := decodeBatch([]byte(`{"ops":[
		{"op":"put","key":"a","value":{"x": 1}},
		{"op":"put","key":"b","value_base64":"aGk=","ttl":"1m","if_match":"\"5\""},
		{"op":"delete","key":"c"}]}`))
	if e != nil {
		t.Fatalf("decodeBatch: %v", e)
	}
	if len(ops) != 3 {
		t.Fatalf("got %d ops, want 3", len(ops))
	}
	if string(ops[0].Put.Value) != `{"x":1}` || ops[0].Put.ContentType != contentTypeJSON {
		t.Errorf("op 0 = %q %q, want compact JSON value", ops[0].Put.Value, ops[0].Put.ContentType)
	}
	if string(ops[1].Put.Value) != "hi" || ops[1].Put.TTL != time.Minute || ops[1].Put.Cond.IfMatch != "5" {
		t.Errorf("op 1 = %+v, want value hi, ttl 1m, if_match 5", ops[1].Put)
	}
	if !ops[2].Delete || ops[2].Put.Key != "c" {
		t.Errorf("op 2 = %+v, want delete c", ops[2])
	}
}

func TestDecodeBatchRejectsBadOps(t *testing.T) {
	tests := []struct {
		name, body string
		wantIndex  int // -1: error about the whole body
	}{
		{"not json", `{"ops":`, -1},
		{"unknown field", `{"ops":[],"x":1}`, -1},
		{"trailing data", `{"ops":[{"op":"delete","key":"a"}]} {}`, -1},
		{"no ops", `{"ops":[]}`, -1},
		{"unknown op", `{"ops":[{"op":"delete","key":"a"},{"op":"upsert","key":"a"}]}`, 1},
		{"put without value", `{"ops":[{"op":"put","key":"a"}]}`, 0},
		{"both values", `{"ops":[{"op":"put","key":"a","value":1,"value_base64":"aGk="}]}`, 0},
		{"bad base64", `{"ops":[{"op":"put","key":"a","value_base64":"***"}]}`, 0},
		{"empty key", `{"ops":[{"op":"delete","key":""}]}`, 0},
		{"bad ttl", `{"ops":[{"op":"put","key":"a","value":1,"ttl":"forever"}]}`, 0},
		{"delete with value", `{"ops":[{"op":"delete","key":"a","value":1}]}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e := decodeBatch([]byte(tt.body))
			if e == nil || e.Status != http.StatusBadRequest {
				t.Fatalf("decodeBatch(%s) = %v, want 400", tt.body, e)
			}
			gotIndex := -1
			if e.Index != nil {
				gotIndex = *e.Index
			}
			if gotIndex != tt.wantIndex {
				t.Fatalf("decodeBatch(%s): index %d, want %d (%s)", tt.body, gotIndex, tt.wantIndex, e.Message)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, k := range []string{"a", "a/b%c", "日本", "\u0080x", strings.Repeat("z", kv.MaxKeyBytes)} {
		got, e := decodeKVCursor(encodeKVCursor(k))
		if e != nil || got != k {
			t.Errorf("cursor round trip of %q = %q, %v", k, got, e)
		}
	}
}

func newTestRequest(method, path string) httpRequest {
	r := httpRequest{method: method, path: path, contentLength: -1}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		r.path, r.rawQuery = path[:i], path[i+1:]
	}
	return r
}

// TestMaxMessageTimeoutMatchesTheListener keeps extproc's cap on
// override_message_timeout equal to what the generated listener allows.
func TestMaxMessageTimeoutMatchesTheListener(t *testing.T) {
	if maxMessageTimeout != model.MaxMessageTimeout {
		t.Fatalf("extproc caps overrides at %v, the listener allows %v", maxMessageTimeout, model.MaxMessageTimeout)
	}
}
