package pii

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var ctx = context.Background()

func newKEK(t testing.TB) *LocalKEK {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := NewLocalKEK(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var profileFields = []Field{
	{Path: "email", Class: Email},
	{Path: "address.street", Class: Address},
	{Path: "ssn", Class: SSN},
	{Path: "contacts.phone", Class: Phone},
}

// profile has every PII field, one of them in an array, next to plain data
// (with whitespace that must survive byte for byte).
const profile = `{
  "id": "u-17",
  "email": "john.doe@example.com",
  "address": {"street": "1600 Amphitheatre Pkwy", "city": "Mountain View"},
  "ssn": "123-45-6789",
  "contacts": [{"phone": "+1 (555) 123-4567", "kind": "home"}, {"phone": 15557654321}, {"kind": "none"}],
  "prefs": {"theme":   "dark", "tags": [1, 2, 3]}
}`

var profileSecrets = []string{"john.doe", "example.com", "Amphitheatre", "123-45-6789", "6789", "555", "15557654321"}

func newSchema(t testing.TB, keys *Keyring, ns string) *Schema {
	t.Helper()
	s, err := NewSchema(keys, ns, profileFields)
	if err != nil {
		t.Fatalf("NewSchema: %v", err)
	}
	return s
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if err := da.Decode(&va); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, a)
	}
	if err := db.Decode(&vb); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

func allActions(a Action) map[string]Action {
	m := map[string]Action{}
	for _, f := range profileFields {
		m[f.Path] = a
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	s := newSchema(t, NewKeyring(NewMemKeyStore(), newKEK(t)), "user-profiles")
	enc, touched, err := s.Encrypt(ctx, "u-17", []byte(profile))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	for _, secret := range profileSecrets {
		if bytes.Contains(enc, []byte(secret)) {
			t.Errorf("encrypted document contains plaintext %q:\n%s", secret, enc)
		}
	}
	if want := []string{"email", "address.street", "ssn", "contacts.phone"}; !slices.Equal(touched, want) {
		t.Errorf("Encrypt touched %v, want %v", touched, want)
	}
	if n := bytes.Count(enc, []byte(`{"$pii":"v1:`)); n != 5 {
		t.Errorf("encrypted document has %d envelopes, want 5:\n%s", n, enc)
	}
	if !bytes.Contains(enc, []byte(`"prefs":{"theme":   "dark", "tags": [1, 2, 3]}`)) {
		t.Errorf("members off the PII paths were not kept byte for byte:\n%s", enc)
	}
	dec, touched, err := s.Apply(ctx, "u-17", enc, allActions(Plain))
	if err != nil {
		t.Fatalf("Apply(plain): %v", err)
	}
	if !jsonEqual(t, dec, []byte(profile)) {
		t.Errorf("Apply(plain) = %s\nwant %s", dec, profile)
	}
	if len(touched) != 4 {
		t.Errorf("Apply touched %v, want all 4 fields", touched)
	}
}

func TestEncryptTwiceDiffers(t *testing.T) {
	s := newSchema(t, NewKeyring(NewMemKeyStore(), newKEK(t)), "ns")
	a, _, _ := s.Encrypt(ctx, "k", []byte(`{"email":"a@b.c"}`))
	b, _, _ := s.Encrypt(ctx, "k", []byte(`{"email":"a@b.c"}`))
	if bytes.Equal(a, b) {
		t.Fatalf("two encryptions of one value are equal (%s): nonces must be fresh", a)
	}
}

func TestEncryptEdgeCases(t *testing.T) {
	s := newSchema(t, NewKeyring(NewMemKeyStore(), newKEK(t)), "ns")
	tests := []struct {
		name, doc string
		touched   []string
		plain     []string // substrings that must not survive
	}{
		{"no PII", `{"id": 1, "x": [true, null]}`, nil, nil},
		{"null stays", `{"email": null}`, nil, nil},
		{"escaped member name", `{"em\u0061il": "x@secret.io"}`, []string{"email"}, []string{"secret"}},
		{"duplicate members", `{"email": "a@one.io", "email": "b@two.io"}`, []string{"email"}, []string{"one.io", "two.io"}},
		{"object value", `{"ssn": {"v": "123456789"}}`, []string{"ssn"}, []string{"123456789"}},
		{"number value", `{"ssn": 123456789}`, []string{"ssn"}, []string{"123456789"}},
		{"array of arrays", `{"contacts": [[{"phone": "5551234"}], [[{"phone": "5559876"}]]]}`, []string{"contacts.phone"}, []string{"555"}},
		{"top-level array", `[{"email": "a@secret.io"}, {"email": "b@secret.io"}]`, []string{"email"}, []string{"secret"}},
		{"scalar where object expected", `{"address": "1 Main St", "contacts": "none"}`, nil, nil},
		{"top-level scalar", `"john@example.com"`, nil, nil},
		{"whitespace everywhere", " {\n\"email\" :\t\"a@secret.io\" , \"x\" : 1 }\n", []string{"email"}, []string{"secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, touched, err := s.Encrypt(ctx, "k", []byte(tt.doc))
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if !slices.Equal(touched, tt.touched) {
				t.Errorf("touched %v, want %v", touched, tt.touched)
			}
			if tt.touched == nil && string(enc) != tt.doc {
				t.Errorf("a document without PII values changed: %s", enc)
			}
			for _, p := range tt.plain {
				if bytes.Contains(enc, []byte(p)) {
					t.Errorf("plaintext %q survived: %s", p, enc)
				}
			}
			if !json.Valid(enc) {
				t.Fatalf("Encrypt produced invalid JSON: %s", enc)
			}
			dec, _, err := s.Apply(ctx, "k", enc, allActions(Plain))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			// Go keeps the last of duplicate members, on both sides.
			if !jsonEqual(t, dec, []byte(tt.doc)) {
				t.Errorf("round trip = %s, want %s", dec, tt.doc)
			}
		})
	}
}

func TestEncryptRefusesBadValues(t *testing.T) {
	s := newSchema(t, NewKeyring(NewMemKeyStore(), newKEK(t)), "ns")
	deep := `{"contacts":` + strings.Repeat("[", 40) + `{"phone":"555"}` + strings.Repeat("]", 40) + `}`
	tests := []struct {
		name, doc string
		want      error
	}{
		{"empty", ``, ErrNotJSON},
		{"binary", "\x00\x01", ErrNotJSON},
		{"truncated", `{"email": "a@b.c"`, ErrNotJSON},
		{"trailing garbage", `{"email": "a@b.c"} x`, ErrNotJSON},
		{"two values", `{} {}`, ErrNotJSON},
		{"arrays too deep", deep, ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := s.Encrypt(ctx, "k", []byte(tt.doc))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Encrypt = %q, %v; want %v", out, err, tt.want)
			}
		})
	}
	// Deep nesting off the PII paths is fine: it is skipped, not walked.
	ok := `{"other":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `, "email": "a@b.c"}`
	if _, _, err := s.Encrypt(ctx, "k", []byte(ok)); err != nil {
		t.Fatalf("Encrypt with deep nesting off the paths: %v", err)
	}
}

func TestApplyActions(t *testing.T) {
	s := newSchema(t, NewKeyring(NewMemKeyStore(), newKEK(t)), "user-profiles")
	enc, _, err := s.Encrypt(ctx, "u-17", []byte(profile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		actions map[string]Action
		want    string
	}{
		{"mask", allActions(Mask), `{"id":"u-17","email":"j***@example.com","address":{"street":"1***","city":"Mountain View"},"ssn":"***-**-6789",
			"contacts":[{"phone":"***4567","kind":"home"},{"phone":"***4321"},{"kind":"none"}],"prefs":{"theme":"dark","tags":[1,2,3]}}`},
		{"redact", allActions(Redact), `{"id":"u-17","address":{"city":"Mountain View"},"contacts":[{"kind":"home"},{},{"kind":"none"}],"prefs":{"theme":"dark","tags":[1,2,3]}}`},
		{"missing action redacts", map[string]Action{"email": Plain}, `{"id":"u-17","email":"john.doe@example.com","address":{"city":"Mountain View"},"contacts":[{"kind":"home"},{},{"kind":"none"}],"prefs":{"theme":"dark","tags":[1,2,3]}}`},
		{"mixed", map[string]Action{"email": Mask, "address.street": Plain, "ssn": Redact, "contacts.phone": Mask}, `{"id":"u-17","email":"j***@example.com","address":{"street":"1600 Amphitheatre Pkwy","city":"Mountain View"},
			"contacts":[{"phone":"***4567","kind":"home"},{"phone":"***4321"},{"kind":"none"}],"prefs":{"theme":"dark","tags":[1,2,3]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := s.Apply(ctx, "u-17", enc, tt.actions)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !jsonEqual(t, out, []byte(tt.want)) {
				t.Errorf("Apply = %s\nwant    %s", out, tt.want)
			}
		})
	}
	if _, _, err := s.Apply(ctx, "u-17", enc, map[string]Action{"ssn": Deny, "email": Plain}); !errors.Is(err, ErrDenied) {
		t.Errorf("Apply with deny: err = %v, want ErrDenied", err)
	}
	if _, _, err := s.Apply(ctx, "u-17", enc, map[string]Action{"ssn": "show"}); err == nil {
		t.Errorf("Apply with an unknown action succeeded")
	}
}

