package pii

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Schema is the PII schema of one namespace, prepared once per config
// version: paths split into a tree, classes checked. It is safe for
// concurrent use.
type Schema struct {
	namespace string
	keys      *Keyring
	fields    []Field
	root      *node
}

// NewSchema prepares the fields of a namespace. Paths must be non-empty,
// unique, made of non-empty dot-separated names, and none may be a prefix of
// another ("address" and "address.street" together are refused: encrypt the
// whole address instead).
func NewSchema(keys *Keyring, namespace string, fields []Field) (*Schema, error) {
	root := &node{field: -1}
	for i, f := range fields {
		switch f.Class {
		case Email, Name, Phone, SSN, Address, IPAddress, CreditCard:
		default:
			return nil, fmt.Errorf("pii: field %q: unknown class %q", f.Path, f.Class)
		}
		n := root
		for _, name := range strings.Split(f.Path, ".") {
			if name == "" {
				return nil, fmt.Errorf("pii: field %q: empty name in path", f.Path)
			}
			if n.field >= 0 {
				return nil, fmt.Errorf("pii: field %q lies inside field %q", f.Path, fields[n.field].Path)
			}
			if n.children == nil {
				n.children = map[string]*node{}
			}
			child := n.children[name]
			if child == nil {
				child = &node{field: -1}
				n.children[name] = child
			}
			n = child
		}
		switch {
		case n.field >= 0:
			return nil, fmt.Errorf("pii: field %q declared twice", f.Path)
		case n.children != nil:
			return nil, fmt.Errorf("pii: field %q contains another PII field", f.Path)
		}
		n.field = i
	}
	return &Schema{namespace: namespace, keys: keys, fields: append([]Field(nil), fields...), root: root}, nil
}

// Fields returns the schema's fields.
func (s *Schema) Fields() []Field {
	return append([]Field(nil), s.fields...)
}

// Encrypt replaces the value of every PII field in doc (a JSON value) with an
// envelope sealed under the namespace's newest data key and bound to key
// (the record's key, series or node id: the same must be given to Apply).
// null values are left alone. touched lists the schema paths that held a
// value, in schema order, for the audit record. doc is not modified; when it
// has no PII field it is returned as is.
func (s *Schema) Encrypt(ctx context.Context, key string, doc []byte) (out []byte, touched []string, err error) {
	if !json.Valid(doc) {
		return nil, nil, ErrNotJSON
	}
	if len(s.fields) == 0 {
		return doc, nil, nil
	}
	var d *dek
	seen := make([]bool, len(s.fields))
	out, err = rewrite(doc, s.root, func(field int, raw []byte) ([]byte, bool, error) {
		if string(raw) == "null" {
			return raw, false, nil
		}
		if d == nil {
			var kerr error
			if d, kerr = s.keys.newest(ctx, s.namespace); kerr != nil {
				return nil, false, kerr
			}
		}
		seen[field] = true
		env, serr := sealField(d, s.namespace, key, s.fields[field].Path, raw)
		return env, false, serr
	})
	if err != nil {
		return nil, nil, err
	}
	return out, s.paths(seen), nil
}

// Apply carries out the policy's actions on a document Encrypt produced:
// Plain decrypts, Mask decrypts and masks (see MaskValue), Redact removes the
// member (also when it is null). A field missing from actions is redacted. Deny fails the whole
// call with ErrDenied. A PII field holding plaintext rather than an
// envelope (a value written before the field was classified) is treated
// as its own plaintext. touched lists the schema paths that held a value.
func (s *Schema) Apply(ctx context.Context, key string, doc []byte, actions map[string]Action) (out []byte, touched []string, err error) {
	if !json.Valid(doc) {
		return nil, nil, ErrNotJSON
	}
	if len(s.fields) == 0 {
		return doc, nil, nil
	}
	for _, f := range s.fields {
		switch a := actions[f.Path]; a {
		case Plain, Mask, Redact, "":
		case Deny:
			return nil, nil, fmt.Errorf("%w: %s", ErrDenied, f.Path)
		default:
			return nil, nil, fmt.Errorf("pii: field %s: unknown action %q", f.Path, a)
		}
	}
	seen := make([]bool, len(s.fields))
	out, err = rewrite(doc, s.root, func(field int, raw []byte) ([]byte, bool, error) {
		f := s.fields[field]
		action := actions[f.Path]
		redact := action == Redact || action == ""
		if string(raw) == "null" {
			return raw, redact, nil // null holds no PII; redact still removes the member
		}
		seen[field] = true
		if redact {
			return nil, true, nil
		}
		plain, oerr := s.open(ctx, key, f.Path, raw)
		if oerr != nil {
			return nil, false, oerr
		}
		if action == Mask {
			return MaskValue(f.Class, plain), false, nil
		}
		return plain, false, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, s.paths(seen), nil
}

// open decrypts an envelope, or returns a value that is not one as is.
func (s *Schema) open(ctx context.Context, key, path string, raw []byte) ([]byte, error) {
	kid, sealed, ok, err := parseEnvelope(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !ok {
		return raw, nil
	}
	d, err := s.keys.key(ctx, s.namespace, kid)
	if err != nil {
		return nil, err
	}
	plain, err := open(d.aead, sealed, fieldAAD(s.namespace, key, path, kid))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return plain, nil
}

// paths returns the paths of the seen fields in schema order.
func (s *Schema) paths(seen []bool) []string {
	var out []string
	for i, ok := range seen {
		if ok {
			out = append(out, s.fields[i].Path)
		}
	}
	return out
}
