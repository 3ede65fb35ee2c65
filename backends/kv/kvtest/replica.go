package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

// replicaTests check kv.Replica, the contract of a store taking part in a
// migration. Choices the suite pins down where kv.Replica's docs are silent:
//   - A copy keeps the version it was given exactly, and a later Put of
//     the key gets a greater one (also when the copied version is ahead of
//     the store's clock).
//   - DeleteVersion of an absent key applies: it records the tombstone.
//   - A copy that applies clears the key's older tombstone.
//   - A malformed version (not a canonical decimal that fits an int64)
//     fails with kv.ErrInvalidArgument and writes nothing.
//   - Within one store, a Put after DeleteVersioned gets a greater version
//     than the delete's when the store's clock issued the key's versions.
var replicaTests = []struct {
	name string
	fn   func(t *testing.T, c *client)
}{
	{"ReplicaPutVersionKeepsItemAndItsVersion", testReplicaPutVersion},
	{"ReplicaVersionsCompareAsNumbers", testReplicaNumericOrder},
	{"ReplicaConcurrentCopiesLeaveTheHighestVersion", testReplicaConcurrent},
	{"ReplicaTombstoneBlocksOlderCopiesOnly", testReplicaTombstone},
	{"ReplicaDeleteVersionedOrdersWritesAroundTheDelete", testReplicaDeleteVersioned},
	{"ReplicaBatchVersionedReportsDeleteVersions", testReplicaBatchVersioned},
	{"ReplicaCopyExpiresAtItsExpiry", testReplicaTTL},
	{"ReplicaNamespacesAreIsolated", testReplicaNamespaces},
	{"ReplicaDropTombstonesForgetsOnlyTheNamespace", testReplicaDropTombstones},
	{"ReplicaMalformedVersionsAreRefused", testReplicaMalformed},
	{"ReplicaCancelledContextFails", testReplicaCancelled},
	{"ReplicaReplaceVersionRepairsOnlyAnUnchangedKey", testReplicaReplaceVersion},
}

// testReplicaReplaceVersion: a repair replaces a diverged value whatever
// the order of the versions, but only while the key still holds the
// version the repair saw; a copy newer than the repaired version still
// applies afterwards.
func testReplicaReplaceVersion(t *testing.T, c *client) {
	wantApplied(t, "copy at 500", c.copyPut("k", "500"), true)
	it := kv.Item{Key: "k", Value: []byte("repaired"), ContentType: "text/plain", Version: "100"}
	replace := func(ifVersion string) bool {
		t.Helper()
		applied, err := c.r.ReplaceVersion(c.ctx, c.ns, it, ifVersion)
		if err != nil {
			t.Fatalf("ReplaceVersion(if %s): %v", ifVersion, err)
		}
		return applied
	}
	wantApplied(t, "replace while the key holds another version", replace("499"), false)
	c.wantCopy("k", "500")
	wantApplied(t, "replace at an older version than the live one", replace("500"), true)
	c.wantValue("k", "repaired", "100")
	wantApplied(t, "copy at 101 after the repair", c.copyPut("k", "101"), true)
	c.wantCopy("k", "101")
	wantApplied(t, "replace of an absent key", func() bool {
		applied, err := c.r.ReplaceVersion(c.ctx, c.ns, kv.Item{Key: "absent", Value: []byte("x"), Version: "5"}, "4")
		if err != nil {
			t.Fatal(err)
		}
		return applied
	}(), false)
	if _, err := c.r.ReplaceVersion(c.ctx, c.ns, it, "x1"); !errors.Is(err, kv.ErrInvalidArgument) {
		t.Fatalf("ReplaceVersion with a malformed ifVersion = %v, want ErrInvalidArgument", err)
	}
}

// copyItem applies it with PutVersion and returns whether it applied.
func (c *client) copyItem(it kv.Item) bool {
	c.t.Helper()
	applied, err := c.r.PutVersion(c.ctx, c.ns, it)
	if err != nil {
		c.t.Fatalf("PutVersion(%q at %s): unexpected error: %v", it.Key, it.Version, err)
	}
	return applied
}

// copyPut copies a text value at version; the value names the version so
// that a read shows which copy won.
func (c *client) copyPut(key, version string) bool {
	c.t.Helper()
	return c.copyItem(kv.Item{Key: key, Value: []byte("v" + version), ContentType: "text/plain", Version: version})
}

