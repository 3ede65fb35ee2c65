// Package escape turns namespace and series names into names that brokers
// accept: NATS subject tokens and stream names, Kafka topic names.
package escape

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxToken bounds Name's result.
const MaxToken = 120

// Token escapes s so that it holds only ASCII letters, digits, '-' and
// '_': letters, digits and '-' stay, every other byte becomes '_' and two
// uppercase hex digits. The mapping is injective ('_' itself is escaped),
// so distinct names never share a stream, subject or topic.
func Token(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// Name is Token(s), shortened to MaxToken bytes with a digest of s when
// longer. "_" followed by lowercase hex never comes out of Token, so a
// shortened name never equals an escaped one.
func Name(s string) string {
	t := Token(s)
	if len(t) <= MaxToken {
		return t
	}
	sum := sha256.Sum256([]byte(s))
	return t[:MaxToken-17] + "_" + hex.EncodeToString(sum[:8])
}
