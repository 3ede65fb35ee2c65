package pii

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// An envelope is the JSON that stands for an encrypted field value:
//
//	{"$pii":"v1:<kid>:<base64 (no padding) of 12-byte nonce | ciphertext | tag>"}
//
// The plaintext is the field's raw JSON value (a string, a number, an
// object...), so decryption gives back exactly what was written.
const (
	envelopeHead = `{"$pii":"v1:`
	envelopeTail = `"}`
	envelopeKey  = `"$pii"`
)

var b64 = base64.RawStdEncoding

// sealField encrypts a field's raw JSON value into an envelope.
func sealField(d *dek, namespace, key, path string, plain []byte) ([]byte, error) {
	sealed, err := seal(d.aead, plain, fieldAAD(namespace, key, path, d.kid))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(envelopeHead)+len(d.kid)+1+b64.EncodedLen(len(sealed))+len(envelopeTail))
	out = append(out, envelopeHead...)
	out = append(out, d.kid...)
	out = append(out, ':')
	out = b64.AppendEncode(out, sealed)
	return append(out, envelopeTail...), nil
}

// fieldAAD binds a field ciphertext to where it belongs: namespace, record
// key, schema path and data key id.
func fieldAAD(namespace, key, path, kid string) []byte {
	b := make([]byte, 0, 16+len(namespace)+len(key)+len(path)+len(kid))
	b = append(b, "prism-pii-v1\x00"...)
	b = appendString(b, namespace)
	b = appendString(b, key)
	b = appendString(b, path)
	return appendString(b, kid)
}

// parseEnvelope recognizes an envelope. ok is false for any other value (a
// plaintext value written before the field was classified); err is set for
// an object that is an envelope but a malformed one.
func parseEnvelope(raw []byte) (kid string, sealed []byte, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' {
		return "", nil, false, nil
	}
	w := walker{src: raw}
	i := w.ws(1)
	if !bytes.HasPrefix(raw[i:], []byte(envelopeKey)) {
		return "", nil, false, nil
	}
	i = w.ws(i + len(envelopeKey))
	if i >= len(raw) || raw[i] != ':' {
		return "", nil, false, nil
	}
	i = w.ws(i + 1)
	if i >= len(raw) || raw[i] != '"' {
		return "", nil, true, fmt.Errorf("%w: $pii is not a string", ErrDecrypt)
	}
	end, serr := skipString(raw, i)
	if serr != nil || w.ws(end) != len(raw)-1 || raw[len(raw)-1] != '}' {
		return "", nil, true, fmt.Errorf("%w: malformed envelope", ErrDecrypt)
	}
	body := raw[i+1 : end-1]
	rest, found := bytes.CutPrefix(body, []byte("v1:"))
	if !found {
		return "", nil, true, fmt.Errorf("%w: unknown envelope version", ErrDecrypt)
	}
	k, data, found := bytes.Cut(rest, []byte{':'})
	if !found || !validKID(string(k)) {
		return "", nil, true, fmt.Errorf("%w: malformed key id", ErrDecrypt)
	}
	sealed, derr := b64.AppendDecode(nil, data)
	if derr != nil {
		return "", nil, true, fmt.Errorf("%w: malformed ciphertext: %v", ErrDecrypt, derr)
	}
	return string(k), sealed, true, nil
}
