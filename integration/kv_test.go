package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// kvClient speaks the KV data API over HTTP, as an application does.
type kvClient struct {
	t    *testing.T
	base string // e.g. http://127.0.0.1:1234/v1/kv/default
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %q", r.status, err, r.body)
	}
}

// errorCode returns the code of an error body, checking its shape.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
			Index     *int   `json:"index"`
		} `json:"error"`
	}
	r.json(t, &body)
	if body.Error.Code == "" || body.Error.Message == "" || body.Error.RequestID == "" {
		t.Fatalf("error body %q lacks code, message or request_id", r.body)
	}
	if body.Error.RequestID != r.header.Get("x-request-id") {
		t.Fatalf("error request_id %q differs from x-request-id %q", body.Error.RequestID, r.header.Get("x-request-id"))
	}
	return body.Error.Code
}

func (c kvClient) do(method, path string, body []byte, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.Header.Get("x-request-id") == "" {
		c.t.Errorf("%s %s: response without x-request-id", method, path)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect fails unless the response has the status (and, for errors, the code).
func expect(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %q", what, r.status, status, r.body)
	}
	if code != "" {
		if got := r.errorCode(t); got != code {
			t.Fatalf("%s: code %s, want %s", what, got, code)
		}
	}
}

func (c kvClient) put(key string, value string, headers ...string) string {
	c.t.Helper()
	r := c.do("PUT", "/"+escapeKey(key), []byte(value), headers...)
	expect(c.t, "PUT "+key, r, 200, "")
	var res struct{ Key, Version string }
	r.json(c.t, &res)
	if res.Key != key || res.Version == "" || r.header.Get("etag") != `"`+res.Version+`"` {
		c.t.Fatalf("PUT %s = %s (etag %s), want key, version and matching ETag", key, r.body, r.header.Get("etag"))
	}
	return res.Version
}

// escapeKey percent-encodes a key for the path, keeping '/' as the
// separator-friendly form clients naturally use.
func escapeKey(k string) string {
	parts := strings.Split(k, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

type scanPage struct {
	Items []struct {
		Key         string          `json:"key"`
		Version     string          `json:"version"`
		ContentType string          `json:"content_type"`
		Value       json.RawMessage `json:"value"`
		ValueBase64 *string         `json:"value_base64"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func TestKVThroughDevEdge(t *testing.T) {
	for _, b := range []struct {
		name    string
		backend func(t *testing.T) *configv1.Backend
		cached  bool
	}{
		{"sqlite", func(t *testing.T) *configv1.Backend { return sqliteBackend(t, "db") }, false},
		{"postgres", func(t *testing.T) *configv1.Backend { return postgresBackend(t, "db", "") }, false},
		{"postgres+redis", func(t *testing.T) *configv1.Backend { return postgresBackend(t, "db", "") }, true},
	} {
		t.Run(b.name, func(t *testing.T) {
			var opts stackOptions
			orders := kvNamespace("orders", "db", 0)
			if b.cached {
				opts.cache = redisCache(t)
				orders.Cache = &configv1.Cache{Ttl: durationpb.New(time.Minute)}
			}
			st := startStackWith(t, opts, []*configv1.Backend{b.backend(t)}, []*configv1.Namespace{
				orders,
				{Namespace: "small", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "db", Limits: &configv1.Limits{MaxValueBytes: 16}},
			})
			c := kvClient{t: t, base: st.edgeURL + "/v1/kv/orders"}
			testKVRoutes(t, c, kvClient{t: t, base: st.edgeURL + "/v1/kv/small"}, st.edgeURL)
			if b.cached {
				if s := opts.cache.Stats(); s.Hits == 0 || s.Fills == 0 || s.Invalidations == 0 {
					t.Fatalf("cache stats %+v: the routes should have filled, hit and invalidated the cache", s)
				}
			}
		})
	}
}

func testKVRoutes(t *testing.T, c, small kvClient, edge string) {
	t.Run("put get delete", func(t *testing.T) {
		v1 := c.put("o-17", "hi", "content-type", "text/plain")
		r := c.do("GET", "/o-17", nil)
		expect(t, "GET", r, 200, "")
		if string(r.body) != "hi" || r.header.Get("content-type") != "text/plain" || r.header.Get("etag") != `"`+v1+`"` {
			t.Fatalf("GET = %q %q %q, want hi text/plain %q", r.body, r.header.Get("content-type"), r.header.Get("etag"), v1)
		}
		v2 := c.put("o-17", `{"total": 3}`, "content-type", "application/json")
		if v2 == v1 {
			t.Fatalf("version did not change on overwrite: %s", v2)
		}
		expect(t, "DELETE", c.do("DELETE", "/o-17", nil), 204, "")
		expect(t, "GET after delete", c.do("GET", "/o-17", nil), 404, "NOT_FOUND")
		expect(t, "DELETE absent", c.do("DELETE", "/o-17", nil), 204, "")
	})
	t.Run("default content type and empty value", func(t *testing.T) {
		c.put("empty", "")
		r := c.do("GET", "/empty", nil)
		expect(t, "GET empty", r, 200, "")
		if len(r.body) != 0 || r.header.Get("content-type") != "application/octet-stream" {
			t.Fatalf("GET empty = %q %q", r.body, r.header.Get("content-type"))
		}
	})
	t.Run("conditional writes", func(t *testing.T) {
		v := c.put("cas", "1")
		expect(t, "If-Match stale", c.do("PUT", "/cas", []byte("x"), "if-match", `"1"`), 412, "FAILED_PRECONDITION")
		v2 := c.put("cas", "2", "if-match", `"`+v+`"`)
		expect(t, "If-Match old version", c.do("PUT", "/cas", []byte("3"), "if-match", `"`+v+`"`), 412, "FAILED_PRECONDITION")
		expect(t, "create-only on existing", c.do("PUT", "/cas", []byte("3"), "if-none-match", "*"), 409, "ALREADY_EXISTS")
		expect(t, "DELETE If-Match stale", c.do("DELETE", "/cas", nil, "if-match", `"`+v+`"`), 412, "FAILED_PRECONDITION")
		expect(t, "DELETE If-Match", c.do("DELETE", "/cas", nil, "if-match", `"`+v2+`"`), 204, "")
		c.put("cas", "new", "if-none-match", "*")
	})
	t.Run("ttl", func(t *testing.T) {
		r := c.do("PUT", "/short?ttl=1s", []byte("x"))
		expect(t, "PUT ttl", r, 200, "")
		expect(t, "GET before expiry", c.do("GET", "/short", nil), 200, "")
		deadline := time.Now().Add(5 * time.Second)
		for c.do("GET", "/short", nil).status != 404 {
			if time.Now().After(deadline) {
				t.Fatal("key with ttl=1s still readable after 5s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		expect(t, "bad ttl", c.do("PUT", "/short?ttl=soon", []byte("x")), 400, "INVALID_ARGUMENT")
	})
	t.Run("scan pages in byte order", func(t *testing.T) {
		keys := []string{"s/a", "s/a/b", "s/%", "s/ключ", "s/日本", "s/\u00e9", "s/z", "s/Z", "s/😀"}
		for i, k := range keys {
			if i%2 == 0 {
				c.put(k, fmt.Sprintf(`{"n":%d}`, i), "content-type", "application/json")
			} else {
				c.put(k, fmt.Sprintf("bin-%d", i))
			}
		}
		want := append([]string(nil), keys...)
		sort.Strings(want)
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(keys) {
				t.Fatal("scan does not terminate")
			}
			q := "?prefix=" + url.QueryEscape("s/") + "&limit=2"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := c.do("GET", q, nil)
			expect(t, "scan", r, 200, "")
			var p scanPage
			r.json(t, &p)
			for _, it := range p.Items {
				got = append(got, it.Key)
				if (it.Value == nil) == (it.ValueBase64 == nil) {
					t.Fatalf("item %q has neither or both of value and value_base64", it.Key)
				}
				if it.ValueBase64 != nil {
					if _, err := base64.StdEncoding.DecodeString(*it.ValueBase64); err != nil {
						t.Fatalf("item %q: bad base64", it.Key)
					}
				}
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("scan order\n got %q\nwant %q", got, want)
		}
		r := c.do("GET", "?start="+url.QueryEscape("s/a")+"&end="+url.QueryEscape("s/z"), nil)
		var p scanPage
		r.json(t, &p)
		for _, it := range p.Items {
			if it.Key < "s/a" || it.Key >= "s/z" {
				t.Fatalf("key %q outside [s/a, s/z)", it.Key)
			}
		}
		expect(t, "bad cursor", c.do("GET", "?cursor=nope!", nil), 400, "INVALID_ARGUMENT")
		expect(t, "bad limit", c.do("GET", "?limit=5000", nil), 400, "INVALID_ARGUMENT")
	})
	t.Run("mget", func(t *testing.T) {
		c.put("m1", `{"a":1}`, "content-type", "application/json")
		c.put("m2", "raw")
		r := c.do("POST", "/_mget", []byte(`{"keys":["m1","nope","m2"]}`))
		expect(t, "_mget", r, 200, "")
		var res struct {
			Items   []map[string]any `json:"items"`
			Missing []string         `json:"missing"`
		}
		r.json(t, &res)
		if len(res.Items) != 2 || res.Items[0]["key"] != "m1" || res.Items[1]["key"] != "m2" || len(res.Missing) != 1 || res.Missing[0] != "nope" {
			t.Fatalf("_mget = %s", r.body)
		}
		if v, ok := res.Items[0]["value"].(map[string]any); !ok || v["a"] != float64(1) {
			t.Fatalf("_mget JSON value not embedded: %s", r.body)
		}
		if res.Items[1]["value_base64"] != base64.StdEncoding.EncodeToString([]byte("raw")) {
			t.Fatalf("_mget binary value not base64: %s", r.body)
		}
		expect(t, "_mget bad JSON", c.do("POST", "/_mget", []byte(`{"keys":`)), 400, "INVALID_ARGUMENT")
		expect(t, "_mget unknown field", c.do("POST", "/_mget", []byte(`{"keys":["a"],"x":1}`)), 400, "INVALID_ARGUMENT")
	})
	t.Run("batch is all or nothing", func(t *testing.T) {
		v := c.put("b-existing", "old")
		r := c.do("POST", "/_batch", []byte(`{"ops":[
			{"op":"put","key":"b-1","value":{"x":1}},
			{"op":"put","key":"b-2","value_base64":"aGk="},
			{"op":"put","key":"b-existing","value":"new","if_match":"0"}]}`))
		expect(t, "failing batch", r, 412, "FAILED_PRECONDITION")
		var e struct {
			Error struct{ Index *int } `json:"error"`
		}
		r.json(t, &e)
		if e.Error.Index == nil || *e.Error.Index != 2 {
			t.Fatalf("failing batch: index %v, want 2; body %s", e.Error.Index, r.body)
		}
		expect(t, "b-1 after failed batch", c.do("GET", "/b-1", nil), 404, "NOT_FOUND")
		if g := c.do("GET", "/b-existing", nil); string(g.body) != "old" {
			t.Fatalf("b-existing after failed batch = %q, want old", g.body)
		}
		r = c.do("POST", "/_batch", []byte(`{"ops":[
			{"op":"put","key":"b-1","value":{"x":1}},
			{"op":"put","key":"b-existing","value_base64":"bmV3","if_match":"`+v+`"},
			{"op":"delete","key":"m2"}]}`))
		expect(t, "batch", r, 200, "")
		var res struct{ Versions []string }
		r.json(t, &res)
		if len(res.Versions) != 3 || res.Versions[0] == "" || res.Versions[1] == "" {
			t.Fatalf("batch versions = %q", res.Versions)
		}
		if g := c.do("GET", "/b-1", nil); string(g.body) != `{"x":1}` || g.header.Get("content-type") != "application/json" {
			t.Fatalf("b-1 = %q %q", g.body, g.header.Get("content-type"))
		}
		expect(t, "deleted by batch", c.do("GET", "/m2", nil), 404, "NOT_FOUND")
		expect(t, "batch bad op", c.do("POST", "/_batch", []byte(`{"ops":[{"op":"merge","key":"a"}]}`)), 400, "INVALID_ARGUMENT")
	})
	t.Run("bad input", func(t *testing.T) {
		expect(t, "unknown namespace", kvClient{t: t, base: edge + "/v1/kv/nope"}.do("GET", "/a", nil), 404, "NOT_FOUND")
		expect(t, "unknown abstraction", kvClient{t: t, base: edge + "/v1/blob/orders"}.do("GET", "/a", nil), 404, "NOT_FOUND")
		expect(t, "key over 1024 bytes", c.do("GET", "/"+strings.Repeat("k", 1025), nil), 400, "INVALID_ARGUMENT")
		expect(t, "invalid UTF-8 key", c.do("GET", "/%ff", nil), 400, "INVALID_ARGUMENT")
		expect(t, "invalid JSON value", c.do("PUT", "/j", []byte("{"), "content-type", "application/json"), 400, "INVALID_ARGUMENT")
		expect(t, "value over the limit", small.do("PUT", "/big", bytes.Repeat([]byte("x"), 17)), 413, "TOO_LARGE")
		small.put("fits", strings.Repeat("x", 16))
		expect(t, "POST to a key", c.do("POST", "/a", []byte("x")), 405, "METHOD_NOT_ALLOWED")
	})
	t.Run("1 MiB value", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		r := c.do("PUT", "/big", big)
		expect(t, "PUT 1 MiB", r, 200, "")
		g := c.do("GET", "/big", nil)
		if !bytes.Equal(g.body, big) {
			t.Fatalf("GET 1 MiB returned %d bytes, not the value written", len(g.body))
		}
		expect(t, "PUT 1 MiB + 1", c.do("PUT", "/big", append(big, 'x')), 413, "TOO_LARGE")
	})
	t.Run("paths outside the data API", func(t *testing.T) {
		// extproc answers CONTINUE; the dev edge has no upstream, so 404
		// from the edge itself rather than an API error.
		r := kvClient{t: t, base: edge}.do("GET", "/healthz", nil)
		if r.status != 404 || strings.Contains(string(r.body), "NOT_FOUND") {
			t.Fatalf("GET /healthz = %d %q, want the edge's plain 404", r.status, r.body)
		}
	})
}
