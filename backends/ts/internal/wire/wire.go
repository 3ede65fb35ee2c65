// Package wire is the JSON form of an event in the records of the log
// drivers (a NATS message body, a Kafka record value) and of tags in the SQL
// drivers' rows. It is the API's event shape, so independent consumers of a
// stream or topic can read it:
//
//	{"series":"sensor-7","time":"2026-01-02T03:04:05.123456789Z","id":"e1","data":{...},"tags":{"k":"v"}}
//
// Time is RFC 3339 in UTC with up to nine fractional digits, so nanoseconds
// survive; id and tags are omitted when empty; data is always present (null
// when the event had none).
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

type record struct {
	Series string            `json:"series"`
	Time   string            `json:"time"`
	ID     string            `json:"id,omitempty"`
	Data   json.RawMessage   `json:"data"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// Marshal encodes e (validated) as its record JSON. Cursor is not encoded.
func Marshal(e *ts.Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(record{
		Series: e.Series,
		Time:   e.Time.UTC().Format(time.RFC3339Nano),
		ID:     e.ID,
		Data:   ts.DataOrNull(e.Data),
		Tags:   e.Tags,
	})
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Unmarshal decodes a record made by Marshal.
func Unmarshal(b []byte) (ts.Event, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return ts.Event{}, fmt.Errorf("decode event: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return ts.Event{}, fmt.Errorf("decode event: time: %w", err)
	}
	return ts.Event{Series: r.Series, Time: t.UTC(), ID: r.ID, Data: ts.DataOrNull(r.Data), Tags: r.Tags}, nil
}

// MarshalTags encodes tags as a JSON object, or nil when there are none.
func MarshalTags(tags map[string]string) ([]byte, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tags); err != nil {
		return nil, fmt.Errorf("encode tags: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalTags decodes what MarshalTags made; nil or empty input is no
// tags.
func UnmarshalTags(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var tags map[string]string
	if err := json.Unmarshal(b, &tags); err != nil {
		return nil, fmt.Errorf("decode tags: %w", err)
	}
	return tags, nil
}
