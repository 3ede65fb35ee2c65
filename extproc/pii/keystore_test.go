package pii

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestFileKeyStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	kekPath := filepath.Join(dir, "kek")
	if err := CreateKEKFile(kekPath); err != nil {
		t.Fatalf("CreateKEKFile: %v", err)
	}
	if err := CreateKEKFile(kekPath); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateKEKFile over an existing file: %v, want ErrExist", err)
	}
	kek, err := LoadKEKFile(kekPath)
	if err != nil {
		t.Fatalf("LoadKEKFile: %v", err)
	}
	storePath := filepath.Join(dir, "keys.json")
	s := newSchema(t, NewKeyring(NewFileKeyStore(storePath), kek), "ns")
	enc, _, err := s.Encrypt(ctx, "k", []byte(`{"email": "a@b.io"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{kekPath, storePath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (err %v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
	raw, _ := os.ReadFile(storePath)
	if !strings.Contains(string(raw), `"ns"`) || !strings.Contains(string(raw), kek.ID()) {
		t.Errorf("key store file lacks the namespace or KEK id:\n%s", raw)
	}

	// A new process: KEK from the same file, keys from the same store.
	kek2, err := LoadKEKFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	if kek2.ID() != kek.ID() {
		t.Fatalf("the same KEK file gave ids %s and %s", kek.ID(), kek2.ID())
	}
	s2 := newSchema(t, NewKeyring(NewFileKeyStore(storePath), kek2), "ns")
	out, _, err := s2.Apply(ctx, "k", enc, allActions(Plain))
	if err != nil || !jsonEqual(t, out, []byte(`{"email": "a@b.io"}`)) {
		t.Fatalf("Apply after restart = %s, %v", out, err)
	}

	// The wrong KEK is named in the error.
	other := newKEK(t)
	_, _, err = newSchema(t, NewKeyring(NewFileKeyStore(storePath), other), "ns").Apply(ctx, "k", enc, allActions(Plain))
	if err == nil || !strings.Contains(err.Error(), kek.ID()) {
		t.Fatalf("Apply with another KEK: %v, want an error naming %s", err, kek.ID())
	}
}

func TestFileKeyStoreConcurrentNamespaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	keys := NewKeyring(NewFileKeyStore(path), newKEK(t))
	var wg sync.WaitGroup
	for _, ns := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			if _, err := keys.Rotate(ctx, ns); err != nil {
				t.Error(err)
			}
			if _, err := keys.Rotate(ctx, ns); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	store := NewFileKeyStore(path)
	for _, ns := range []string{"a", "b", "c", "d"} {
		if ks, err := store.Keys(ctx, ns); err != nil || len(ks) != 2 {
			t.Errorf("namespace %s has %d keys (err %v), want 2", ns, len(ks), err)
		}
	}
}

func TestFileKeyStoreRejectsDamage(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":       "not json",
		"wrong version": `{"version": 2, "namespaces": {}}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewFileKeyStore(p).Keys(ctx, "ns"); err == nil {
			t.Errorf("%s: Keys succeeded", name)
		}
	}
}

func TestKEKEncodings(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	want, err := NewLocalKEK(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"raw":        string(key),
		"hex":        hex.EncodeToString(key) + "\n",
		"base64":     base64.StdEncoding.EncodeToString(key) + "\n",
		"base64 raw": base64.RawURLEncoding.EncodeToString(key),
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := LoadKEKFile(p)
		if err != nil || k.ID() != want.ID() {
			t.Errorf("%s: LoadKEKFile = %v, %v; want id %s", name, k, err, want.ID())
		}
	}
	t.Setenv("PRISM_TEST_KEK", base64.StdEncoding.EncodeToString(key))
	if k, err := KEKFromEnv("PRISM_TEST_KEK"); err != nil || k.ID() != want.ID() {
		t.Errorf("KEKFromEnv = %v, %v", k, err)
	}
	if _, err := KEKFromEnv("PRISM_TEST_KEK_UNSET"); err == nil {
		t.Error("KEKFromEnv of an unset variable succeeded")
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("c2hvcnQ="), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKEKFile(short); err == nil {
		t.Error("LoadKEKFile of a short key succeeded")
	}
	password := filepath.Join(dir, "password")
	if err := os.WriteFile(password, []byte("correct horse battery staple 123"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKEKFile(password); err == nil {
		t.Error("LoadKEKFile of 32 printable characters succeeded")
	}
	if _, err := NewLocalKEK(key[:16]); err == nil {
		t.Error("NewLocalKEK of a 16-byte key succeeded")
	}
}
