package pii

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// WrappedKey is a data key as a KeyStore keeps it: encrypted by a KEK.
type WrappedKey struct {
	// ID is the key id every envelope sealed with the key names. It is
	// made of [0-9a-z] only.
	ID string `json:"id"`
	// KEK is the id of the KEK that wrapped the key.
	KEK string `json:"kek"`
	// Wrapped is the encrypted key (base64 in JSON).
	Wrapped []byte `json:"wrapped"`
	// Created is when the key was made.
	Created time.Time `json:"created"`
}

// KeyStore keeps the wrapped data keys of each namespace. FileKeyStore and
// MemKeyStore implement it; a database or KMS-backed store can too.
type KeyStore interface {
	// Keys returns the namespace's keys, oldest first; the last is the
	// one new values are encrypted with.
	Keys(ctx context.Context, namespace string) ([]WrappedKey, error)
	// Add appends a key to the namespace's keys, making it the newest.
	Add(ctx context.Context, namespace string, k WrappedKey) error
}

// dekID identifies a data key in the cache.
type dekID struct{ namespace, kid string }

// dek is an unwrapped data key, ready to seal and open.
type dek struct {
	kid  string
	aead cipher.AEAD
}

// Keyring hands out unwrapped data keys per namespace. It unwraps each key
// once and keeps it in memory; the hot path is a map lookup. It is safe for
// concurrent use.
type Keyring struct {
	store KeyStore
	wrap  KEK            // wraps new data keys
	keks  map[string]KEK // unwraps, by id

	mu      sync.RWMutex
	deks    map[dekID]*dek
	current map[string]*dek // namespace → newest key

	load sync.Mutex // serializes store reads and key creation
}

// NewKeyring returns a keyring over store. New data keys are wrapped by kek;
// keys wrapped by older KEKs unwrap with the matching one of older.
func NewKeyring(store KeyStore, kek KEK, older ...KEK) *Keyring {
	keks := map[string]KEK{kek.ID(): kek}
	for _, k := range older {
		if _, dup := keks[k.ID()]; !dup {
			keks[k.ID()] = k
		}
	}
	return &Keyring{
		store:   store,
		wrap:    kek,
		keks:    keks,
		deks:    map[dekID]*dek{},
		current: map[string]*dek{},
	}
}

// Rotate adds a new data key to the namespace and makes it the one new
// values are encrypted with; values sealed with older keys stay readable.
// It returns the new key id. (`prism keys rotate NS`.)
func (r *Keyring) Rotate(ctx context.Context, namespace string) (string, error) {
	r.load.Lock()
	defer r.load.Unlock()
	d, err := r.create(ctx, namespace)
	if err != nil {
		return "", err
	}
	return d.kid, nil
}

// Refresh forgets which key is the namespace's newest, so that the next
// encryption reads it from the store again: call it when another process
// (another extproc, `prism keys rotate`) may have rotated.
func (r *Keyring) Refresh(namespace string) {
	r.mu.Lock()
	delete(r.current, namespace)
	r.mu.Unlock()
}

// Current returns the namespace's newest key id, creating the namespace's
// first data key when it has none.
func (r *Keyring) Current(ctx context.Context, namespace string) (string, error) {
	d, err := r.newest(ctx, namespace)
	if err != nil {
		return "", err
	}
	return d.kid, nil
}

// newest returns the key new values of the namespace are sealed with.
func (r *Keyring) newest(ctx context.Context, namespace string) (*dek, error) {
	r.mu.RLock()
	d := r.current[namespace]
	r.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	r.load.Lock()
	defer r.load.Unlock()
	r.mu.RLock()
	d = r.current[namespace]
	r.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	keys, err := r.store.Keys(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("pii: data keys of %s: %w", namespace, err)
	}
	if len(keys) == 0 {
		return r.create(ctx, namespace)
	}
	d, err = r.unwrap(ctx, namespace, keys[len(keys)-1])
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.current[namespace] = d
	r.mu.Unlock()
	return d, nil
}

// key returns the namespace's data key kid, reading the store when it is
// not in memory yet (keys another process added are found this way).
func (r *Keyring) key(ctx context.Context, namespace, kid string) (*dek, error) {
	id := dekID{namespace, kid}
	r.mu.RLock()
	d := r.deks[id]
	r.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	r.load.Lock()
	defer r.load.Unlock()
	r.mu.RLock()
	d = r.deks[id]
	r.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	keys, err := r.store.Keys(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("pii: data keys of %s: %w", namespace, err)
	}
	for _, k := range keys {
		if k.ID == kid {
			return r.unwrap(ctx, namespace, k)
		}
	}
	return nil, fmt.Errorf("%w: namespace %s has no data key %q", ErrUnknownKey, namespace, kid)
}

// create makes, wraps and stores a new newest key. r.load is held.
func (r *Keyring) create(ctx context.Context, namespace string) (*dek, error) {
	raw := make([]byte, 32)
	idBytes := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	if _, err := rand.Read(idBytes); err != nil {
		return nil, err
	}
	kid := hex.EncodeToString(idBytes)
	wrapped, err := r.wrap.Wrap(ctx, raw, wrapAAD(namespace, kid))
	if err != nil {
		return nil, fmt.Errorf("pii: wrap data key: %w", err)
	}
	k := WrappedKey{ID: kid, KEK: r.wrap.ID(), Wrapped: wrapped, Created: time.Now().UTC()}
	if err := r.store.Add(ctx, namespace, k); err != nil {
		return nil, fmt.Errorf("pii: store data key of %s: %w", namespace, err)
	}
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	d := &dek{kid: kid, aead: aead}
	r.mu.Lock()
	r.deks[dekID{namespace, kid}] = d
	r.current[namespace] = d
	r.mu.Unlock()
	return d, nil
}

// unwrap decrypts a stored key and caches it. r.load is held.
func (r *Keyring) unwrap(ctx context.Context, namespace string, k WrappedKey) (*dek, error) {
	if !validKID(k.ID) {
		return nil, fmt.Errorf("pii: data key of %s has a malformed id %q", namespace, k.ID)
	}
	kek, ok := r.keks[k.KEK]
	if !ok {
		return nil, fmt.Errorf("pii: data key %s of %s is wrapped by KEK %q, which this keyring does not have", k.ID, namespace, k.KEK)
	}
	raw, err := kek.Unwrap(ctx, k.Wrapped, wrapAAD(namespace, k.ID))
	if err != nil {
		return nil, fmt.Errorf("pii: unwrap data key %s of %s: %w", k.ID, namespace, err)
	}
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	d := &dek{kid: k.ID, aead: aead}
	r.mu.Lock()
	r.deks[dekID{namespace, k.ID}] = d
	r.mu.Unlock()
	return d, nil
}

// wrapAAD binds a wrapped data key to its namespace and id: a wrapped key
// copied to another namespace in the store does not unwrap.
func wrapAAD(namespace, kid string) []byte {
	b := []byte("prism-dek-v1\x00")
	b = appendString(b, namespace)
	return appendString(b, kid)
}

// validKID reports whether kid is a key id: 1–64 of [0-9a-z], so it never
// contains the envelope's separator.
func validKID(kid string) bool {
	if kid == "" || len(kid) > 64 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// appendString appends s with a uvarint length prefix, so that concatenated
// strings cannot be re-split differently.
func appendString(b []byte, s string) []byte {
	n := uint64(len(s))
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	b = append(b, byte(n))
	return append(b, s...)
}
