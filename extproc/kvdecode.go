package extproc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prism-gw/prism/backends/kv"
)

// kvOp is a KeyValue operation of the data API.
type kvOp int

const (
	kvGet kvOp = iota
	kvPut
	kvDelete
	kvScan
	kvMultiGet
	kvBatch
)

// maxTTL keeps expiry times far from int64 overflow.
const maxTTL = 100 * 365 * 24 * time.Hour

const (
	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

// kvRequest is a decoded KeyValue request. The body (PUT value, _mget, _batch)
// is decoded separately once it has arrived.
type kvRequest struct {
	op   kvOp
	key  string
	put  kv.PutOp
	cond kv.Cond
	scan kv.ScanQuery
}

// needsBody reports whether the operation reads the request body.
func (r *kvRequest) needsBody() bool {
	return r.op == kvPut || r.op == kvMultiGet || r.op == kvBatch
}

// decodeKV decodes the method, path remainder, query and headers of a
// /v1/kv/{ns}... request.
func decodeKV(r *httpRequest, rt route) (kvRequest, *apiError) {
	q, err := url.ParseQuery(r.rawQuery)
	if err != nil {
		return kvRequest{}, invalid("malformed query string: %v", err)
	}
	if !rt.hasRest || rt.rest == "" {
		if rt.hasRest {
			return kvRequest{}, invalid("empty key")
		}
		if r.method != http.MethodGet {
			return kvRequest{}, methodNotAllowed(r.method, "a namespace (use GET to scan)")
		}
		return decodeScan(q)
	}
	if r.method == http.MethodPost {
		switch rt.rest {
		case "_mget":
			return kvRequest{op: kvMultiGet}, onlyParams(q)
		case "_batch":
			return kvRequest{op: kvBatch}, onlyParams(q)
		}
		return kvRequest{}, methodNotAllowed(r.method, "a key (POST is for _mget and _batch)")
	}
	key, err := url.PathUnescape(rt.rest)
	if err != nil {
		return kvRequest{}, invalid("malformed percent-encoding in key: %v", err)
	}
	if e := validateKey(key); e != nil {
		return kvRequest{}, e
	}
	cond, e := decodeCond(r)
	if e != nil {
		return kvRequest{}, e
	}
	switch r.method {
	case http.MethodGet, http.MethodHead:
		return kvRequest{op: kvGet, key: key}, onlyParams(q)
	case http.MethodDelete:
		if cond.IfNoneMatch {
			return kvRequest{}, invalid("If-None-Match is not allowed on DELETE")
		}
		return kvRequest{op: kvDelete, key: key, cond: cond}, onlyParams(q)
	case http.MethodPut:
		put := kv.PutOp{Key: key, Cond: cond, ContentType: contentTypeBinary}
		if r.contentType != "" {
			put.ContentType = r.contentType
		}
		if ttl := q.Get("ttl"); ttl != "" {
			d, e := parseTTL(ttl)
			if e != nil {
				return kvRequest{}, e
			}
			put.TTL = d
		}
		return kvRequest{op: kvPut, key: key, put: put}, onlyParams(q, "ttl")
	}
	return kvRequest{}, methodNotAllowed(r.method, "a key")
}

// onlyParams rejects query parameters the operation does not know, so that a
// typo is an error rather than a silently ignored option.
func onlyParams(q url.Values, allowed ...string) *apiError {
	for name, vals := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return invalid("unknown query parameter %q", name)
		}
		if len(vals) > 1 {
			return invalid("query parameter %q given %d times", name, len(vals))
		}
	}
	return nil
}

func decodeScan(q url.Values) (kvRequest, *apiError) {
	if e := onlyParams(q, "prefix", "start", "end", "limit", "cursor"); e != nil {
		return kvRequest{}, e
	}
	s := kv.ScanQuery{Prefix: q.Get("prefix"), Start: q.Get("start"), End: q.Get("end"), Limit: kv.DefaultLimit}
	for name, v := range map[string]string{"prefix": s.Prefix, "start": s.Start, "end": s.End} {
		if len(v) > kv.MaxKeyBytes || !utf8.ValidString(v) {
			return kvRequest{}, invalid("%s must be at most %d bytes of UTF-8", name, kv.MaxKeyBytes)
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > kv.MaxScanLimit {
			return kvRequest{}, invalid("limit must be an integer from 1 to %d, got %q", kv.MaxScanLimit, l)
		}
		s.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		after, e := decodeKVCursor(c)
		if e != nil {
			return kvRequest{}, e
		}
		s.After = after
	}
	return kvRequest{op: kvScan, scan: s}, nil
}

// validateKey enforces API.md's key rule: 1–1024 bytes of UTF-8.
func validateKey(key string) *apiError {
	switch {
	case key == "":
		return invalid("empty key")
	case len(key) > kv.MaxKeyBytes:
		return invalid("key is %d bytes; the limit is %d", len(key), kv.MaxKeyBytes)
	case !utf8.ValidString(key):
		return invalid("key is not valid UTF-8")
	}
	return nil
}

// decodeCond reads If-Match (a quoted version) and If-None-Match (only *).
func decodeCond(r *httpRequest) (kv.Cond, *apiError) {
	var c kv.Cond
	if r.ifMatch != "" {
		v, e := parseETag(r.ifMatch)
		if e != nil {
			return c, e
		}
		c.IfMatch = v
	}
	if r.ifNoneMatch != "" {
		if strings.TrimSpace(r.ifNoneMatch) != "*" {
			return c, invalid("If-None-Match supports only *")
		}
		c.IfNoneMatch = true
	}
	if c.IfMatch != "" && c.IfNoneMatch {
		return c, invalid("If-Match and If-None-Match cannot be combined")
	}
	return c, nil
}

// parseETag accepts "<version>" (the ETag as returned) or a bare version.
func parseETag(s string) (string, *apiError) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "W/") || s == "*" || strings.Contains(s, ",") {
		return "", invalid("If-Match must be one version as returned in ETag")
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || len(s) > 64 || strings.ContainsAny(s, "\" \t") {
		return "", invalid("If-Match must be one version as returned in ETag")
	}
	return s, nil
}