func TestApplyNullAndPlaintext(t *testing.T) {
	s := newSchema(t, NewKeyring(NewMemKeyStore(), newKEK(t)), "ns")
	// A value stored before its field was classified is plaintext.
	doc := []byte(`{"email": "old@legacy.io", "ssn": null}`)
	out, touched, err := s.Apply(ctx, "k", doc, map[string]Action{"email": Mask, "ssn": Plain})
	if err != nil || !jsonEqual(t, out, []byte(`{"email":"o***@legacy.io","ssn":null}`)) || !slices.Equal(touched, []string{"email"}) {
		t.Fatalf("Apply = %s, %v, %v", out, touched, err)
	}
	out, _, err = s.Apply(ctx, "k", doc, map[string]Action{"email": Plain, "ssn": Redact})
	if err != nil || !jsonEqual(t, out, []byte(`{"email":"old@legacy.io"}`)) {
		t.Fatalf("Apply(redact null) = %s, %v", out, err)
	}
}

// envelopeOf returns the $pii string of the email field.
func envelopeOf(t *testing.T, doc []byte, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var env struct {
		P string `json:"$pii"`
	}
	if err := json.Unmarshal(m[field], &env); err != nil || env.P == "" {
		t.Fatalf("field %s is not an envelope: %s", field, m[field])
	}
	return env.P
}