// copyDelete applies DeleteVersion and returns whether it applied.
func (c *client) copyDelete(key, version string) bool {
	c.t.Helper()
	applied, err := c.r.DeleteVersion(c.ctx, c.ns, key, version)
	if err != nil {
		c.t.Fatalf("DeleteVersion(%q at %s): unexpected error: %v", key, version, err)
	}
	return applied
}

// wantApplied fails unless a copy's applied result is want.
func wantApplied(t *testing.T, what string, got, want bool) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: applied = %v, want %v", what, got, want)
	}
}

// wantCopy fails unless key holds the value copyPut wrote at version.
func (c *client) wantCopy(key, version string) {
	c.t.Helper()
	c.wantValue(key, "v"+version, version)
}

// other returns a client of the same store in a fresh namespace.
func (c *client) other() *client {
	return &client{t: c.t, ctx: c.ctx, s: c.s, r: c.r, ns: Namespace(c.t)}
}

// addVersion returns the decimal version v+d.
func addVersion(v string, d int64) string {
	x, ok := new(big.Int).SetString(v, 10)
	if !ok {
		panic(fmt.Sprintf("addVersion(%q): not a decimal", v))
	}
	return x.Add(x, big.NewInt(d)).String()
}

// clockVersion is a version as a writer whose clock is d ahead of ours
// issues it now.
func clockVersion(d time.Duration) string {
	return strconv.FormatInt(time.Now().Add(d).UnixNano(), 10)
}

func testReplicaPutVersion(t *testing.T, c *client) {
	expires := time.Now().Add(time.Hour)
	items := []kv.Item{
		{Key: "json", Value: []byte(`{"a":1}`), ContentType: "application/json", Version: "1000"},
		{Key: "ttl", Value: []byte{0, 1, 2}, ContentType: "application/octet-stream", Version: "2000", ExpiresAt: expires},
		{Key: "empty", Value: nil, ContentType: "", Version: "0"},
	}
	for _, it := range items {
		wantApplied(t, fmt.Sprintf("PutVersion(%q at %s) of an absent key", it.Key, it.Version), c.copyItem(it), true)
	}
	check := func(how string, got kv.Item, want kv.Item) {
		t.Helper()
		if got.Key != want.Key || !bytes.Equal(got.Value, want.Value) || got.Value == nil || got.ContentType != want.ContentType ||
			got.Version != want.Version || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("%s after PutVersion = {%q %q %q %q %v}, want the copy {%q %q %q %q %v} (value non-nil)", how,
				got.Key, got.Value, got.ContentType, got.Version, got.ExpiresAt,
				want.Key, want.Value, want.ContentType, want.Version, want.ExpiresAt)
		}
	}
	for _, it := range items {
		check("Get", c.get(it.Key), it)
	}
	scanned := c.scan(kv.ScanQuery{Limit: 10}).Items // byte order: empty, json, ttl
	multi, err := c.s.MultiGet(c.ctx, c.ns, []string{"empty", "json", "ttl"})
	if err != nil {
		t.Fatalf("MultiGet: %v", err)
	}
	if len(scanned) != 3 || len(multi) != 3 {
		t.Fatalf("Scan found %d and MultiGet %d of the 3 copies", len(scanned), len(multi))
	}
	for i, it := range []kv.Item{items[2], items[0], items[1]} {
		check("Scan", scanned[i], it)
		check("MultiGet", multi[i], it)
	}

	// A copy arriving twice, or an older copy, changes nothing.
	wantApplied(t, "the same copy again", c.copyItem(kv.Item{Key: "json", Value: []byte("dup"), Version: "1000"}), false)
	wantApplied(t, "an older copy", c.copyItem(kv.Item{Key: "json", Value: []byte("old"), Version: "999"}), false)
	check("Get", c.get("json"), items[0])
	// A newer copy replaces everything, the expiry too.
	wantApplied(t, "a newer copy", c.copyItem(kv.Item{Key: "ttl", Value: []byte("new"), ContentType: "text/x", Version: "2001"}), true)
	check("Get", c.get("ttl"), kv.Item{Key: "ttl", Value: []byte("new"), ContentType: "text/x", Version: "2001"})

	// A Put after a copy gets a greater version, even when the copy's
	// version came from a clock an hour ahead of the store's.
	ahead := clockVersion(time.Hour)
	wantApplied(t, "a copy at a version ahead of the clock", c.copyPut("json", ahead), true)
	v := c.put("json", "regular")
	wantGreater(t, "Put after a copy ahead of the clock", ahead, v)
	// A regular write is compared like a copy.
	wantApplied(t, "a copy older than a regular Put", c.copyPut("json", ahead), false)
	c.wantValue("json", "regular", v)
	next := addVersion(v, 1)
	wantApplied(t, "a copy one above a regular Put", c.copyPut("json", next), true)
	c.wantCopy("json", next)
}

