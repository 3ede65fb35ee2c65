package nats

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/prism-gw/prism/backends/ts/internal/escape"
)

// token escapes a series into one subject token.
func token(series string) string { return escape.Token(series) }

// nsToken escapes a namespace into one subject token that is also valid in
// a stream name.
func nsToken(ns string) string { return escape.Name(ns) }

// msgID is the Nats-Msg-Id of an event: JetStream de-duplicates by message
// id per stream, and the API by (series, id), so the id covers both. A
// digest keeps it short and free of characters headers cannot carry.
func msgID(series, id string) string {
	h := sha256.New()
	h.Write(binary.AppendUvarint(nil, uint64(len(series))))
	h.Write([]byte(series))
	h.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
