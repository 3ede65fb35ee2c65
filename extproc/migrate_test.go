package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/extproc/pii"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestCheckPhase: a node never goes back to a phase older than one it has
// applied for the same migration; abort ends a migration for good; a new
// migration id starts over.
func TestCheckPhase(t *testing.T) {
	const (
		sw  = configv1.Migration_SHADOW_WRITE
		bf  = configv1.Migration_BACKFILL
		sr  = configv1.Migration_SHADOW_READ
		pr  = configv1.Migration_PROMOTED
		dec = configv1.Migration_DECOMMISSIONED
		ab  = configv1.Migration_ABORTED
	)
	m := func(id string, p configv1.Migration_Phase) *configv1.Migration {
		return &configv1.Migration{Namespace: "orders", Id: id, Phase: p}
	}
	tests := []struct {
		seen, next *configv1.Migration
		ok         bool
	}{
		{nil, m("a", sr), true},
		{m("a", sw), m("a", sw), true},
		{m("a", sw), m("a", bf), true},
		{m("a", sw), m("a", pr), true}, // a node may miss phases in between
		{m("a", sr), m("a", bf), false},
		{m("a", pr), m("a", sr), false},
		{m("a", dec), m("a", pr), false},
		{m("a", pr), m("a", ab), true},
		{m("a", sw), m("a", ab), true},
		{m("a", dec), m("a", ab), false}, // decommissioned: the source is gone
		{m("a", ab), m("a", sw), false},
		{m("a", ab), m("a", ab), true},
		{m("a", pr), m("b", sw), true}, // a new migration
		{m("a", ab), m("b", sw), true},
	}
	for _, tt := range tests {
		err := checkPhase(tt.seen, tt.next)
		if (err == nil) != tt.ok {
			t.Errorf("checkPhase(%v → %v) = %v, want ok %v", tt.seen.GetPhase(), tt.next.GetPhase(), err, tt.ok)
		}
	}
}

// TestSamePage: shadow query pages match when their events agree at each
// position, whatever the JSON spelling of the data; anything else differs.
func TestSamePage(t *testing.T) {
	at := time.Unix(100, 5)
	ev := func(seq int64, data string, tags map[string]string) ts.Event {
		return ts.Event{Series: "s", Seq: seq, Time: at, ID: "i", Data: json.RawMessage(data), Tags: tags}
	}
	page := func(next string, events ...ts.Event) ts.Page { return ts.Page{Events: events, NextCursor: next} }
	base := page("c", ev(1, `{"a":1,"b":[1,2]}`, map[string]string{"k": "v"}))
	tests := []struct {
		name  string
		other ts.Page
		same  bool
	}{
		{"identical", base, true},
		{"whitespace and key order", page("c", ev(1, `{ "b": [1, 2], "a": 1 }`, map[string]string{"k": "v"})), true},
		{"another position", page("c", ev(2, `{"a":1,"b":[1,2]}`, map[string]string{"k": "v"})), false},
		{"other data", page("c", ev(1, `{"a":2,"b":[1,2]}`, map[string]string{"k": "v"})), false},
		{"other tags", page("c", ev(1, `{"a":1,"b":[1,2]}`, nil)), false},
		{"other cursor", page("d", ev(1, `{"a":1,"b":[1,2]}`, map[string]string{"k": "v"})), false},
		{"an event more", page("c", ev(1, `{"a":1,"b":[1,2]}`, map[string]string{"k": "v"}), ev(3, `1`, nil)), false},
	}
	for _, tc := range tests {
		if got := samePage(context.Background(), nil, nil, base, tc.other); got != tc.same {
			t.Errorf("%s: samePage = %v, want %v", tc.name, got, tc.same)
		}
	}
}

// TestSamePageComparesPIIDecrypted: the same event sealed twice differs in
// its ciphertext (a fresh nonce; or a rotated key), yet is the same event;
// another plaintext is not.
func TestSamePageComparesPIIDecrypted(t *testing.T) {
	ctx := context.Background()
	kek, err := pii.NewLocalKEK(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sch, err := pii.NewSchema(pii.NewKeyring(pii.NewMemKeyStore(), kek), "signups", []pii.Field{{Path: "email", Class: pii.Email}})
	if err != nil {
		t.Fatal(err)
	}
	plain := map[string]pii.Action{"email": pii.Plain}
	seal := func(doc string) ts.Page {
		out, _, err := sch.Encrypt(ctx, "s", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return ts.Page{Events: []ts.Event{{Series: "s", Seq: 1, Data: out}}}
	}
	a, b := seal(`{"email":"ada@example.com","n":1}`), seal(`{"email":"ada@example.com","n":1}`)
	if bytes.Equal(a.Events[0].Data, b.Events[0].Data) {
		t.Fatal("sealing twice gave the same bytes: the test would prove nothing")
	}
	if !samePage(ctx, sch, plain, a, b) {
		t.Error("one event sealed twice: pages differ")
	}
	if samePage(ctx, sch, plain, a, seal(`{"email":"bob@example.com","n":1}`)) {
		t.Error("another email: pages match")
	}
	if samePage(ctx, nil, nil, a, b) {
		t.Error("without the schema the ciphertexts compared equal")
	}
}
