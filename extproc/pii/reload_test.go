package pii

import (
	"path/filepath"
	"regexp"
	"testing"
)

var envelopeKID = regexp.MustCompile(`"\$pii":"v1:([0-9a-z]+):`)

// kidOf is the key id the first envelope of doc names.
func kidOf(t *testing.T, doc []byte) string {
	t.Helper()
	m := envelopeKID.FindSubmatch(doc)
	if m == nil {
		t.Fatalf("no envelope in %s", doc)
	}
	return string(m[1])
}

// TestReloadPicksUpARotationByAnotherProcess is `prism keys rotate` while
// extproc runs: both share the key store file, and after Reload extproc
// seals with the new key and still opens values sealed with the old one.
func TestReloadPicksUpARotationByAnotherProcess(t *testing.T) {
	kek := newKEK(t)
	storePath := filepath.Join(t.TempDir(), "keys.json")
	running := NewKeyring(NewFileKeyStore(storePath), kek)
	s := newSchema(t, running, "ns")
	old, _, err := s.Encrypt(ctx, "k1", []byte(`{"email":"a@b.io"}`))
	if err != nil {
		t.Fatal(err)
	}
	oldKID := kidOf(t, old)

	cli := NewKeyring(NewFileKeyStore(storePath), kek) // the CLI process
	newKID, err := cli.Rotate(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID {
		t.Fatal("Rotate returned the old key id")
	}
	// Before a reload the running keyring still seals with the old key.
	if got, _, _ := s.Encrypt(ctx, "k2", []byte(`{"email":"a@b.io"}`)); kidOf(t, got) != oldKID {
		t.Fatalf("sealed with %s before Reload, want the cached %s", kidOf(t, got), oldKID)
	}
	changed, err := running.Reload(ctx)
	if err != nil || len(changed) != 1 || changed[0] != "ns" {
		t.Fatalf("Reload = %v, %v; want [ns]", changed, err)
	}
	enc, _, err := s.Encrypt(ctx, "k2", []byte(`{"email":"c@d.io"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := kidOf(t, enc); got != newKID {
		t.Fatalf("sealed with %s after Reload, want %s", got, newKID)
	}
	out, _, err := s.Apply(ctx, "k1", old, allActions(Plain))
	if err != nil || !jsonEqual(t, out, []byte(`{"email":"a@b.io"}`)) {
		t.Fatalf("old value after rotation: %s, %v", out, err)
	}
	// Nothing new: nothing changes.
	if changed, err := running.Reload(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("second Reload = %v, %v; want nothing changed", changed, err)
	}
}
