package extproc

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/prism-gw/prism/backends/kv"
)

// cursorVersion lets the cursor format change without misreading old cursors.
const cursorVersion = 1

// encodeKVCursor makes the opaque next_cursor of a scan page: the last key
// returned, behind a version byte, in unpadded base64url.
func encodeKVCursor(lastKey string) string {
	b := make([]byte, 0, 1+len(lastKey))
	b = append(b, cursorVersion)
	b = append(b, lastKey...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeKVCursor parses a cursor made by encodeKVCursor.
func decodeKVCursor(c string) (string, *apiError) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return "", invalid("bad cursor: pass the next_cursor of the previous page unchanged")
	}
	key := string(b[1:])
	if len(key) > kv.MaxKeyBytes || !utf8.ValidString(key) {
		return "", invalid("bad cursor: pass the next_cursor of the previous page unchanged")
	}
	return key, nil
}
