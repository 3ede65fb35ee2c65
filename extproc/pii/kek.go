package pii

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KEK is a key-encryption key: it wraps and unwraps data keys. LocalKEK
// holds the key in memory; a KMS client implements the same two calls.
type KEK interface {
	// ID names the key; it is stored next to every data key it wraps.
	ID() string
	// Wrap encrypts a data key, binding it to aad.
	Wrap(ctx context.Context, dek, aad []byte) ([]byte, error)
	// Unwrap decrypts a data key wrapped with the same aad.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// LocalKEK is an AES-256-GCM key-encryption key held in memory, read from a
// file or the environment. It is for development and single-node setups.
type LocalKEK struct {
	id   string
	aead cipher.AEAD
}

// NewLocalKEK makes a KEK from 32 key bytes. Its id is derived from the key,
// so the same key always has the same id and a wrong key is told apart from
// a damaged data key.
func NewLocalKEK(key []byte) (*LocalKEK, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("pii: a KEK is 32 bytes (AES-256), got %d", len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("prism-kek-id-v1\x00"), key...))
	return &LocalKEK{id: "local-" + hex.EncodeToString(sum[:6]), aead: aead}, nil
}

// LoadKEKFile reads a KEK from a file holding 32 bytes as base64 or hex text
// (surrounding whitespace ignored) or raw. The file should be readable by
// the extproc user only.
func LoadKEKFile(path string) (*LocalKEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pii: read KEK: %w", err)
	}
	key, err := decodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("pii: KEK file %s: %w", path, err)
	}
	return NewLocalKEK(key)
}

// KEKFromEnv reads a KEK from the environment variable name, as base64 or
// hex text.
func KEKFromEnv(name string) (*LocalKEK, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("pii: environment variable %s holding the KEK is not set", name)
	}
	key, err := decodeKey([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("pii: KEK in %s: %w", name, err)
	}
	return NewLocalKEK(key)
}

// CreateKEKFile writes a new random KEK as base64 to path, which must not
// exist, readable by its owner only. `prism dev` uses it on first start.
func CreateKEKFile(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("pii: create KEK file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pii: write KEK file: %w", err)
	}
	return nil
}

// decodeKey accepts 32 bytes as base64 (padded or not), hex, or raw. Raw
// bytes that are all printable are refused: that is a typed password or a
// short key in text form, not 256 random bits.
func decodeKey(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	if len(b) == 32 && !printable(b) {
		return b, nil
	}
	return nil, errors.New("want 32 bytes as base64, hex or raw")
}

// printable reports whether b is all printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// ID names the key.
func (k *LocalKEK) ID() string { return k.id }

// Wrap seals dek under the KEK: nonce followed by ciphertext.
func (k *LocalKEK) Wrap(_ context.Context, dek, aad []byte) ([]byte, error) {
	return seal(k.aead, dek, aad)
}

// Unwrap opens what Wrap sealed with the same aad.
func (k *LocalKEK) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	return open(k.aead, wrapped, aad)
}

// newGCM returns AES-256-GCM for a 32-byte key.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pii: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pii: %w", err)
	}
	return aead, nil
}

// seal returns a fresh random nonce followed by the ciphertext of plain.
// Random 96-bit nonces keep a key safe for about 2^32 seals; rotate data
// keys well before that.
func seal(aead cipher.AEAD, plain, aad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("pii: nonce: %w", err)
	}
	return aead.Seal(out, out, plain, aad), nil
}

// open authenticates and decrypts what seal returned.
func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: ciphertext too short", ErrDecrypt)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	return plain, nil
}
