package cache

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

// Tags of the two kinds of values a cache key holds; scripts.go tests them
// by their byte values ('D' is 68).
const (
	entryTag = 'D'
	leaseTag = 'L'
)

var errBadEntry = errors.New("cache: malformed entry")

// encodeEntry lays out an item as
//
//	'D' | uvarint len(version) | version | uvarint len(content type) |
//	content type | varint expiry (unix ns, 0: none) | value
func encodeEntry(it kv.Item) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(it.Version) + len(it.ContentType) + len(it.Value)
	b := make([]byte, 0, n)
	b = append(b, entryTag)
	b = binary.AppendUvarint(b, uint64(len(it.Version)))
	b = append(b, it.Version...)
	b = binary.AppendUvarint(b, uint64(len(it.ContentType)))
	b = append(b, it.ContentType...)
	var exp int64
	if !it.ExpiresAt.IsZero() {
		exp = it.ExpiresAt.UnixNano()
	}
	b = binary.AppendVarint(b, exp)
	return append(b, it.Value...)
}

// decodeEntry parses what encodeEntry wrote. The value aliases b and is
// non-nil even when empty, as kvtest requires.
func decodeEntry(key string, b []byte) (kv.Item, error) {
	if len(b) == 0 || b[0] != entryTag {
		return kv.Item{}, errBadEntry
	}
	b = b[1:]
	version, b, ok := readString(b)
	if !ok {
		return kv.Item{}, errBadEntry
	}
	ct, b, ok := readString(b)
	if !ok {
		return kv.Item{}, errBadEntry
	}
	exp, n := binary.Varint(b)
	if n <= 0 {
		return kv.Item{}, errBadEntry
	}
	it := kv.Item{Key: key, Value: b[n:], ContentType: ct, Version: version}
	if exp != 0 {
		it.ExpiresAt = time.Unix(0, exp)
	}
	return it, nil
}

func readString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}

// escapeName makes a backend or namespace name safe to put between ':'
// separators: '%' and ':' are percent-escaped, so distinct names never
// produce the same key. Validated names contain neither and pass unchanged.
func escapeName(s string) string {
	if !strings.ContainsAny(s, "%:") {
		return s
	}
	return strings.NewReplacer("%", "%25", ":", "%3A").Replace(s)
}

// globEscape quotes the characters SCAN's MATCH treats as patterns.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
