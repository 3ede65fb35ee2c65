package integration

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/extproc/pii"
)

var envelopeKID = regexp.MustCompile(`"\$pii":"v1:([0-9a-z]+):`)

// storedKIDs returns the data key ids the envelopes of a stored KV value
// name, read from the backend directly.
func storedKIDs(t *testing.T, dbPath, ns, key string) []string {
	t.Helper()
	ctx := context.Background()
	store, err := kv.Open(ctx, "sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	it, err := store.Get(ctx, ns, key)
	if err != nil {
		t.Fatalf("backend get %s: %v", key, err)
	}
	var kids []string
	for _, m := range envelopeKID.FindAllSubmatch(it.Value, -1) {
		kids = append(kids, string(m[1]))
	}
	if len(kids) != 3 {
		t.Fatalf("stored value of %s has %d envelopes, want 3: %s", key, len(kids), it.Value)
	}
	return kids
}

// TestPIIKeyRotationWhileRunning rotates a namespace's data key from
// another keyring on the same key store (what `prism keys rotate` does)
// while the stack runs: once the running keyring reloads (prism dev does
// every 2s), new writes use the new key and old values stay readable.
func TestPIIKeyRotationWhileRunning(t *testing.T) {
	st := startMTLSStack(t, mtlsOptions{})
	ctx := context.Background()
	if s := st.do(t, subjOwner, "PUT", "/v1/kv/m-kv/old", mtlsDoc); s.status != 200 {
		t.Fatalf("PUT: %d %s", s.status, s.body)
	}
	oldKID := storedKIDs(t, st.dbPath, "m-kv", "old")[0]

	cli := pii.NewKeyring(pii.NewFileKeyStore(st.keysPath), st.kek)
	newKID, err := cli.Rotate(ctx, "m-kv")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := st.keyring.Reload(ctx)
	if err != nil || len(changed) != 1 || changed[0] != "m-kv" {
		t.Fatalf("Reload = %v, %v; want [m-kv]", changed, err)
	}
	if s := st.do(t, subjOwner, "PUT", "/v1/kv/m-kv/new", mtlsDoc); s.status != 200 {
		t.Fatalf("PUT after rotation: %d %s", s.status, s.body)
	}
	for key, want := range map[string]string{"old": oldKID, "new": newKID} {
		for _, kid := range storedKIDs(t, st.dbPath, "m-kv", key) {
			if kid != want {
				t.Fatalf("value %q is sealed with key %s, want %s", key, kid, want)
			}
		}
		if s := st.do(t, subjOwner, "GET", "/v1/kv/m-kv/"+key, ""); s.status != 200 || !bytes.Equal(s.body, []byte(mtlsDoc)) {
			t.Fatalf("owner GET %s after rotation: %d %s", key, s.status, s.body)
		}
	}
}

// TestPIISizeLimitIsOnPlaintext: max_value_bytes applies to the value the
// client sent, not to the larger encrypted form that is stored.
func TestPIISizeLimitIsOnPlaintext(t *testing.T) {
	limit := len(mtlsDoc)
	st := startMTLSStack(t, mtlsOptions{maxValueBytes: uint32(limit)})
	if s := st.do(t, subjOwner, "PUT", "/v1/kv/m-kv/at-limit", mtlsDoc); s.status != 200 {
		t.Fatalf("PUT of %d bytes with a limit of %d: status %d, want 200: %s", len(mtlsDoc), limit, s.status, s.body)
	}
	ctx := context.Background()
	store, err := kv.Open(ctx, "sqlite", st.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	it, err := store.Get(ctx, "m-kv", "at-limit")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Value) <= limit {
		t.Fatalf("stored value is %d bytes, not over the limit: the test proves nothing", len(it.Value))
	}
	over := mtlsDoc[:len(mtlsDoc)-1] + ` }`
	s := st.do(t, subjOwner, "PUT", "/v1/kv/m-kv/over", over)
	if s.status != 413 {
		t.Fatalf("PUT of %d bytes with a limit of %d: status %d, want 413: %s", len(over), limit, s.status, s.body)
	}
	wantCode(t, s, "TOO_LARGE")
	t.Logf("limit %d bytes: plaintext %d bytes accepted (stored as %s bytes), %d bytes refused", limit, len(mtlsDoc), strconv.Itoa(len(it.Value)), len(over))
}