// Numbers of different lengths order differently as strings: "9" > "10".
func testReplicaNumericOrder(t *testing.T, c *client) {
	for _, pair := range [][2]string{{"9", "10"}, {"99", "100"}, {"999999999999999999", "1000000000000000000"}} {
		lo, hi := pair[0], pair[1]
		k := "put-" + hi
		wantApplied(t, "PutVersion "+hi, c.copyPut(k, hi), true)
		wantApplied(t, fmt.Sprintf("PutVersion %s over %s", lo, hi), c.copyPut(k, lo), false)
		c.wantCopy(k, hi)
		wantApplied(t, fmt.Sprintf("DeleteVersion %s over %s", lo, hi), c.copyDelete(k, lo), false)
		c.wantCopy(k, hi)

		k = "up-" + hi
		wantApplied(t, "PutVersion "+lo, c.copyPut(k, lo), true)
		wantApplied(t, fmt.Sprintf("PutVersion %s over %s", hi, lo), c.copyPut(k, hi), true)
		c.wantCopy(k, hi)

		k = "tomb-" + hi
		wantApplied(t, "DeleteVersion "+hi+" of an absent key", c.copyDelete(k, hi), true)
		wantApplied(t, fmt.Sprintf("PutVersion %s over the tombstone %s", lo, hi), c.copyPut(k, lo), false)
		c.wantNotFound(k)

		k = "del-" + hi
		wantApplied(t, "PutVersion "+lo, c.copyPut(k, lo), true)
		wantApplied(t, fmt.Sprintf("DeleteVersion %s over %s", hi, lo), c.copyDelete(k, hi), true)
		c.wantNotFound(k)
	}
}

// replicaOp is one copy of the concurrency test.
type replicaOp struct {
	key     string
	version int64
	delete  bool
}

func testReplicaConcurrent(t *testing.T, c *client) {
	// Versions cross digit-count boundaries (3 ... 1396) so that any
	// comparison as strings picks the wrong winner.
	version := func(i int) int64 { return 3 + 7*int64(i) }
	var ops []replicaOp
	for i := range 200 {
		ops = append(ops, replicaOp{key: "puts", version: version(i)})
	}
	for i := range 100 {
		// The highest op (i = 99) is a put on one key, a delete on the other.
		ops = append(ops,
			replicaOp{key: "put-wins", version: version(i), delete: i%3 == 1},
			replicaOp{key: "delete-wins", version: version(i), delete: i%3 == 0})
	}
	rand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })

	applied := make([]bool, len(ops))
	errs := make([]error, len(ops))
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				op, v := ops[i], strconv.FormatInt(ops[i].version, 10)
				if op.delete {
					applied[i], errs[i] = c.r.DeleteVersion(c.ctx, c.ns, op.key, v)
				} else {
					applied[i], errs[i] = c.r.PutVersion(c.ctx, c.ns, kv.Item{Key: op.key, Value: []byte("v" + v), ContentType: "text/plain", Version: v})
				}
			}
		})
	}
	for i := range ops {
		next <- i
	}
	close(next)
	wg.Wait()

	highest := map[string]int64{"puts": version(199), "put-wins": version(99), "delete-wins": version(99)}
	count := map[string]int{}
	for i, op := range ops {
		if errs[i] != nil {
			t.Fatalf("copy %+v: %v", op, errs[i])
		}
		if applied[i] {
			count[op.key]++
		}
		if op.version == highest[op.key] && !applied[i] {
			t.Errorf("the highest copy of %q (%+v) was not applied; nothing can be newer", op.key, op)
		}
	}
	t.Logf("applied copies per key (the rest arrived after a newer one): %v", count)
	c.wantCopy("puts", "1396")
	c.wantCopy("put-wins", strconv.FormatInt(version(99), 10))
	c.wantNotFound("delete-wins")
	// The winning delete left its tombstone.
	wantApplied(t, "a copy older than the winning delete", c.copyPut("delete-wins", strconv.FormatInt(version(98), 10)), false)
	c.wantNotFound("delete-wins")
}

