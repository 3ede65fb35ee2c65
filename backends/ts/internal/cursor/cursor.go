// Package cursor encodes the opaque cursors of the TimeSeries drivers.
//
// A cursor is unpadded base64url of: a format version byte, the driver's
// id, the cursor's kind, the first 8 bytes of SHA-256(namespace NUL series)
// and the driver's fields as zig-zag varints. The digest binds a cursor to
// its namespace and series, so one passed to another namespace or series is
// rejected instead of silently reading from a meaningless position; it is
// not a MAC (a client may forge positions of its own series, which only
// changes what it reads of it).
package cursor

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/prism-gw/prism/backends/ts"
)

// Driver identifies the driver that issued a cursor.
type Driver byte

// Drivers with cursors. Values are part of the format: never reuse one.
const (
	// SQLite and Postgres are the ids the SQL drivers issued before they
	// shared SQL; they still accept them, so cursors clients hold keep
	// working.
	SQLite   Driver = 1
	Postgres Driver = 2
	NATS     Driver = 3
	Kafka    Driver = 4
	// SQL is the id both SQL drivers issue: their positions agree once a
	// migration copied a namespace (ts.Replica), so a cursor of one store
	// must be accepted by the other.
	SQL Driver = 5
)

// Kind says what a cursor resumes.
type Kind byte

// Kinds of cursor. Values are part of the format.
const (
	Tail Kind = 1 // a position in append order
	Asc  Kind = 2 // after an event of an ascending query
	Desc Kind = 3 // after an event of a descending query
)

// QueryKind returns the kind of a query cursor for the given order.
func QueryKind(desc bool) Kind {
	if desc {
		return Desc
	}
	return Asc
}

const (
	version  = 1
	tagBytes = 8
	header   = 3 + tagBytes
)

// Tag is the digest of (namespace, series) that binds cursors to them.
type Tag [tagBytes]byte

// TagOf computes the tag of a series.
func TagOf(ns, series string) Tag {
	h := sha256.New()
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(series))
	var sum [sha256.Size]byte
	var t Tag
	copy(t[:], h.Sum(sum[:0]))
	return t
}

// String renders the tag as 16 hex digits (e.g. a notification payload).
func (t Tag) String() string { return hex.EncodeToString(t[:]) }

// Encode makes a cursor.
func Encode(d Driver, k Kind, tag Tag, fields ...int64) string {
	var buf [header + 4*binary.MaxVarintLen64]byte
	b := append(buf[:0], version, byte(d), byte(k))
	b = append(b, tag[:]...)
	for _, f := range fields {
		b = binary.AppendVarint(b, f)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode parses a cursor made by Encode with the same driver, kind and tag
// and exactly n fields. Any other input is ts.ErrInvalidCursor.
func Decode(s string, d Driver, k Kind, tag Tag, n int) ([]int64, error) {
	return DecodeAny(s, []Driver{d}, k, tag, n)
}

// DecodeAny is Decode for a cursor that any of ds may have issued: drivers
// that share positions accept each other's cursors.
func DecodeAny(s string, ds []Driver, k Kind, tag Tag, n int) ([]int64, error) {
	if len(s) > ts.MaxCursorBytes {
		return nil, fmt.Errorf("%w: %d bytes long", ts.ErrInvalidCursor, len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < header || b[0] != version {
		return nil, fmt.Errorf("%w: malformed", ts.ErrInvalidCursor)
	}
	if !slices.Contains(ds, Driver(b[1])) {
		return nil, fmt.Errorf("%w: issued by another backend", ts.ErrInvalidCursor)
	}
	if Kind(b[2]) != k {
		return nil, fmt.Errorf("%w: %s", ts.ErrInvalidCursor, kindMismatch(Kind(b[2]), k))
	}
	if Tag(b[3:header]) != tag {
		return nil, fmt.Errorf("%w: issued for another namespace or series", ts.ErrInvalidCursor)
	}
	b = b[header:]
	fields := make([]int64, n)
	for i := range fields {
		v, m := binary.Varint(b)
		if m <= 0 {
			return nil, fmt.Errorf("%w: malformed", ts.ErrInvalidCursor)
		}
		fields[i], b = v, b[m:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: malformed", ts.ErrInvalidCursor)
	}
	return fields, nil
}

func kindMismatch(got, want Kind) string {
	switch {
	case got == Tail:
		return "a tail cursor cannot page a query"
	case want == Tail:
		return "a query cursor cannot resume a tail"
	default:
		return "issued for the other order"
	}
}