func parseTTL(s string) (time.Duration, *apiError) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > maxTTL {
		return 0, invalid("ttl must be a positive Go duration such as 30s or 24h, up to 100 years; got %q", s)
	}
	return d, nil
}

// isJSON reports whether a content type is application/json (any parameters).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == contentTypeJSON
}

// mgetBody is the body of POST _mget.
type mgetBody struct {
	Keys []string `json:"keys"`
}

// batchBody is the body of POST _batch.
type batchBody struct {
	Ops []batchOp `json:"ops"`
}

type batchOp struct {
	Op          string          `json:"op"`
	Key         string          `json:"key"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueBase64 *string         `json:"value_base64,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	IfMatch     string          `json:"if_match,omitempty"`
	IfNoneMatch bool            `json:"if_none_match,omitempty"`
	TTL         string          `json:"ttl,omitempty"`
}

// decodeJSONBody decodes one JSON object strictly: unknown fields and
// trailing data are errors.
func decodeJSONBody(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("malformed JSON body: data after the JSON object")
	}
	return nil
}

// decodeMultiGet decodes and validates an _mget body.
func decodeMultiGet(body []byte) ([]string, *apiError) {
	var b mgetBody
	if e := decodeJSONBody(body, &b); e != nil {
		return nil, e
	}
	if len(b.Keys) == 0 || len(b.Keys) > kv.MaxMultiGet {
		return nil, invalid("keys must hold 1 to %d keys, got %d", kv.MaxMultiGet, len(b.Keys))
	}
	for i, k := range b.Keys {
		if e := validateKey(k); e != nil {
			e.Message = fmt.Sprintf("keys[%d]: %s", i, e.Message)
			return nil, e
		}
	}
	return b.Keys, nil
}

// decodeBatch decodes and validates a _batch body into store operations. An
// invalid op is reported with its index, like a failing one.
func decodeBatch(body []byte) ([]kv.Op, *apiError) {
	var b batchBody
	if e := decodeJSONBody(body, &b); e != nil {
		return nil, e
	}
	if len(b.Ops) == 0 || len(b.Ops) > kv.MaxBatchOps {
		return nil, invalid("ops must hold 1 to %d operations, got %d", kv.MaxBatchOps, len(b.Ops))
	}
	ops := make([]kv.Op, len(b.Ops))
	for i, o := range b.Ops {
		op, e := o.toOp()
		if e != nil {
			idx := i
			e.Index = &idx
			e.Message = fmt.Sprintf("op %d: %s", i, e.Message)
			return nil, e
		}
		ops[i] = op
	}
	return ops, nil
}

func (o *batchOp) toOp() (kv.Op, *apiError) {
	if e := validateKey(o.Key); e != nil {
		return kv.Op{}, e
	}
	cond := kv.Cond{IfMatch: o.IfMatch, IfNoneMatch: o.IfNoneMatch}
	if cond.IfMatch != "" {
		v, e := parseETag(cond.IfMatch)
		if e != nil {
			return kv.Op{}, e
		}
		cond.IfMatch = v
	}
	if cond.IfMatch != "" && cond.IfNoneMatch {
		return kv.Op{}, invalid("if_match and if_none_match cannot be combined")
	}
	switch o.Op {
	case "delete":
		if o.Value != nil || o.ValueBase64 != nil || o.TTL != "" || o.ContentType != "" || o.IfNoneMatch {
			return kv.Op{}, invalid("a delete takes only key and if_match")
		}
		return kv.Op{Delete: true, Put: kv.PutOp{Key: o.Key, Cond: cond}}, nil
	case "put":
	default:
		return kv.Op{}, invalid(`op must be "put" or "delete", got %q`, o.Op)
	}
	put := kv.PutOp{Key: o.Key, Cond: cond}
	switch {
	case o.Value != nil && o.ValueBase64 != nil:
		return kv.Op{}, invalid("give value or value_base64, not both")
	case o.Value != nil:
		if o.ContentType != "" && !isJSON(o.ContentType) {
			return kv.Op{}, invalid("value holds JSON; use value_base64 for content type %q", o.ContentType)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, o.Value); err != nil {
			return kv.Op{}, invalid("value is not valid JSON: %v", err)
		}
		put.Value, put.ContentType = buf.Bytes(), contentTypeJSON
	case o.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*o.ValueBase64)
		if err != nil {
			return kv.Op{}, invalid("value_base64 is not valid base64: %v", err)
		}
		put.Value, put.ContentType = v, contentTypeBinary
		if o.ContentType != "" {
			put.ContentType = o.ContentType
		}
	default:
		return kv.Op{}, invalid("a put needs value or value_base64")
	}
	if o.TTL != "" {
		d, e := parseTTL(o.TTL)
		if e != nil {
			return kv.Op{}, e
		}
		put.TTL = d
	}
	return kv.Op{Put: put}, nil
}
