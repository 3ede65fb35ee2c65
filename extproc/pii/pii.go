// Package pii encrypts the PII fields of JSON documents at rest and applies
// per-field policy actions when they are read.
//
// A namespace's schema names PII fields by dot-separated JSON path and class.
// Before a value reaches a backend, Schema.Encrypt replaces each field's value
// with an envelope
//
//	{"$pii":"v1:<key id>:<base64 of nonce|AES-256-GCM ciphertext>"}
//
// sealed under the namespace's newest data key. The additional data binds
// the ciphertext to its namespace, record key, field path and key id, so a
// ciphertext copied to another field, record or namespace does not decrypt.
// Data keys are stored wrapped by a key-encryption key (KEK) in a KeyStore;
// a Keyring unwraps them once and keeps them in memory. Rotation adds a data
// key: new writes use it, old envelopes still name and find theirs.
//
// On reads Schema.Apply decrypts (plain), masks per class (mask), or removes
// (redact) each field as the policy decided.
package pii

import (
	"errors"
	"strings"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Class is a PII class, named as in a namespace schema, in lower case.
type Class string

// The PII classes of configv1.PiiClass.
const (
	Email      Class = "email"       // masked j***@example.com
	Name       Class = "name"        // masked to initials
	Phone      Class = "phone"       // masked to the last 4 digits
	SSN        Class = "ssn"         // masked ***-**-1234
	Address    Class = "address"     // masked to the first character, or the city of an object
	IPAddress  Class = "ip_address"  // masked to the /24 (IPv6: /48)
	CreditCard Class = "credit_card" // masked to the last 4 digits
)

// ClassOf converts the proto enum to a Class ("" for unspecified).
func ClassOf(c configv1.PiiClass) Class {
	if c == configv1.PiiClass_PII_CLASS_UNSPECIFIED {
		return ""
	}
	return Class(strings.ToLower(c.String()))
}

// Field is one PII field of a schema.
type Field struct {
	// Path is the dot-separated path of member names, e.g. "address.street".
	// Arrays on the way are entered element by element: "contacts.email"
	// covers {"contacts":[{"email":...},...]}.
	Path string
	// Class selects the masking.
	Class Class
}

// FieldsOf converts a namespace schema to fields.
func FieldsOf(s *configv1.Schema) []Field {
	fields := make([]Field, 0, len(s.GetPii()))
	for _, f := range s.GetPii() {
		fields = append(fields, Field{Path: f.GetPath(), Class: ClassOf(f.GetClass())})
	}
	return fields
}

// Action is what Apply does to a field on a read.
type Action string

// The actions of the policy (policies.Action has the same values).
const (
	// Plain returns the decrypted value.
	Plain Action = "plain"
	// Mask returns a class-aware mask of the value (see MaskValue).
	Mask Action = "mask"
	// Redact removes the member from its object.
	Redact Action = "redact"
	// Deny refuses the read: Apply returns ErrDenied.
	Deny Action = "deny"
)

// Errors callers map to API codes; all are wrapped with details.
var (
	// ErrNotJSON: the value is not valid JSON (400 on a write).
	ErrNotJSON = errors.New("pii: value is not valid JSON")
	// ErrTooDeep: arrays nest too deeply on a PII path (400 on a write).
	ErrTooDeep = errors.New("pii: value nests too deeply")
	// ErrDenied: an action was Deny (403).
	ErrDenied = errors.New("pii: access to a PII field denied")
	// ErrDecrypt: an envelope is malformed or does not authenticate — it
	// was altered, or moved from another field, record or namespace.
	ErrDecrypt = errors.New("pii: cannot decrypt field")
	// ErrUnknownKey: an envelope names a data key the key store does not
	// have for this namespace.
	ErrUnknownKey = errors.New("pii: unknown data key")
)
