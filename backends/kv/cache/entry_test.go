package cache

import (
	"bytes"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

func TestEntryRoundTrips(t *testing.T) {
	exp := time.Unix(0, 1795610084431718869)
	for _, it := range []kv.Item{
		{Key: "k", Value: []byte(`{"a":1}`), ContentType: "application/json", Version: "17"},
		{Key: "empty", Value: []byte{}, Version: "1"},
		{Key: "\xff\x00ключ", Value: []byte{0, 'D', 'L', 0xff}, ContentType: "application/octet-stream", Version: "18446744073709551615", ExpiresAt: exp},
	} {
		got, err := decodeEntry(it.Key, encodeEntry(it))
		if err != nil {
			t.Fatalf("decode(encode(%q)): %v", it.Key, err)
		}
		if got.Key != it.Key || !bytes.Equal(got.Value, it.Value) || got.Value == nil || got.ContentType != it.ContentType ||
			got.Version != it.Version || !got.ExpiresAt.Equal(it.ExpiresAt) {
			t.Errorf("round trip of %+v gave %+v", it, got)
		}
	}
}

func TestMalformedEntriesAreRejected(t *testing.T) {
	good := encodeEntry(kv.Item{Value: []byte("v"), ContentType: "text/plain", Version: "5"})
	for _, b := range [][]byte{nil, {}, []byte("Lsome-lease"), good[:1], good[:3], {'D', 0xff, 0xff, 0xff}} {
		if _, err := decodeEntry("k", b); err == nil {
			t.Errorf("decodeEntry(%q) accepted a malformed entry", b)
		}
	}
}

func TestRedisKeysAreInjective(t *testing.T) {
	c := &Client{o: ClientOptions{Prefix: "p:"}}
	type pair struct{ backend, ns, key string }
	pairs := []pair{
		{"b", "ns", "k"}, {"b", "ns:k", ""}, {"b:ns", "k", ""}, {"b", "n", "s:k"},
		{"b", "ns%3Ak", ""}, {"b", "ns", "%3Ak"}, {"b%", "ns", "k"}, {"b", "%ns", "k"},
	}
	seen := map[string]pair{}
	for _, p := range pairs {
		s := New(nil, c, Options{Backend: p.backend})
		k := s.rkey(p.ns, p.key)
		if prev, dup := seen[k]; dup {
			t.Errorf("%+v and %+v map to the same Redis key %q", prev, p, k)
		}
		seen[k] = p
		if scope := s.scope(p.ns); k[:len(scope)] != scope {
			t.Errorf("key %q does not start with its scope %q", k, scope)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	for in, want := range map[string]string{
		"prism:kv:":   "prism:kv:",
		"a*b?c[d]e\\": `a\*b\?c\[d\]e\\`,
	} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