func TestTamperDetected(t *testing.T) {
	keys := NewKeyring(NewMemKeyStore(), newKEK(t))
	s := newSchema(t, keys, "ns")
	enc, _, err := s.Encrypt(ctx, "k", []byte(`{"email": "a@b.io", "ssn": "123-45-6789"}`))
	if err != nil {
		t.Fatal(err)
	}
	env := envelopeOf(t, enc, "email")
	parts := strings.SplitN(env, ":", 3)
	sealed, err := b64.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		c := slices.Clone(sealed)
		c[i] ^= 1
		return parts[0] + ":" + parts[1] + ":" + b64.EncodeToString(c)
	}
	otherKID, err := keys.Rotate(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env string
		want      error
	}{
		{"nonce bit", flip(0), ErrDecrypt},
		{"ciphertext bit", flip(13), ErrDecrypt},
		{"tag bit", flip(len(sealed) - 1), ErrDecrypt},
		{"truncated", parts[0] + ":" + parts[1] + ":" + b64.EncodeToString(sealed[:10]), ErrDecrypt},
		{"bad base64", parts[0] + ":" + parts[1] + ":!!!", ErrDecrypt},
		{"unknown version", "v9:" + parts[1] + ":" + parts[2], ErrDecrypt},
		{"bad key id", "v1:KEY:" + parts[2], ErrDecrypt},
		{"key of another namespace", "v1:" + otherKID + ":" + parts[2], ErrUnknownKey},
		{"unknown key id", "v1:0123456789abcdef:" + parts[2], ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := bytes.Replace(enc, []byte(env), []byte(tt.env), 1)
			out, _, err := s.Apply(ctx, "k", doc, allActions(Plain))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply of a tampered envelope = %s, %v; want %v", out, err, tt.want)
			}
			if _, _, err := s.Apply(ctx, "k", doc, allActions(Mask)); !errors.Is(err, tt.want) {
				t.Fatalf("Apply(mask) of a tampered envelope: %v, want %v", err, tt.want)
			}
		})
	}
	// Redacting needs no decryption, so it works on anything.
	if _, _, err := s.Apply(ctx, "k", bytes.Replace(enc, []byte(env), []byte(flip(3)), 1), allActions(Redact)); err != nil {
		t.Fatalf("Apply(redact) of a tampered envelope: %v", err)
	}
}

