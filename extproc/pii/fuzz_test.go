package pii

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzSchema feeds arbitrary bytes to Encrypt and Apply. Neither may panic;
// for valid JSON, Encrypt must leave no PII value outside an envelope, Apply
// with plain must give the document back, and Apply with redact must leave
// no PII member at all.
func FuzzSchema(f *testing.F) {
	for _, seed := range []string{
		profile,
		`{"email": "a@b.c", "email": null}`,
		`[{"contacts": [[{"phone": 1}]]}, 3, "x"]`,
		`{"address": {"street": {"$pii": "v1:00:AAAA"}}}`,
		`{"em\u0061il": "x", "ssn": [1, {"a": "}"}]}`,
		`{"contacts": {"phone": "555-1234"}}`,
		`{"a":` + string(bytes.Repeat([]byte("["), 40)) + `]`,
		`"just a string"`, `null`, ``, `{`, `{"email"}`, `{"email": "\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	s := newSchema(f, NewKeyring(NewMemKeyStore(), newKEK(f)), "ns")
	f.Fuzz(func(t *testing.T, doc []byte) {
		enc, _, err := s.Encrypt(ctx, "k", doc)
		if !json.Valid(doc) {
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("Encrypt of invalid JSON %q: err %v, want ErrNotJSON", doc, err)
			}
			if _, _, err := s.Apply(ctx, "k", doc, allActions(Mask)); !errors.Is(err, ErrNotJSON) {
				t.Fatalf("Apply of invalid JSON %q: err %v, want ErrNotJSON", doc, err)
			}
			return
		}
		if errors.Is(err, ErrTooDeep) {
			return
		}
		if err != nil {
			t.Fatalf("Encrypt(%q): %v", doc, err)
		}
		if !json.Valid(enc) {
			t.Fatalf("Encrypt(%q) gave invalid JSON %q", doc, enc)
		}
		// Every value at a PII path is now null or an envelope.
		if _, err := rewrite(enc, s.root, func(_ int, raw []byte) ([]byte, bool, error) {
			if _, _, ok, err := parseEnvelope(raw); string(raw) != "null" && (!ok || err != nil) {
				t.Fatalf("Encrypt(%q) left a PII value in plaintext: %q in %q", doc, raw, enc)
			}
			return raw, false, nil
		}); err != nil {
			t.Fatalf("walking the encrypted document %q: %v", enc, err)
		}
		dec, _, err := s.Apply(ctx, "k", enc, allActions(Plain))
		if err != nil {
			t.Fatalf("Apply(plain) of %q: %v", enc, err)
		}
		if !sameJSON(dec, doc) {
			t.Fatalf("round trip of %q gave %q", doc, dec)
		}
		red, _, err := s.Apply(ctx, "k", enc, allActions(Redact))
		if err != nil {
			t.Fatalf("Apply(redact) of %q: %v", enc, err)
		}
		if _, err := rewrite(red, s.root, func(_ int, raw []byte) ([]byte, bool, error) {
			t.Fatalf("Apply(redact) of %q left a PII member: %q", enc, raw)
			return raw, false, nil
		}); err != nil {
			t.Fatalf("walking the redacted document %q: %v", red, err)
		}
		if _, _, err := s.Apply(ctx, "k", enc, allActions(Mask)); err != nil {
			t.Fatalf("Apply(mask) of %q: %v", enc, err)
		}
		// Apply on documents Encrypt did not write must not panic either.
		_, _, _ = s.Apply(ctx, "k", doc, allActions(Mask))
	})
}

// sameJSON compares two JSON values as Go decodes them (numbers exactly).
func sameJSON(a, b []byte) bool {
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}
