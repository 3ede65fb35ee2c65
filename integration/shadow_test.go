package integration

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// openReplica opens a backend's KeyValue store directly, as the test's
// view of what the backend holds.
func openReplica(t *testing.T, b *configv1.Backend) kv.Replica {
	t.Helper()
	driver, dsn := "sqlite", b.GetSqlite().GetPath()
	if pg := b.GetPostgres(); pg != nil {
		driver, dsn = "postgres", pg.GetDsn()
	}
	st, err := kv.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, ok := st.(kv.Replica)
	if !ok {
		t.Fatalf("%s store does not implement kv.Replica", driver)
	}
	return r
}

// TestShadowTrafficFollowsPhases drives one extproc through a migration's
// phases by config, as xDS would, and checks where each request lands:
// copies carry the primary's version, shadow reads find an injected
// divergence, promote swaps the sides, a stale phase is refused and abort
// returns to the source.
func TestShadowTrafficFollowsPhases(t *testing.T) {
	ctx := context.Background()
	src, dst := sqliteBackend(t, "src"), postgresBackend(t, "dst", "")
	backends := []*configv1.Backend{src, dst}
	namespaces := []*configv1.Namespace{kvNamespace("orders", "src", 0)}
	st := startStack(t, backends, namespaces)
	c := kvClient{t: t, base: st.edgeURL + "/v1/kv/orders"}
	srcKV, dstKV := openReplica(t, src), openReplica(t, dst)

	apply := func(phase configv1.Migration_Phase, readPercent float64) error {
		return st.server.Apply(ctx, &configv1.DevConfig{Backends: backends, Namespaces: namespaces, Migrations: []*configv1.Migration{{
			Namespace: "orders", From: "src", To: "dst", Id: "m1", Phase: phase, ReadPercent: readPercent,
		}}})
	}
	holds := func(store kv.Store, key, version, value string) {
		t.Helper()
		it, err := store.Get(ctx, "orders", key)
		if err != nil || it.Version != version || string(it.Value) != value {
			t.Fatalf("store holds %s = %q v%s (%v), want %q v%s", key, it.Value, it.Version, err, value, version)
		}
	}
	absent := func(store kv.Store, key string) {
		t.Helper()
		if it, err := store.Get(ctx, "orders", key); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("store holds %s = %q (%v), want it absent", key, it.Value, err)
		}
	}

	before := c.put("k0", `{"n":0}`)
	if err := apply(configv1.Migration_SHADOW_WRITE, 0); err != nil {
		t.Fatal(err)
	}
	v1 := c.put("k1", `{"n":1}`, "content-type", "application/json")
	holds(srcKV, "k1", v1, `{"n":1}`)
	holds(dstKV, "k1", v1, `{"n":1}`) // the copy has the primary's version
	absent(dstKV, "k0")               // written before the migration: the backfill's job
	expect(t, "DELETE k1", c.do("DELETE", "/k1", nil), 204, "")
	absent(srcKV, "k1")
	absent(dstKV, "k1")
	r := c.do("POST", "/_batch", []byte(`{"ops":[{"op":"put","key":"k2","value":{"n":2}},{"op":"delete","key":"k0"}]}`))
	expect(t, "batch", r, 200, "")
	var res struct{ Versions []string }
	r.json(t, &res)
	if len(res.Versions) != 2 || res.Versions[0] == "" || res.Versions[1] != "" {
		t.Fatalf("batch versions %q, want the put's version and an empty one for the delete", res.Versions)
	}
	holds(dstKV, "k2", res.Versions[0], `{"n":2}`)
	absent(srcKV, "k0")
	// The delete left a tombstone on the shadow: a backfill copy of the old
	// k0, arriving late, is not applied.
	if applied, err := dstKV.PutVersion(ctx, "orders", kv.Item{Key: "k0", Value: []byte(`{"n":0}`), Version: before}); err != nil || applied {
		t.Fatalf("late copy of a deleted key: applied %v, %v; want refused by the tombstone", applied, err)
	}

	// Shadow reads: an injected divergence on the target is found.
	if err := apply(configv1.Migration_SHADOW_READ, 100); err != nil {
		t.Fatal(err)
	}
	c.put("k3", `{"n":3}`)
	if _, err := dstKV.Put(ctx, "orders", kv.PutOp{Key: "k3", Value: []byte(`{"n":"diverged"}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var got *configv1.MigrationCounters
	for {
		expect(t, "GET k2", c.do("GET", "/k2", nil), 200, "")
		expect(t, "GET k3", c.do("GET", "/k3", nil), 200, "")
		got = st.server.MigrationReport("n1").GetMigrations()[0]
		if got.GetMismatches() > 0 && got.GetReadsCompared() >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.GetMigrationId() != "m1" || got.GetPhase() != configv1.Migration_SHADOW_READ || !slices.Equal(got.GetMismatchKeys(), []string{"k3"}) {
		t.Fatalf("report %v: want migration m1 in SHADOW_READ with mismatching key k3 only", got)
	}
	if got.GetShadowWrites() < 4 || got.GetShadowWriteFailures() != 0 {
		t.Fatalf("report %v: want the copies counted and no failures", got)
	}
	t.Logf("shadow reads: %d compared, %d mismatched", got.GetReadsCompared(), got.GetMismatches())

	// Promote: the target answers, the source still gets copies.
	if err := apply(configv1.Migration_PROMOTED, 0); err != nil {
		t.Fatal(err)
	}
	if r := c.do("GET", "/k3", nil); string(r.body) != `{"n":"diverged"}` {
		t.Fatalf("GET k3 after promote = %s, want the target's value", r.body)
	}
	v4 := c.put("k4", `{"n":4}`)
	holds(dstKV, "k4", v4, `{"n":4}`)
	holds(srcKV, "k4", v4, `{"n":4}`)

	// A stale phase (a node fed an old config) is refused; the node stays.
	if err := apply(configv1.Migration_SHADOW_READ, 100); err == nil {
		t.Fatal("going back from PROMOTED to SHADOW_READ was accepted")
	}
	if r := c.do("GET", "/k3", nil); string(r.body) != `{"n":"diverged"}` {
		t.Fatalf("GET k3 after a refused stale phase = %s, want the target's value still", r.body)
	}

	// Abort returns to the source, where every write since the start is.
	if err := apply(configv1.Migration_ABORTED, 0); err != nil {
		t.Fatal(err)
	}
	if r := c.do("GET", "/k4", nil); r.status != 200 || string(r.body) != `{"n":4}` {
		t.Fatalf("GET k4 after abort = %d %s, want the copy the source kept", r.status, r.body)
	}
	v5 := c.put("k5", `{"n":5}`)
	holds(srcKV, "k5", v5, `{"n":5}`)
	absent(dstKV, "k5")
	if err := apply(configv1.Migration_SHADOW_WRITE, 0); err == nil {
		t.Fatal("a phase after ABORTED was accepted for the same migration id")
	}
}
