// Package client is the HTTP client of Prism's data API (API.md) that the
// typed clients protoc-gen-prism generates are built on: it speaks JSON
// values and events, and turns error responses into *Error. Generated code
// marshals the team's messages; this package never sees their types.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Error is an error answer of the data API.
type Error struct {
	Status    int
	Code      string // INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ...
	Message   string
	RequestID string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("prism: %d %s: %s (request %s)", e.Status, e.Code, e.Message, e.RequestID)
}

// IsNotFound reports whether err is a 404 NOT_FOUND answer.
func IsNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == "NOT_FOUND"
}

// Conn is a connection to Prism's data API at BaseURL (the Envoy listener,
// or `prism dev`'s edge, e.g. http://127.0.0.1:8080).
type Conn struct {
	BaseURL string
	// HTTP is the client used; nil is http.DefaultClient. Give it the
	// client certificate in production (mTLS).
	HTTP *http.Client
}

func (c *Conn) do(ctx context.Context, method, path string, q url.Values, body []byte, contentType string) (*http.Response, []byte, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("prism: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("prism: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("prism: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message, RequestID string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error.Code == "" {
			e.Error.Code, e.Error.Message = "UNKNOWN", strings.TrimSpace(string(data))
		}
		return nil, nil, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RequestID: resp.Header.Get("x-request-id")}
	}
	return resp, data, nil
}

func kvPath(ns, key string) string {
	return "/v1/kv/" + url.PathEscape(ns) + "/" + url.PathEscape(key)
}

// Put writes a JSON value under key and returns its new version.
func (c *Conn) Put(ctx context.Context, ns, key string, value []byte) (string, error) {
	_, data, err := c.do(ctx, http.MethodPut, kvPath(ns, key), nil, value, "application/json")
	if err != nil {
		return "", err
	}
	var out struct{ Version string }
	if err := json.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("prism: put answer %q: %w", data, err)
	}
	return out.Version, nil
}

// Get reads the value of key and its version.
func (c *Conn) Get(ctx context.Context, ns, key string) ([]byte, string, error) {
	resp, data, err := c.do(ctx, http.MethodGet, kvPath(ns, key), nil, nil, "")
	if err != nil {
		return nil, "", err
	}
	return data, strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

// Delete removes key (no error when it is absent).
func (c *Conn) Delete(ctx context.Context, ns, key string) error {
	_, _, err := c.do(ctx, http.MethodDelete, kvPath(ns, key), nil, nil, "")
	return err
}

// Item is one key of a scan page.
type Item struct {
	Key     string          `json:"key"`
	Version string          `json:"version"`
	Value   json.RawMessage `json:"value"`
}

// Scan reads one page of keys starting with prefix, in key order.
func (c *Conn) Scan(ctx context.Context, ns, prefix string, limit int, cursor string) ([]Item, string, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	_, data, err := c.do(ctx, http.MethodGet, "/v1/kv/"+url.PathEscape(ns), q, nil, "")
	if err != nil {
		return nil, "", err
	}
	var out struct {
		Items      []Item `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, "", fmt.Errorf("prism: scan answer: %w", err)
	}
	return out.Items, out.NextCursor, nil
}

// Event is a TimeSeries event; Data is the message's JSON.
type Event struct {
	Series string            `json:"series"`
	Time   *time.Time        `json:"time,omitempty"`
	ID     string            `json:"id,omitempty"`
	Data   json.RawMessage   `json:"data"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// Append appends events and reports how many were stored and how many were
// duplicates of events already appended.
func (c *Conn) Append(ctx context.Context, ns string, events []Event) (appended, duplicates int, err error) {
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return 0, 0, fmt.Errorf("prism: %w", err)
	}
	_, data, err := c.do(ctx, http.MethodPost, "/v1/ts/"+url.PathEscape(ns)+"/events", nil, body, "application/json")
	if err != nil {
		return 0, 0, err
	}
	var out struct{ Appended, Duplicates int }
	if err := json.Unmarshal(data, &out); err != nil {
		return 0, 0, fmt.Errorf("prism: append answer: %w", err)
	}
	return out.Appended, out.Duplicates, nil
}

// Query reads events of series with start <= time < end (zero times: no
// bound), oldest first.
func (c *Conn) Query(ctx context.Context, ns, series string, start, end time.Time, limit int, cursor string) ([]Event, string, error) {
	q := url.Values{"series": {series}}
	if !start.IsZero() {
		q.Set("start", start.Format(time.RFC3339Nano))
	}
	if !end.IsZero() {
		q.Set("end", end.Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return c.events(ctx, "/v1/ts/"+url.PathEscape(ns)+"/events", q)
}

// Tail waits up to wait for events of series after the cursor (empty: the
// current end) and returns them with the cursor to continue from.
func (c *Conn) Tail(ctx context.Context, ns, series, after string, wait time.Duration) ([]Event, string, error) {
	q := url.Values{"series": {series}, "wait": {wait.String()}}
	if after != "" {
		q.Set("after", after)
	}
	return c.events(ctx, "/v1/ts/"+url.PathEscape(ns)+"/tail", q)
}

func (c *Conn) events(ctx context.Context, path string, q url.Values) ([]Event, string, error) {
	_, data, err := c.do(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return nil, "", err
	}
	var out struct {
		Events     []Event `json:"events"`
		NextCursor string  `json:"next_cursor"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, "", fmt.Errorf("prism: events answer: %w", err)
	}
	return out.Events, out.NextCursor, nil
}

// CheckLengths refuses a message whose string or bytes fields, named by
// dot-separated JSON path, are longer than their (prism.field).max_length:
// the generated clients call it before sending, so the error names the
// field instead of coming back as a 413 for the whole value.
func CheckLengths(m protoreflect.Message, limits map[string]int) error {
	for path, max := range limits {
		v, ok := fieldAt(m, path)
		if !ok {
			continue
		}
		n := 0
		switch x := v.Interface().(type) {
		case string:
			n = len(x)
		case []byte:
			n = len(x)
		}
		if n > max {
			return fmt.Errorf("prism: field %s of %s is %d bytes, over its max_length of %d", path, m.Descriptor().FullName(), n, max)
		}
	}
	return nil
}

// fieldAt follows a dot-separated path of field names through set
// singular message fields.
func fieldAt(m protoreflect.Message, path string) (protoreflect.Value, bool) {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(p))
		if fd == nil || !m.Has(fd) {
			return protoreflect.Value{}, false
		}
		if i == len(parts)-1 {
			return m.Get(fd), true
		}
		if fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return protoreflect.Value{}, false
		}
		m = m.Get(fd).Message()
	}
	return protoreflect.Value{}, false
}