func testReplicaTombstone(t *testing.T, c *client) {
	wantApplied(t, "PutVersion 50", c.copyPut("k", "50"), true)
	wantApplied(t, "DeleteVersion 100 over 50", c.copyDelete("k", "100"), true)
	c.wantNotFound("k")
	wantApplied(t, "PutVersion 99 over the tombstone 100", c.copyPut("k", "99"), false)
	wantApplied(t, "PutVersion 100 over the tombstone 100", c.copyPut("k", "100"), false)
	c.wantNotFound("k")
	wantApplied(t, "DeleteVersion 100 over the tombstone 100", c.copyDelete("k", "100"), false)
	wantApplied(t, "DeleteVersion 99 over the tombstone 100", c.copyDelete("k", "99"), false)
	wantApplied(t, "PutVersion 101 over the tombstone 100", c.copyPut("k", "101"), true)
	c.wantCopy("k", "101")
	wantApplied(t, "DeleteVersion 101 over the live 101", c.copyDelete("k", "101"), false)
	c.wantCopy("k", "101")
	// The applied copy 101 cleared the tombstone 100: once a plain Delete
	// (which leaves no tombstone) removes the row, 100 applies.
	c.del("k")
	wantApplied(t, "PutVersion 100 after the tombstone was cleared", c.copyPut("k", "100"), true)
	c.wantCopy("k", "100")

	// A tombstone of a key that never existed.
	wantApplied(t, "DeleteVersion 20 of an absent key", c.copyDelete("never", "20"), true)
	wantApplied(t, "PutVersion 19 over the tombstone 20", c.copyPut("never", "19"), false)
	wantApplied(t, "DeleteVersion 21 over the tombstone 20", c.copyDelete("never", "21"), true)
	wantApplied(t, "PutVersion 20 over the raised tombstone 21", c.copyPut("never", "20"), false)
	c.wantNotFound("never")
	wantApplied(t, "PutVersion 22 over the tombstone 21", c.copyPut("never", "22"), true)
	c.wantCopy("never", "22")

	// A delete older than the live version changes nothing.
	v := c.put("live", "x")
	wantApplied(t, "DeleteVersion older than a regular Put", c.copyDelete("live", addVersion(v, -1)), false)
	c.wantValue("live", "x", v)
	wantApplied(t, "PutVersion older than the refused delete", c.copyPut("live", addVersion(v, -2)), false)
	c.wantValue("live", "x", v)
	wantApplied(t, "DeleteVersion newer than a regular Put", c.copyDelete("live", addVersion(v, 1)), true)
	c.wantNotFound("live")
}

func testReplicaDeleteVersioned(t *testing.T, c *client) {
	target := c.other()
	deleteVersioned := func(key string, cond kv.Cond) string {
		t.Helper()
		d, err := c.r.DeleteVersioned(c.ctx, c.ns, key, cond)
		if err != nil {
			t.Fatalf("DeleteVersioned(%q, %+v): %v", key, cond, err)
		}
		checkVersionSyntax(t, d)
		return d
	}

	// The shadow-write flow: each write of the source is copied to the
	// target with the source's version; a late copy of the put loses.
	v1 := c.put("k", "one")
	wantApplied(t, "copy of the put", target.copyItem(kv.Item{Key: "k", Value: []byte("one"), ContentType: "text/plain", Version: v1}), true)
	d := deleteVersioned("k", kv.Cond{})
	wantGreater(t, "DeleteVersioned after Put", v1, d)
	c.wantNotFound("k")
	wantApplied(t, "copy of the delete", target.copyDelete("k", d), true)
	wantApplied(t, "late copy of the put", target.copyItem(kv.Item{Key: "k", Value: []byte("one"), Version: v1}), false)
	target.wantNotFound("k")
	v2 := c.put("k", "two")
	wantGreater(t, "Put after DeleteVersioned", d, v2)
	wantApplied(t, "copy of the re-create", target.copyItem(kv.Item{Key: "k", Value: []byte("two"), ContentType: "text/plain", Version: v2}), true)
	target.wantValue("k", "two", v2)

	// An absent key: the delete still has a version, below the next Put's.
	d = deleteVersioned("absent", kv.Cond{})
	wantGreater(t, "Put after DeleteVersioned of an absent key", d, c.put("absent", "x"))

	// Conditions hold as for Delete.
	for _, wrong := range []string{"1", "bad", addVersion(v2, 1)} {
		_, err := c.r.DeleteVersioned(c.ctx, c.ns, "k", kv.Cond{IfMatch: wrong})
		wantErr(t, fmt.Sprintf("DeleteVersioned IfMatch %q (current %q)", wrong, v2), err, kv.ErrVersionMismatch)
		c.wantValue("k", "two", v2)
	}
	_, err := c.r.DeleteVersioned(c.ctx, c.ns, "never", kv.Cond{IfMatch: "1"})
	wantErr(t, "DeleteVersioned IfMatch of an absent key", err, kv.ErrVersionMismatch)
	d = deleteVersioned("k", kv.Cond{IfMatch: v2})
	wantGreater(t, "DeleteVersioned IfMatch", v2, d)
	c.wantNotFound("k")

	// A last version ahead of the clock: the delete's is still greater.
	ahead := clockVersion(time.Hour)
	wantApplied(t, "copy ahead of the clock", c.copyPut("ahead", ahead), true)
	wantGreater(t, "DeleteVersioned of a key whose version is ahead of the clock", ahead, deleteVersioned("ahead", kv.Cond{}))
}

