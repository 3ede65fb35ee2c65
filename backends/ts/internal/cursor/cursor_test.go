package cursor

import (
	"errors"
	"math"
	"testing"

	"github.com/prism-gw/prism/backends/ts"
)

func TestRoundTrip(t *testing.T) {
	tag := TagOf("ns", "s")
	for _, fields := range [][]int64{nil, {0}, {math.MinInt64, math.MaxInt64}, {-1, 1, 1 << 40}} {
		c := Encode(Postgres, Desc, tag, fields...)
		got, err := Decode(c, Postgres, Desc, tag, len(fields))
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v", fields, err)
		}
		for i := range fields {
			if got[i] != fields[i] {
				t.Fatalf("Decode(Encode(%v)) = %v", fields, got)
			}
		}
		if len(c) > ts.MaxCursorBytes {
			t.Errorf("cursor of %v is %d bytes, over ts.MaxCursorBytes", fields, len(c))
		}
	}
}

func TestRejects(t *testing.T) {
	tag := TagOf("ns", "s")
	good := Encode(SQLite, Asc, tag, 5, 7)
	for _, tc := range []struct {
		name, cursor string
		d            Driver
		k            Kind
		tag          Tag
		n            int
	}{
		{"garbage", "%%%not base64", SQLite, Asc, tag, 2},
		{"empty", "", SQLite, Asc, tag, 2},
		{"truncated", good[:len(good)-2], SQLite, Asc, tag, 2},
		{"trailing bytes", good, SQLite, Asc, tag, 1},
		{"too few fields", good, SQLite, Asc, tag, 3},
		{"other driver", good, NATS, Asc, tag, 2},
		{"other order", good, SQLite, Desc, tag, 2},
		{"tail for query", Encode(SQLite, Tail, tag, 1), SQLite, Asc, tag, 1},
		{"other series", good, SQLite, Asc, TagOf("ns", "t"), 2},
		{"other namespace", good, SQLite, Asc, TagOf("nt", "s"), 2},
		{"overlong", string(make([]byte, 1000)), SQLite, Asc, tag, 2},
	} {
		if _, err := Decode(tc.cursor, tc.d, tc.k, tc.tag, tc.n); !errors.Is(err, ts.ErrInvalidCursor) || !errors.Is(err, ts.ErrInvalidArgument) {
			t.Errorf("%s: Decode = %v, want ts.ErrInvalidCursor", tc.name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	tag := TagOf("ns", "s")
	f.Add(Encode(Kafka, Tail, tag, 3, 99))
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if fields, err := Decode(s, Kafka, Tail, tag, 2); err == nil && len(fields) != 2 {
			t.Fatalf("Decode(%q) = %v without error", s, fields)
		}
	})
}

// The SQL drivers decode each other's cursors (and their legacy ids), never
// those of the log drivers.
func TestDecodeAnyAcceptsTheListedDriversOnly(t *testing.T) {
	tag := TagOf("ns", "s")
	sql := []Driver{SQL, SQLite, Postgres}
	for _, d := range []Driver{SQL, SQLite, Postgres, NATS, Kafka} {
		c := Encode(d, Tail, tag, 42)
		f, err := DecodeAny(c, sql, Tail, tag, 1)
		if want := d != NATS && d != Kafka; want {
			if err != nil || f[0] != 42 {
				t.Errorf("DecodeAny of a cursor of driver %d = %v, %v; want [42]", d, f, err)
			}
		} else if !errors.Is(err, ts.ErrInvalidCursor) {
			t.Errorf("DecodeAny of a cursor of driver %d = %v, %v; want ts.ErrInvalidCursor", d, f, err)
		}
	}
	if _, err := DecodeAny(Encode(SQL, Tail, tag, 1), nil, Tail, tag, 1); !errors.Is(err, ts.ErrInvalidCursor) {
		t.Errorf("DecodeAny with no driver accepted = %v, want ts.ErrInvalidCursor", err)
	}
}
