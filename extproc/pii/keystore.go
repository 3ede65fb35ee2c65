package pii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// FileKeyStore keeps wrapped data keys in one JSON file (the local keyring
// of `prism dev` and single-node setups):
//
//	{"version": 1, "namespaces": {"orders": [{"id": "…", "kek": "…", "wrapped": "…", "created": "…"}]}}
//
// Every change is written to a temporary file, synced and renamed over the
// old one, so a crash leaves either the old or the new keyring. Keys only
// ever get added. One process at a time should add keys; readers in other
// processes find new keys on their next read.
type FileKeyStore struct {
	path string
	mu   sync.Mutex
}

// keyFile is the JSON form of a FileKeyStore.
type keyFile struct {
	Version    int                     `json:"version"`
	Namespaces map[string][]WrappedKey `json:"namespaces"`
}

// NewFileKeyStore returns a store kept in path; the file is created with
// the first key.
func NewFileKeyStore(path string) *FileKeyStore {
	return &FileKeyStore{path: path}
}

// Keys returns the namespace's keys, oldest first.
func (s *FileKeyStore) Keys(_ context.Context, namespace string) ([]WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	return f.Namespaces[namespace], nil
}

// Add appends k to the namespace's keys and writes the file durably.
func (s *FileKeyStore) Add(_ context.Context, namespace string, k WrappedKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.read()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(f.Namespaces[namespace], func(o WrappedKey) bool { return o.ID == k.ID }) {
		return fmt.Errorf("pii: key store %s: namespace %s already has key %s", s.path, namespace, k.ID)
	}
	f.Namespaces[namespace] = append(f.Namespaces[namespace], k)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, append(b, '\n'))
}

// read parses the file; a missing file is an empty store.
func (s *FileKeyStore) read() (*keyFile, error) {
	f := &keyFile{Version: 1, Namespaces: map[string][]WrappedKey{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pii: key store: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("pii: key store %s: %w", s.path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("pii: key store %s: version %d, want 1", s.path, f.Version)
	}
	if f.Namespaces == nil {
		f.Namespaces = map[string][]WrappedKey{}
	}
	return f, nil
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pii: key store: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("pii: key store: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("pii: key store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pii: key store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pii: key store: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pii: key store: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pii: key store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pii: key store: %w", err)
	}
	return nil
}

// MemKeyStore keeps wrapped data keys in memory, for tests.
type MemKeyStore struct {
	mu   sync.Mutex
	keys map[string][]WrappedKey
}

// NewMemKeyStore returns an empty in-memory store.
func NewMemKeyStore() *MemKeyStore {
	return &MemKeyStore{keys: map[string][]WrappedKey{}}
}

// Keys returns the namespace's keys, oldest first.
func (s *MemKeyStore) Keys(_ context.Context, namespace string) ([]WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys[namespace]), nil
}

// Add appends k to the namespace's keys.
func (s *MemKeyStore) Add(_ context.Context, namespace string, k WrappedKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[namespace] = append(s.keys[namespace], k)
	return nil
}
