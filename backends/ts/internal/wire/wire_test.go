package wire

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

func TestRoundTrip(t *testing.T) {
	in := ts.Event{Series: "s", Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600)), ID: "e<1>",
		Data: json.RawMessage(`{"html":"<b>&</b>","n":[1,2]}`), Tags: map[string]string{"k": "v&"}}
	b, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"series":"s","time":"2026-01-02T02:04:05.123456789Z","id":"e<1>","data":{"html":"<b>&</b>","n":[1,2]},"tags":{"k":"v&"}}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Series != in.Series || !out.Time.Equal(in.Time) || out.Time.Location() != time.UTC || out.ID != in.ID ||
		string(out.Data) != string(in.Data) || !maps.Equal(out.Tags, in.Tags) {
		t.Errorf("Unmarshal(Marshal(%+v)) = %+v", in, out)
	}
	empty, _ := Marshal(&ts.Event{Series: "s", Time: in.Time})
	if e, err := Unmarshal(empty); err != nil || string(e.Data) != "null" || e.ID != "" || e.Tags != nil {
		t.Errorf("event without data, id and tags: %s → %+v, %v", empty, e, err)
	}
	if _, err := Unmarshal([]byte(`{"series":"s","time":"yesterday"}`)); err == nil {
		t.Error("a record with a bad time decoded")
	}
}