// TestMovedCiphertextFails moves envelopes to where they do not belong: the
// additional data must make each move fail.
func TestMovedCiphertextFails(t *testing.T) {
	keys := NewKeyring(NewMemKeyStore(), newKEK(t))
	s := newSchema(t, keys, "ns")
	enc, _, err := s.Encrypt(ctx, "k1", []byte(`{"email": "a@b.io", "ssn": "123-45-6789"}`))
	if err != nil {
		t.Fatal(err)
	}
	email, ssn := envelopeOf(t, enc, "email"), envelopeOf(t, enc, "ssn")

	t.Run("another field", func(t *testing.T) {
		swapped := []byte(`{"email": {"$pii":"` + ssn + `"}, "ssn": {"$pii":"` + email + `"}}`)
		if _, _, err := s.Apply(ctx, "k1", swapped, allActions(Plain)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Apply with swapped fields: %v, want ErrDecrypt", err)
		}
	})
	t.Run("another record", func(t *testing.T) {
		if _, _, err := s.Apply(ctx, "k2", enc, allActions(Plain)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Apply under another key: %v, want ErrDecrypt", err)
		}
	})
	t.Run("another namespace", func(t *testing.T) {
		// Same data key (the store copies the wrapped key would be refused, see
		// TestWrappedKeyBoundToNamespace), so only the additional data differs.
		d, err := keys.newest(ctx, "ns")
		if err != nil {
			t.Fatal(err)
		}
		env, err := sealField(d, "ns", "k1", "email", []byte(`"a@b.io"`))
		if err != nil {
			t.Fatal(err)
		}
		kid, sealed, ok, err := parseEnvelope(env)
		if !ok || err != nil {
			t.Fatalf("parseEnvelope(%s) = %v, %v", env, ok, err)
		}
		if _, err := open(d.aead, sealed, fieldAAD("ns", "k1", "email", kid)); err != nil {
			t.Fatalf("open in place: %v", err)
		}
		if _, err := open(d.aead, sealed, fieldAAD("other", "k1", "email", kid)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("open under another namespace: %v, want ErrDecrypt", err)
		}
		// Through the API: another namespace has another key, so the
		// envelope names a key it does not have.
		other := newSchema(t, keys, "other")
		if _, _, err := other.Apply(ctx, "k1", enc, allActions(Plain)); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Apply in another namespace: %v, want ErrUnknownKey", err)
		}
	})
	t.Run("length prefixes", func(t *testing.T) {
		if bytes.Equal(fieldAAD("ab", "c", "d", "k"), fieldAAD("a", "bc", "d", "k")) {
			t.Fatal("fieldAAD is ambiguous")
		}
	})
}

