package kvsql

import (
	"bytes"

	"github.com/prism-gw/prism/backends/kv"
)

// Range is the key range a ScanQuery selects, as half-open byte bounds
// [Lo, Hi). Folding Prefix, Start, End and After into two bounds lets the
// drivers use one index range scan.
type Range struct {
	// Lo is the inclusive lower bound; never nil (empty selects from the
	// first key), so it binds as an empty BLOB/bytea rather than NULL.
	Lo []byte
	// Hi is the exclusive upper bound; nil means unbounded.
	Hi []byte
}

// RangeOf computes the range of q. ok is false when no key can match, so the
// driver need not ask the database.
func RangeOf(q kv.ScanQuery) (r Range, ok bool) {
	r.Lo = []byte{}
	raise := func(b []byte) {
		if bytes.Compare(b, r.Lo) > 0 {
			r.Lo = b
		}
	}
	lower := func(b []byte) {
		if r.Hi == nil || bytes.Compare(b, r.Hi) < 0 {
			r.Hi = b
		}
	}
	raise([]byte(q.Prefix))
	raise([]byte(q.Start))
	if q.After != "" {
		// The least key greater than After is After followed by a zero byte.
		raise(append([]byte(q.After), 0))
	}
	if q.End != "" {
		lower([]byte(q.End))
	}
	if end := prefixEnd([]byte(q.Prefix)); end != nil {
		lower(end)
	}
	if r.Hi != nil && bytes.Compare(r.Lo, r.Hi) >= 0 {
		return r, false
	}
	return r, true
}

// prefixEnd returns the least byte string greater than every string with
// prefix p, or nil when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			end := append([]byte(nil), p[:i+1]...)
			end[i]++
			return end
		}
	}
	return nil
}

// Pager cuts a scan page from rows delivered in key order. Drivers query
// Limit()+1 rows so that the row after a full page tells whether more keys
// remain.
type Pager struct {
	limit    int
	maxBytes int
	bytes    int
	page     kv.Page
}

// NewPager applies the defaults and caps of q.Limit and q.MaxBytes.
func NewPager(q kv.ScanQuery) *Pager {
	p := &Pager{limit: q.Limit, maxBytes: q.MaxBytes}
	if p.limit <= 0 {
		p.limit = kv.DefaultLimit
	}
	p.limit = min(p.limit, kv.MaxScanLimit)
	if p.maxBytes <= 0 {
		p.maxBytes = kv.MaxPageValues
	}
	return p
}

// Limit is the page size in items.
func (p *Pager) Limit() int { return p.limit }

// MaxBytes is the value budget of the page.
func (p *Pager) MaxBytes() int { return p.maxBytes }

// Full reports whether the page takes no more items: it holds Limit items
// or its values have reached MaxBytes. A page is never full while empty.
func (p *Pager) Full() bool {
	return len(p.page.Items) >= p.limit || p.bytes >= p.maxBytes
}

// Add offers the next row. It returns false, and marks the page as having
// more, when the page is already full; the caller then stops reading.
func (p *Pager) Add(it kv.Item) bool {
	if p.Full() {
		p.page.More = true
		return false
	}
	p.page.Items = append(p.page.Items, it)
	p.bytes += len(it.Value)
	return true
}

// Page returns the page assembled so far.
func (p *Pager) Page() kv.Page { return p.page }