func testReplicaBatchVersioned(t *testing.T, c *client) {
	vOld := c.put("old", "x")
	vGone := c.put("gone", "x")
	vs, err := c.r.BatchVersioned(c.ctx, c.ns, []kv.Op{
		{Put: kv.PutOp{Key: "new", Value: []byte("N"), ContentType: "text/plain"}},
		{Delete: true, Put: kv.PutOp{Key: "gone"}},
		{Delete: true, Put: kv.PutOp{Key: "never-existed"}},
		{Put: kv.PutOp{Key: "old", Value: []byte("O"), Cond: kv.Cond{IfMatch: vOld}}},
		{Delete: true, Put: kv.PutOp{Key: "new"}},
		{Put: kv.PutOp{Key: "new", Value: []byte("again")}},
	})
	if err != nil {
		t.Fatalf("BatchVersioned: %v", err)
	}
	if len(vs) != 6 {
		t.Fatalf("BatchVersioned versions = %q, want 6", vs)
	}
	for _, v := range vs {
		checkVersionSyntax(t, v)
	}
	wantGreater(t, "batch delete of a live key", vGone, vs[1])
	wantGreater(t, "batch delete after a put of the key", vs[0], vs[4])
	wantGreater(t, "batch put after a delete of the key", vs[4], vs[5])
	c.wantNotFound("gone")
	c.wantNotFound("never-existed")
	c.wantValue("old", "O", vs[3])
	c.wantValue("new", "again", vs[5])

	vs, err = c.r.BatchVersioned(c.ctx, c.ns, []kv.Op{
		{Delete: true, Put: kv.PutOp{Key: "old"}},
		{Delete: true, Put: kv.PutOp{Key: "new", Cond: kv.Cond{IfMatch: "1"}}},
	})
	if vs != nil {
		t.Errorf("failed BatchVersioned returned versions %q, want nil", vs)
	}
	wantOpError(t, err, 1, kv.ErrVersionMismatch)
	c.wantValue("old", "O", "")
}

func testReplicaTTL(t *testing.T, c *client) {
	written := time.Now()
	wantApplied(t, "copy with an expiry", c.copyItem(kv.Item{Key: "k", Value: []byte("x"), Version: "7", ExpiresAt: written.Add(ttl)}), true)
	c.wantValue("k", "x", "7")
	c.waitExpired("k", written)
	wantApplied(t, "copy already expired", c.copyItem(kv.Item{Key: "past", Value: []byte("x"), Version: "8", ExpiresAt: written.Add(-time.Second)}), true)
	c.wantNotFound("past")
	wantApplied(t, "newer copy without expiry", c.copyItem(kv.Item{Key: "k", Value: []byte("y"), Version: "9"}), true)
	c.wantValue("k", "y", "9")
	if at := c.get("k").ExpiresAt; !at.IsZero() {
		t.Errorf("copy without expiry over an expired key has ExpiresAt %v, want zero", at)
	}
}

func testReplicaNamespaces(t *testing.T, c *client) {
	other := c.other()
	wantApplied(t, "DeleteVersion 100", c.copyDelete("tomb", "100"), true)
	wantApplied(t, "PutVersion 50 in another namespace than the tombstone", other.copyPut("tomb", "50"), true)
	other.wantCopy("tomb", "50")
	c.wantNotFound("tomb")

	wantApplied(t, "PutVersion 100", c.copyPut("live", "100"), true)
	wantApplied(t, "PutVersion 50 in another namespace than the live 100", other.copyPut("live", "50"), true)
	wantApplied(t, "DeleteVersion 60 in another namespace than the live 100", other.copyDelete("live", "60"), true)
	other.wantNotFound("live")
	c.wantCopy("live", "100")
}

