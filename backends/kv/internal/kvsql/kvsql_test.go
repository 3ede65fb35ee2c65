package kvsql

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

func TestRangeOf(t *testing.T) {
	for _, tc := range []struct {
		q      kv.ScanQuery
		lo, hi string // hi "-" means unbounded
		ok     bool
	}{
		{kv.ScanQuery{}, "", "-", true},
		{kv.ScanQuery{Prefix: "ab"}, "ab", "ac", true},
		{kv.ScanQuery{Prefix: "a\xff\xff"}, "a\xff\xff", "b", true},
		{kv.ScanQuery{Prefix: "\xff\xff"}, "\xff\xff", "-", true},
		{kv.ScanQuery{Start: "b", End: "d"}, "b", "d", true},
		{kv.ScanQuery{Prefix: "a", Start: "b"}, "b", "b", false},
		{kv.ScanQuery{Prefix: "a", End: "a"}, "a", "a", false},
		{kv.ScanQuery{Prefix: "a", Start: "a/", End: "z"}, "a/", "b", true},
		{kv.ScanQuery{After: "k"}, "k\x00", "-", true},
		{kv.ScanQuery{Start: "m", After: "k"}, "m", "-", true},
		{kv.ScanQuery{End: "k", After: "k"}, "k\x00", "k", false},
	} {
		r, ok := RangeOf(tc.q)
		hi := string(r.Hi)
		if r.Hi == nil {
			hi = "-"
		}
		if ok != tc.ok || (ok && (string(r.Lo) != tc.lo || hi != tc.hi)) || r.Lo == nil {
			t.Errorf("RangeOf(%+v) = [%q, %q) ok %v; want [%q, %q) ok %v (Lo never nil)", tc.q, r.Lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1": 1, "1732536000000000000": 1732536000000000000} {
		if v, ok := ParseVersion(s); !ok || v != want {
			t.Errorf("ParseVersion(%q) = %d, %v; want %d", s, v, ok, want)
		}
	}
	for _, s := range []string{"", "01", "+1", "-1", " 1", "1.0", "abc", "99999999999999999999"} {
		if v, ok := ParseVersion(s); ok {
			t.Errorf("ParseVersion(%q) = %d, want rejected", s, v)
		}
	}
}

func TestClockNeverRepeats(t *testing.T) {
	var c Clock
	prev := c.Next()
	for range 10000 {
		next := c.Next()
		if next <= prev {
			t.Fatalf("Clock.Next() = %d after %d", next, prev)
		}
		prev = next
	}
}

func TestPagerCutsAtLimitAndBytes(t *testing.T) {
	p := NewPager(kv.ScanQuery{Limit: 3, MaxBytes: 5})
	for i, size := range []int{2, 2, 2, 2} {
		took := p.Add(kv.Item{Value: bytes.Repeat([]byte{'x'}, size)})
		if want := i < 3; took != want {
			t.Fatalf("Add #%d = %v, want %v", i, took, want)
		}
	}
	if page := p.Page(); len(page.Items) != 3 || !page.More {
		t.Fatalf("page = %d items, More %v; want 3, true", len(page.Items), page.More)
	}
	if p := NewPager(kv.ScanQuery{}); p.Limit() != kv.DefaultLimit || p.MaxBytes() != kv.MaxPageValues {
		t.Errorf("defaults = %d items, %d bytes; want %d, %d", p.Limit(), p.MaxBytes(), kv.DefaultLimit, kv.MaxPageValues)
	}
}

func TestReplicaVersion(t *testing.T) {
	if v, err := ReplicaVersion("10"); err != nil || v != 10 {
		t.Errorf(`ReplicaVersion("10") = %d, %v; want 10`, v, err)
	}
	for _, s := range []string{"", "01", "-1", "1e3", "99999999999999999999"} {
		if _, err := ReplicaVersion(s); !errors.Is(err, kv.ErrInvalidArgument) {
			t.Errorf("ReplicaVersion(%q) error = %v, want kv.ErrInvalidArgument", s, err)
		}
	}
}

func TestExpiryNanos(t *testing.T) {
	if at, err := ExpiryNanos(time.Time{}); at != nil || err != nil {
		t.Errorf("ExpiryNanos(zero) = %v, %v; want nil (no expiry)", at, err)
	}
	when := time.Unix(1732536000, 123)
	if at, err := ExpiryNanos(when); err != nil || at == nil || *at != when.UnixNano() {
		t.Errorf("ExpiryNanos(%v) = %v, %v; want %d", when, at, err, when.UnixNano())
	}
	for _, far := range []time.Time{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := ExpiryNanos(far); !errors.Is(err, kv.ErrInvalidArgument) {
			t.Errorf("ExpiryNanos(%v) error = %v, want kv.ErrInvalidArgument", far, err)
		}
	}
}

func TestDeleteVersion(t *testing.T) {
	last := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		now  int64
		last *int64
		want int64
	}{
		{100, nil, 100},
		{100, last(50), 100},
		{100, last(100), 101},
		{100, last(500), 501},
		{100, last(math.MaxInt64), math.MaxInt64},
	} {
		if got := DeleteVersion(tc.now, tc.last); got != tc.want {
			t.Errorf("DeleteVersion(%d, %v) = %d, want %d", tc.now, tc.last, got, tc.want)
		}
	}
}
