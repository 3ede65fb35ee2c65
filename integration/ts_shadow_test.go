package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestTimeSeriesShadowFollowsPhases drives one extproc through a
// TimeSeries migration by config, as xDS would, with the handover done by
// hand as the control plane does it: copies keep the source's positions,
// shadow queries find an injected divergence, a node whose config is
// behind the handover appends to the store that took over, a tail cursor
// from before the handover reads the source up to the floor and then the
// target, and an abort after promotion hands positions back, with tails
// below its floor reading the target first while copies still land.
func TestTimeSeriesShadowFollowsPhases(t *testing.T) {
	ctx := context.Background()
	src, dst := sqliteBackend(t, "src"), postgresBackend(t, "dst", "")
	backends := []*configv1.Backend{src, dst}
	namespaces := []*configv1.Namespace{{Namespace: "metrics", Abstraction: configv1.Abstraction_TIMESERIES, Backend: "src"}}
	st := startStack(t, backends, namespaces)
	c := kvClient{t: t, base: st.edgeURL + "/v1/ts/metrics"}
	srcTS, dstTS := openTSReplica(t, src), openTSReplica(t, dst)
	for _, r := range []ts.Replica{srcTS, dstTS} {
		if err := r.EnsureNamespace(ctx, "metrics", ts.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	apply := func(phase configv1.Migration_Phase, readPercent float64, floor int64) error {
		return st.server.Apply(ctx, &configv1.DevConfig{Backends: backends, Namespaces: namespaces, Migrations: []*configv1.Migration{{
			Namespace: "metrics", From: "src", To: "dst", Id: "m1", Phase: phase, ReadPercent: readPercent, HandoverFloor: floor,
		}}})
	}
	appendEvents := func(body string) {
		t.Helper()
		expect(t, "append", c.do("POST", "/events", []byte(body)), 200, "")
	}
	// seqs returns the positions of the series' events in a store, by id.
	seqs := func(store ts.Store, series string) map[string]int64 {
		t.Helper()
		page, err := store.Query(ctx, "metrics", ts.QueryArgs{Series: series, Limit: ts.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, e := range page.Events {
			out[e.ID] = e.Seq
		}
		return out
	}
	tail := func(cursor string) eventsPage {
		t.Helper()
		r := c.do("GET", "/tail?"+url.Values{"series": {"s"}, "after": {cursor}, "wait": {"0s"}}.Encode(), nil)
		expect(t, "tail", r, 200, "")
		var p eventsPage
		r.json(t, &p)
		return p
	}
	ids := func(p eventsPage) []string {
		var out []string
		for _, e := range p.Events {
			out = append(out, e.ID)
		}
		return out
	}

	appendEvents(`{"events":[{"series":"old","id":"e0","data":0}]}`)
	if err := apply(configv1.Migration_SHADOW_WRITE, 0, 0); err != nil {
		t.Fatal(err)
	}
	appendEvents(`{"events":[{"series":"s","id":"e1","data":1},{"series":"s","id":"e2","data":{"n":2}},{"series":"t","id":"t1","data":"x"}]}`)
	got, want := seqs(dstTS, "s"), seqs(srcTS, "s")
	if got["e1"] == 0 || got["e1"] != want["e1"] || got["e2"] != want["e2"] {
		t.Fatalf("copies at positions %v, the source's are %v", got, want)
	}
	if _, ok := seqs(dstTS, "old")["e0"]; ok {
		t.Fatal("an event appended before the migration was copied: that is the backfill's job")
	}

	// Shadow queries: an event the target alone holds is a mismatch of
	// its series.
	if err := apply(configv1.Migration_SHADOW_READ, 100, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dstTS.Copy(ctx, "metrics", []ts.Event{{Series: "t", Time: time.Now(), ID: "ghost", Data: json.RawMessage(`1`), Seq: 1 << 40}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var rep *configv1.MigrationCounters
	for {
		expect(t, "query s", c.do("GET", "/events?series=s", nil), 200, "")
		expect(t, "query t", c.do("GET", "/events?series=t", nil), 200, "")
		rep = st.server.MigrationReport("n1").GetMigrations()[0]
		if rep.GetMismatches() > 0 && rep.GetReadsCompared() >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Equal(rep.GetMismatchKeys(), []string{"t"}) || rep.GetShadowWrites() < 1 || rep.GetShadowWriteFailures() != 0 {
		t.Fatalf("report %v: want series t alone mismatching and the copies counted", rep)
	}

	// The handover, ahead of the config: the node still in SHADOW_READ
	// finds the source sealed and appends to the target, above the floor.
	start := tail("")
	beforeHandover := start.NextCursor
	appendEvents(`{"events":[{"series":"s","id":"e3","data":3}]}`)
	floor, err := srcTS.Seal(ctx, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	if err := dstTS.Unseal(ctx, "metrics", floor); err != nil {
		t.Fatal(err)
	}
	appendEvents(`{"events":[{"series":"s","id":"e4","data":4}]}`)
	if s := seqs(dstTS, "s")["e4"]; s <= floor || seqs(srcTS, "s")["e4"] != s {
		t.Fatalf("an append after the seal got position %d on the target (floor %d) and %d on the source", s, floor, seqs(srcTS, "s")["e4"])
	}
	if p := tail(beforeHandover); !slices.Equal(ids(p), []string{"e3"}) {
		t.Fatalf("tail of the sealed source = %v, want e3 and nothing past the floor", ids(p))
	}

	if err := apply(configv1.Migration_PROMOTED, 0, floor); err != nil {
		t.Fatal(err)
	}
	p := tail(beforeHandover) // below the floor: the source first
	if !slices.Equal(ids(p), []string{"e3"}) {
		t.Fatalf("tail from before the handover = %v, want e3 (from the source)", ids(p))
	}
	p = tail(p.NextCursor) // then the target
	if !slices.Equal(ids(p), []string{"e4"}) {
		t.Fatalf("tail across the floor = %v, want e4", ids(p))
	}
	appendEvents(`{"events":[{"series":"s","id":"e5","data":5}]}`)
	if s := seqs(srcTS, "s")["e5"]; s == 0 || s != seqs(dstTS, "s")["e5"] {
		t.Fatalf("after promotion e5 is at %d on the source and %d on the target", s, seqs(dstTS, "s")["e5"])
	}
	if p = tail(p.NextCursor); !slices.Equal(ids(p), []string{"e5"}) {
		t.Fatalf("tail after promotion = %v, want e5", ids(p))
	}
	last := p.NextCursor
	// An event the target took whose copy to the source is still on its
	// way when the abort comes (appended behind extproc's back here).
	late, _, err := dstTS.AppendEvents(ctx, "metrics", []ts.Event{{Series: "s", Time: time.Now(), ID: "late", Data: json.RawMessage(`"late"`)}})
	if err != nil || len(late) != 1 {
		t.Fatalf("appending the late event: %v", err)
	}

	// Abort after promotion: the reverse handover first, while the node
	// still acts on PROMOTED. Its append finds the target sealed and goes
	// to the source, above the abort's floor, past the late event's copy.
	floor2, err := dstTS.Seal(ctx, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	if err := srcTS.Unseal(ctx, "metrics", floor2); err != nil {
		t.Fatal(err)
	}
	appendEvents(`{"events":[{"series":"s","id":"e6","data":6}]}`)
	if s := seqs(srcTS, "s")["e6"]; s <= floor2 {
		t.Fatalf("after the reverse handover e6 is at %d on the source, want above %d", s, floor2)
	}
	// A tail from before the promotion, on the PROMOTED config: the source
	// is unsealed now, so only its events up to the promotion's floor are
	// final there; the rest comes from the target, the late event included.
	if p = tail(beforeHandover); !slices.Equal(ids(p), []string{"e3"}) {
		t.Fatalf("tail below the promotion's floor after the reverse handover = %v, want e3 alone", ids(p))
	}
	if p = tail(p.NextCursor); !slices.Equal(ids(p), []string{"e4", "e5", "late"}) {
		t.Fatalf("tail across the promotion's floor = %v, want e4 e5 late", ids(p))
	}

	if err := apply(configv1.Migration_ABORTED, 0, floor2); err != nil {
		t.Fatal(err)
	}
	// Below the abort's floor a tail reads the sealed target first: the
	// late event, though its copy has not reached the source yet.
	if p = tail(last); !slices.Equal(ids(p), []string{"late"}) {
		t.Fatalf("tail after the abort = %v, want the late event first", ids(p))
	}
	if _, _, err := srcTS.Copy(ctx, "metrics", late); err != nil { // the copy lands
		t.Fatal(err)
	}
	if p = tail(p.NextCursor); !slices.Equal(ids(p), []string{"e6"}) {
		t.Fatalf("tail after the late event = %v, want e6 alone", ids(p))
	}
	if _, _, err := dstTS.Append(ctx, "metrics", []ts.Event{{Series: "s", Time: time.Now(), Data: json.RawMessage(`7`)}}); !errors.Is(err, ts.ErrSealed) {
		t.Fatalf("append to the target after the abort: %v, want ErrSealed", err)
	}
}
