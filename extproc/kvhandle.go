package extproc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
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

// kvOperations names each KeyValue operation as the policy sees it.
var kvOperations = [...]string{
	kvGet:      policies.OpGet,
	kvPut:      policies.OpPut,
	kvDelete:   policies.OpDelete,
	kvScan:     policies.OpScan,
	kvMultiGet: policies.OpMultiGet,
	kvBatch:    policies.OpBatch,
}

// runKV performs one KeyValue call on the namespace's store. On a namespace
// with a policy it is decided first; on one with a PII schema, written values
// are encrypted field by field before the store sees them and read values
// get the policy's field actions.
func (s *Server) runKV(ctx context.Context, c *call, body []byte) (*reply, error) {
	ns, store, k := c.ns.cfg.GetNamespace(), c.ns.kv, &c.kv
	a, err := s.authorize(ctx, c, kvOperations[k.op], k.key)
	if err != nil {
		return nil, err
	}
	sch := c.ns.pii
	switch k.op {
	case kvGet:
		it, err := store.Get(ctx, ns, k.key)
		s.compareRead(c, k.key, it, err)
		if err != nil {
			return nil, err
		}
		if sch != nil {
			v, touched, err := s.applyRead(ctx, c, a, it)
			if err != nil {
				return nil, err
			}
			if err := s.auditAccess(ctx, c, a, touched); err != nil {
				return nil, err
			}
			it.Value = v
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
		if sch != nil {
			if !isJSON(op.ContentType) {
				return nil, invalid("namespace %s has a PII schema: values must be JSON (Content-Type: application/json)", ns)
			}
			enc, touched, err := sch.Encrypt(ctx, op.Key, op.Value)
			if err != nil {
				return nil, err
			}
			op.Value = enc
			if err := s.auditAccess(ctx, c, a, touched); err != nil {
				return nil, err
			}
		}
		v, err := store.Put(ctx, ns, op)
		if err != nil {
			return nil, err
		}
		if c.ns.mig != nil {
			s.shadowPut(ctx, c, op, v)
		}
		r := jsonReply(http.StatusOK, putResult{Key: k.key, Version: v})
		r.header("etag", etag(v))
		return r, nil

	case kvDelete:
		if err := s.auditAccess(ctx, c, a, nil); err != nil {
			return nil, err
		}
		if err := s.deleteKV(ctx, c, k.key, k.cond); err != nil {
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
		items, err := s.applyReads(ctx, c, a, page.Items)
		if err != nil {
			return nil, err
		}
		res := scanResult{Items: make([]kvItem, len(items))}
		for i, it := range items {
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
		if items, err = s.applyReads(ctx, c, a, items); err != nil {
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
		if sch != nil {
			var touched []string
			seen := map[string]bool{}
			for i := range ops {
				if ops[i].Delete {
					continue
				}
				p := &ops[i].Put
				if !isJSON(p.ContentType) {
					idx := i
					return nil, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Index: &idx,
						Message: fmt.Sprintf("op %d: namespace %s has a PII schema: values must be JSON (use value, not value_base64)", i, ns)}
				}
				enc, t, err := sch.Encrypt(ctx, p.Key, p.Value)
				if err != nil {
					return nil, &kv.OpError{Index: i, Err: err}
				}
				p.Value = enc
				touched = mergeTouched(touched, seen, t)
			}
			if err := s.auditAccess(ctx, c, a, touched); err != nil {
				return nil, err
			}
		}
		versions, err := s.batchKV(ctx, c, ops)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, batchResult{Versions: versions}), nil
	}
	return nil, invalid("unsupported operation")
}

// applyRead carries out the policy's field actions on one stored item of a
// namespace with a PII schema.
func (s *Server) applyRead(ctx context.Context, c *call, a *access, it kv.Item) ([]byte, []string, error) {
	if a == nil {
		// A PII schema always comes with a policy; never return ciphertext
		// or plaintext undecided.
		return nil, nil, errors.New("extproc: PII namespace without a policy decision")
	}
	v, touched, err := c.ns.pii.Apply(ctx, it.Key, it.Value, a.piiActions())
	if errors.Is(err, pii.ErrNotJSON) || errors.Is(err, pii.ErrTooDeep) {
		// Writes refuse such values; one in the store predates the schema.
		return nil, nil, fmt.Errorf("stored value of key %q: %v", it.Key, err) // 500, not the caller's fault
	}
	return v, touched, err
}

// applyReads is applyRead over a page of items, audited once for the request.
func (s *Server) applyReads(ctx context.Context, c *call, a *access, items []kv.Item) ([]kv.Item, error) {
	if c.ns.pii == nil {
		return items, nil
	}
	out := make([]kv.Item, len(items))
	var touched []string
	seen := map[string]bool{}
	for i, it := range items {
		v, t, err := s.applyRead(ctx, c, a, it)
		if err != nil {
			return nil, err
		}
		it.Value = v
		out[i] = it
		touched = mergeTouched(touched, seen, t)
	}
	if err := s.auditAccess(ctx, c, a, touched); err != nil {
		return nil, err
	}
	return out, nil
}

func etag(version string) string { return `"` + version + `"` }