func testReplicaDropTombstones(t *testing.T, c *client) {
	other := c.other()
	for _, k := range []string{"a", "b"} {
		wantApplied(t, "DeleteVersion 100 of "+k, c.copyDelete(k, "100"), true)
	}
	wantApplied(t, "PutVersion 100", c.copyPut("live", "100"), true)
	wantApplied(t, "DeleteVersion 100 in the other namespace", other.copyDelete("a", "100"), true)
	if err := c.r.DropTombstones(c.ctx, c.ns); err != nil {
		t.Fatalf("DropTombstones: %v", err)
	}
	for _, k := range []string{"a", "b"} {
		wantApplied(t, "PutVersion 50 of "+k+" after DropTombstones", c.copyPut(k, "50"), true)
		c.wantCopy(k, "50")
	}
	c.wantCopy("live", "100")
	wantApplied(t, "PutVersion 50 under a live 100 after DropTombstones", c.copyPut("live", "50"), false)
	wantApplied(t, "PutVersion 50 in the other namespace, whose tombstone stays", other.copyPut("a", "50"), false)
	other.wantNotFound("a")
	if err := other.r.DropTombstones(c.ctx, Namespace(t)); err != nil {
		t.Fatalf("DropTombstones of a namespace without tombstones: %v", err)
	}
}

func testReplicaMalformed(t *testing.T, c *client) {
	v := c.put("k", "x")
	for _, bad := range []string{"", "abc", "01", "+1", "-1", " 1", "1 ", "1.0", "1e3", "0x10", "99999999999999999999"} {
		_, err := c.r.PutVersion(c.ctx, c.ns, kv.Item{Key: "new", Value: []byte("x"), Version: bad})
		if !errors.Is(err, kv.ErrInvalidArgument) || errors.Is(err, kv.ErrUnavailable) {
			t.Errorf("PutVersion at version %q: error = %v, want kv.ErrInvalidArgument (and not unavailable)", bad, err)
		}
		_, err = c.r.DeleteVersion(c.ctx, c.ns, "k", bad)
		if !errors.Is(err, kv.ErrInvalidArgument) || errors.Is(err, kv.ErrUnavailable) {
			t.Errorf("DeleteVersion at version %q: error = %v, want kv.ErrInvalidArgument (and not unavailable)", bad, err)
		}
	}
	c.wantNotFound("new")
	c.wantValue("k", "x", v)
}

func testReplicaCancelled(t *testing.T, c *client) {
	v := c.put("k", "x")
	wantApplied(t, "DeleteVersion 100", c.copyDelete("tomb", "100"), true)
	cancelled, cancel := context.WithCancel(c.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(c.ctx, time.Now().Add(-time.Second))
	defer cancel2()
	ahead := clockVersion(time.Hour)
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{
		{cancelled, context.Canceled},
		{expired, context.DeadlineExceeded},
	} {
		calls := []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"PutVersion", func(ctx context.Context) error {
				_, err := c.r.PutVersion(ctx, c.ns, kv.Item{Key: "new", Value: []byte("x"), Version: ahead})
				return err
			}},
			{"DeleteVersion", func(ctx context.Context) error { _, err := c.r.DeleteVersion(ctx, c.ns, "k", ahead); return err }},
			{"DeleteVersioned", func(ctx context.Context) error {
				_, err := c.r.DeleteVersioned(ctx, c.ns, "k", kv.Cond{})
				return err
			}},
			{"BatchVersioned", func(ctx context.Context) error {
				_, err := c.r.BatchVersioned(ctx, c.ns, []kv.Op{{Delete: true, Put: kv.PutOp{Key: "k"}}})
				return err
			}},
			{"DropTombstones", func(ctx context.Context) error { return c.r.DropTombstones(ctx, c.ns) }},
		}
		for _, call := range calls {
			err := call.call(tc.ctx)
			if !errors.Is(err, kv.ErrUnavailable) || !errors.Is(err, tc.want) {
				t.Errorf("%s with %v context: error = %v, want one matching both kv.ErrUnavailable and %v", call.name, tc.want, err, tc.want)
			}
		}
	}
	c.wantValue("k", "x", v)
	c.wantNotFound("new")
	wantApplied(t, "PutVersion 50 under the tombstone a cancelled DropTombstones kept", c.copyPut("tomb", "50"), false)
}
