package extproc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/prism-gw/prism/backends/kv"
)

// kvItem is an item as scan and _mget return it: JSON values embedded, other
// values in base64.
type kvItem struct {
	Key         string          `json:"key"`
	Version     string          `json:"version"`
	ContentType string          `json:"content_type"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueBase64 *string         `json:"value_base64,omitempty"`
}

func toKVItem(it kv.Item) kvItem {
	out := kvItem{Key: it.Key, Version: it.Version, ContentType: it.ContentType}
	if isJSON(it.ContentType) && json.Valid(it.Value) {
		out.Value = it.Value
		return out
	}
	b64 := base64.StdEncoding.EncodeToString(it.Value)
	out.ValueBase64 = &b64
	return out
}

type putResult struct {
	Key     string `json:"key"`
	Version string `json:"version"`
}

type scanResult struct {
	Items      []kvItem `json:"items"`
	NextCursor string   `json:"next_cursor"`
}

type mgetResult struct {
	Items   []kvItem `json:"items"`
	Missing []string `json:"missing"`
}

type batchResult struct {
	Versions []string `json:"versions"`
}

// runKV performs one KeyValue call on the namespace's store.
func (s *Server) runKV(ctx context.Context, c *call, body []byte) (*reply, error) {
	ns, store, k := c.ns.cfg.GetNamespace(), c.ns.kv, &c.kv
	switch k.op {
	case kvGet:
		it, err := store.Get(ctx, ns, k.key)
		if err != nil {
			return nil, err
		}
		r := &reply{status: http.StatusOK, body: it.Value}
		r.header("content-type", it.ContentType)
		r.header("etag", etag(it.Version))
		return r, nil

	case kvPut:
		if int64(len(body)) > c.ns.maxValue {
			return nil, tooLarge("value of %d bytes is over the namespace limit of %d bytes", len(body), c.ns.maxValue)
		}
		if isJSON(k.put.ContentType) && !json.Valid(body) {
			return nil, invalid("body is not valid JSON but Content-Type is %s", k.put.ContentType)
		}
		op := k.put
		op.Value = body
		if op.Value == nil {
			op.Value = []byte{}
		}
		v, err := store.Put(ctx, ns, op)
		if err != nil {
			return nil, err
		}
		r := jsonReply(http.StatusOK, putResult{Key: k.key, Version: v})
		r.header("etag", etag(v))
		return r, nil

	case kvDelete:
		if err := store.Delete(ctx, ns, k.key, k.cond); err != nil {
			return nil, err
		}
		return &reply{status: http.StatusNoContent}, nil

	case kvScan:
		q := k.scan
		q.MaxBytes = kv.MaxPageValues
		page, err := store.Scan(ctx, ns, q)
		if err != nil {
			return nil, err
		}
		res := scanResult{Items: make([]kvItem, len(page.Items))}
		for i, it := range page.Items {
			res.Items[i] = toKVItem(it)
		}
		if page.More && len(page.Items) > 0 {
			res.NextCursor = encodeKVCursor(page.Items[len(page.Items)-1].Key)
		}
		return jsonReply(http.StatusOK, res), nil

	case kvMultiGet:
		keys, e := decodeMultiGet(body)
		if e != nil {
			return nil, e
		}
		items, err := store.MultiGet(ctx, ns, keys)
		if err != nil {
			return nil, err
		}
		res := mgetResult{Items: make([]kvItem, 0, len(items)), Missing: []string{}}
		found := make(map[string]bool, len(items))
		for _, it := range items {
			res.Items = append(res.Items, toKVItem(it))
			found[it.Key] = true
		}
		for _, key := range keys {
			if !found[key] {
				res.Missing = append(res.Missing, key)
				found[key] = true // report a repeated missing key once
			}
		}
		return jsonReply(http.StatusOK, res), nil

	case kvBatch:
		ops, e := decodeBatch(body)
		if e != nil {
			return nil, e
		}
		versions, err := store.Batch(ctx, ns, ops)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, batchResult{Versions: versions}), nil
	}
	return nil, invalid("unsupported operation")
}

func etag(version string) string { return `"` + version + `"` }