func TestRotation(t *testing.T) {
	store := NewMemKeyStore()
	kek := newKEK(t)
	keys := NewKeyring(store, kek)
	s := newSchema(t, keys, "ns")
	doc := []byte(`{"email": "a@b.io"}`)
	old, _, err := s.Encrypt(ctx, "k", doc)
	if err != nil {
		t.Fatal(err)
	}
	oldKID := strings.Split(envelopeOf(t, old, "email"), ":")[1]
	newKID, err := keys.Rotate(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID {
		t.Fatalf("Rotate returned the old key id %s", newKID)
	}
	fresh, _, err := s.Encrypt(ctx, "k", doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(envelopeOf(t, fresh, "email"), ":")[1]; got != newKID {
		t.Fatalf("after Rotate, Encrypt used key %s, want the new key %s", got, newKID)
	}
	// A restarted process (new keyring, same store and KEK) reads both and
	// encrypts with the newest.
	keys2 := NewKeyring(store, kek)
	s2 := newSchema(t, keys2, "ns")
	for name, enc := range map[string][]byte{"old": old, "new": fresh} {
		out, _, err := s2.Apply(ctx, "k", enc, allActions(Plain))
		if err != nil || !jsonEqual(t, out, doc) {
			t.Fatalf("%s value after restart: %s, %v", name, out, err)
		}
	}
	if kid, _ := keys2.Current(ctx, "ns"); kid != newKID {
		t.Fatalf("restarted keyring's current key %s, want %s", kid, newKID)
	}
	// Another process rotates; this one sees it after Refresh.
	third, err := keys2.Rotate(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := keys.Current(ctx, "ns"); kid != newKID {
		t.Fatalf("before Refresh the current key is %s, want the cached %s", kid, newKID)
	}
	keys.Refresh("ns")
	if kid, _ := keys.Current(ctx, "ns"); kid != third {
		t.Fatalf("after Refresh the current key is %s, want %s", kid, third)
	}
}

func TestKEKRotation(t *testing.T) {
	store := NewMemKeyStore()
	oldKEK, newKEK := newKEK(t), newKEK(t)
	s := newSchema(t, NewKeyring(store, oldKEK), "ns")
	enc, _, err := s.Encrypt(ctx, "k", []byte(`{"email": "a@b.io"}`))
	if err != nil {
		t.Fatal(err)
	}
	// The new KEK alone cannot read keys the old one wrapped...
	_, _, err = newSchema(t, NewKeyring(store, newKEK), "ns").Apply(ctx, "k", enc, allActions(Plain))
	if err == nil || !strings.Contains(err.Error(), oldKEK.ID()) {
		t.Fatalf("Apply without the old KEK: %v, want an error naming KEK %s", err, oldKEK.ID())
	}
	// ...with the old one as an older KEK it can, and new keys use the new KEK.
	keys := NewKeyring(store, newKEK, oldKEK)
	if _, _, err := newSchema(t, keys, "ns").Apply(ctx, "k", enc, allActions(Plain)); err != nil {
		t.Fatalf("Apply with the old KEK as older: %v", err)
	}
	if _, err := keys.Rotate(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	stored, _ := store.Keys(ctx, "ns")
	if got := stored[len(stored)-1].KEK; got != newKEK.ID() {
		t.Fatalf("new data key wrapped by %s, want %s", got, newKEK.ID())
	}
}

func TestWrappedKeyBoundToNamespace(t *testing.T) {
	store := NewMemKeyStore()
	keys := NewKeyring(store, newKEK(t))
	s := newSchema(t, keys, "a")
	if _, _, err := s.Encrypt(ctx, "k", []byte(`{"email":"x@y.z"}`)); err != nil {
		t.Fatal(err)
	}
	stolen, _ := store.Keys(ctx, "a")
	if err := store.Add(ctx, "b", stolen[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeyring(store, keys.wrap).Current(ctx, "b"); err == nil || !strings.Contains(err.Error(), "unwrap") {
		t.Fatalf("a wrapped key copied to another namespace unwrapped (err %v)", err)
	}
}

func TestNewSchemaErrors(t *testing.T) {
	keys := NewKeyring(NewMemKeyStore(), newKEK(t))
	tests := []struct {
		name   string
		fields []Field
		want   string
	}{
		{"empty path", []Field{{Path: "", Class: Email}}, "empty name"},
		{"empty segment", []Field{{Path: "a..b", Class: Email}}, "empty name"},
		{"duplicate", []Field{{Path: "a", Class: Email}, {Path: "a", Class: Name}}, "declared twice"},
		{"prefix first", []Field{{Path: "a", Class: Address}, {Path: "a.b", Class: Name}}, "inside field"},
		{"prefix last", []Field{{Path: "a.b", Class: Name}, {Path: "a", Class: Address}}, "contains another"},
		{"unknown class", []Field{{Path: "a", Class: "dna"}}, "unknown class"},
		{"unspecified class", []Field{{Path: "a"}}, "unknown class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSchema(keys, "ns", tt.fields); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSchema: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNoFieldsNoKeys(t *testing.T) {
	store := NewMemKeyStore()
	s, err := NewSchema(NewKeyring(store, newKEK(t)), "ns", nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"email": "a@b.c"}`)
	out, touched, err := s.Encrypt(ctx, "k", doc)
	if err != nil || !bytes.Equal(out, doc) || touched != nil {
		t.Fatalf("Encrypt without fields = %s, %v, %v", out, touched, err)
	}
	if _, _, err := s.Encrypt(ctx, "k", []byte("nope")); !errors.Is(err, ErrNotJSON) {
		t.Fatalf("Encrypt of non-JSON without fields: %v, want ErrNotJSON", err)
	}
	if keys, _ := store.Keys(ctx, "ns"); len(keys) != 0 {
		t.Fatalf("a namespace without PII values got %d data keys", len(keys))
	}
}

// BenchmarkEncrypt and BenchmarkApply measure a value with three PII fields.
func BenchmarkEncrypt(b *testing.B) {
	s, err := NewSchema(NewKeyring(NewMemKeyStore(), newKEK(b)), "ns", profileFields[:3])
	if err != nil {
		b.Fatal(err)
	}
	doc := []byte(profile)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, _, err := s.Encrypt(ctx, "u-17", doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	s, err := NewSchema(NewKeyring(NewMemKeyStore(), newKEK(b)), "ns", profileFields[:3])
	if err != nil {
		b.Fatal(err)
	}
	enc, _, err := s.Encrypt(ctx, "u-17", []byte(profile))
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range []Action{Plain, Mask, Redact} {
		actions := map[string]Action{"email": a, "address.street": a, "ssn": a}
		b.Run(string(a), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, _, err := s.Apply(ctx, "u-17", enc, actions); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
