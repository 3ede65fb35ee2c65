// Package kvtest is the conformance suite every kv.Store driver runs against
// a real server, in the manner of Dapr's components-contrib: a driver's test
// calls Run with a function that opens a store, and the suite checks the
// behaviour the data API promises.
//
// Choices the suite pins down where kv.Store's docs are silent:
//   - A value written empty (nil or zero length) reads back as a non-nil,
//     zero-length slice, so the API renders it as "" and not null.
//   - MultiGet returns a key requested twice once, at its first position.
//   - Ops of a batch run in order and see the effects of earlier ops.
//   - A call with a cancelled or expired context fails with an error that
//     matches both kv.ErrUnavailable and the context's error (errors.Is), and
//     writes nothing.
//
// When the store under test implements kv.Replica, Run also checks that
// contract (see replica.go).
package kvtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
)

// Opener returns a store for one subtest. It is called once per subtest,
// possibly concurrently; the store it returns may be shared between calls.
// The suite never closes it: the opener arranges that with t.Cleanup.
type Opener func(t *testing.T) kv.Store

// testTimeout bounds each subtest so that a hung driver fails instead of
// stalling the whole run.
const testTimeout = 30 * time.Second

// Run runs the conformance suite. Subtests run in parallel, each in its own
// namespace, so no state leaks between them.
func Run(t *testing.T, open Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c *client)
	}{
		{"PutThenGetReturnsValueContentTypeAndVersion", testPutGet},
		{"OverwriteReplacesValueAndContentType", testOverwrite},
		{"VersionsAreDecimalAndGrowOnEveryWrite", testVersionsGrow},
		{"GetOfAbsentKeyIsNotFound", testGetAbsent},
		{"DeleteRemovesKey", testDelete},
		{"DeleteOfAbsentKeySucceeds", testDeleteAbsent},
		{"DeleteIfMatch", testDeleteIfMatch},
		{"PutIfMatch", testPutIfMatch},
		{"PutIfNoneMatch", testPutIfNoneMatch},
		{"ConcurrentIfMatchPutsHaveExactlyOneWinner", testCASRace},
		{"ConcurrentCreateOnlyPutsHaveExactlyOneWinner", testCreateRace},
		{"ConcurrentPutsGetDistinctVersions", testConcurrentPuts},
		{"TTLKeyExpires", testTTLExpires},
		{"OverwriteWithoutTTLClearsExpiry", testTTLCleared},
		{"ScanReturnsKeysInByteOrder", testScanOrder},
		{"ScanBounds", testScanBounds},
		{"ScanPagingCoversEveryKeyOnce", testScanPaging},
		{"ScanPageStopsAtMaxBytes", testScanMaxBytes},
		{"EmptyValueRoundTrips", testEmptyValue},
		{"LargeValueRoundTrips", testLargeValue},
		{"MultiGetReturnsLiveItemsInRequestOrder", testMultiGet},
		{"BatchAppliesAllOps", testBatchApplies},
		{"BatchOpsSeeEarlierOps", testBatchSequential},
		{"BatchIsAllOrNothingOnVersionMismatch", testBatchMismatch},
		{"BatchCreateOnlyOnExistingKeyFails", testBatchExists},
		{"NamespacesAreIsolated", testNamespaces},
		{"CancelledContextFails", testCancelled},
	}
	// One store opened up front tells whether the driver is a Replica; the
	// opener may wrap a Replica in a store that is not (a cache).
	if _, ok := open(t).(kv.Replica); ok {
		tests = append(tests, replicaTests...)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			c := &client{t: t, ctx: ctx, s: open(t), ns: Namespace(t)}
			c.r, _ = c.s.(kv.Replica)
			tc.fn(t, c)
		})
	}
}

// Namespace returns a fresh namespace name so that concurrent tests and
// repeated runs against one database never see each other's keys.
func Namespace(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random namespace: %v", err)
	}
	return "kvtest-" + hex.EncodeToString(b[:])
}

// client wraps a store with the subtest's context and namespace and with
// helpers that fail the test on unexpected errors.
type client struct {
	t   *testing.T
	ctx context.Context
	s   kv.Store
	r   kv.Replica // s as a Replica, nil when it is not one
	ns  string
}

func (c *client) put(key, value string) string {
	c.t.Helper()
	return c.putOp(kv.PutOp{Key: key, Value: []byte(value), ContentType: "text/plain"})
}

func (c *client) putOp(op kv.PutOp) string {
	c.t.Helper()
	v, err := c.s.Put(c.ctx, c.ns, op)
	if err != nil {
		c.t.Fatalf("Put(%q): unexpected error: %v", op.Key, err)
	}
	checkVersionSyntax(c.t, v)
	return v
}

func (c *client) get(key string) kv.Item {
	c.t.Helper()
	it, err := c.s.Get(c.ctx, c.ns, key)
	if err != nil {
		c.t.Fatalf("Get(%q): unexpected error: %v", key, err)
	}
	return it
}

func (c *client) del(key string) {
	c.t.Helper()
	if err := c.s.Delete(c.ctx, c.ns, key, kv.Cond{}); err != nil {
		c.t.Fatalf("Delete(%q): unexpected error: %v", key, err)
	}
}

func (c *client) scan(q kv.ScanQuery) kv.Page {
	c.t.Helper()
	p, err := c.s.Scan(c.ctx, c.ns, q)
	if err != nil {
		c.t.Fatalf("Scan(%+v): unexpected error: %v", q, err)
	}
	return p
}

// scanAll pages through q with its Limit and returns every key seen.
func (c *client) scanAll(q kv.ScanQuery) []string {
	c.t.Helper()
	var keys []string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			c.t.Fatalf("Scan(%+v): no end after 10000 pages", q)
		}
		p := c.scan(q)
		if p.More && len(p.Items) == 0 {
			c.t.Fatalf("Scan(%+v): empty page with More set", q)
		}
		for _, it := range p.Items {
			keys = append(keys, it.Key)
		}
		if !p.More {
			return keys
		}
		q.After = p.Items[len(p.Items)-1].Key
	}
}

// wantNotFound fails unless key is absent.
func (c *client) wantNotFound(key string) {
	c.t.Helper()
	it, err := c.s.Get(c.ctx, c.ns, key)
	if !errors.Is(err, kv.ErrNotFound) {
		c.t.Fatalf("Get(%q) = (value %q, version %q), %v; want kv.ErrNotFound", key, it.Value, it.Version, err)
	}
}

// wantValue fails unless key holds value at version (any version if empty).
func (c *client) wantValue(key, value, version string) {
	c.t.Helper()
	it := c.get(key)
	if string(it.Value) != value {
		c.t.Errorf("Get(%q).Value = %q, want %q", key, it.Value, value)
	}
	if version != "" && it.Version != version {
		c.t.Errorf("Get(%q).Version = %q, want %q (unchanged)", key, it.Version, version)
	}
}

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

// checkVersionSyntax fails unless v is a canonical non-negative decimal.
func checkVersionSyntax(t *testing.T, v string) {
	t.Helper()
	if v == "" || (len(v) > 1 && v[0] == '0') || strings.TrimLeft(v, "0123456789") != "" {
		t.Fatalf("version %q is not a canonical decimal number", v)
	}
}

// versionLess compares two decimal versions as numbers, whatever their size.
func versionLess(a, b string) bool {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	return okx && oky && x.Cmp(y) < 0
}

// wantGreater fails unless version next is greater than prev.
func wantGreater(t *testing.T, what, prev, next string) {
	t.Helper()
	if !versionLess(prev, next) {
		t.Fatalf("%s: version %q is not greater than the previous version %q", what, next, prev)
	}
}

func testPutGet(t *testing.T, c *client) {
	v := c.putOp(kv.PutOp{Key: "k", Value: []byte(`{"a":1}`), ContentType: "application/json"})
	it := c.get("k")
	if it.Key != "k" || string(it.Value) != `{"a":1}` || it.ContentType != "application/json" || it.Version != v {
		t.Fatalf("Get = {Key:%q Value:%q ContentType:%q Version:%q}, want {k {\"a\":1} application/json %s}",
			it.Key, it.Value, it.ContentType, it.Version, v)
	}
	if !it.ExpiresAt.IsZero() {
		t.Errorf("Get.ExpiresAt = %v for a key without TTL, want zero", it.ExpiresAt)
	}
}

func testOverwrite(t *testing.T, c *client) {
	c.putOp(kv.PutOp{Key: "k", Value: []byte("one"), ContentType: "text/plain"})
	v := c.putOp(kv.PutOp{Key: "k", Value: []byte{0, 1, 2}, ContentType: "application/octet-stream"})
	it := c.get("k")
	if !bytes.Equal(it.Value, []byte{0, 1, 2}) || it.ContentType != "application/octet-stream" || it.Version != v {
		t.Fatalf("after overwrite Get = {Value:%q ContentType:%q Version:%q}, want {\"\\x00\\x01\\x02\" application/octet-stream %s}",
			it.Value, it.ContentType, it.Version, v)
	}
}

func testVersionsGrow(t *testing.T, c *client) {
	v1 := c.put("k", "a")
	v2 := c.put("k", "b")
	wantGreater(t, "overwrite", v1, v2)
	v3 := c.put("k", "b")
	wantGreater(t, "overwrite with the same value", v2, v3)
	v4 := c.putOp(kv.PutOp{Key: "k", Value: []byte("b"), TTL: time.Hour})
	wantGreater(t, "overwrite with TTL", v3, v4)
	v5, err := c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "k", Value: []byte("c"), Cond: kv.Cond{IfMatch: v4}})
	if err != nil {
		t.Fatalf("Put IfMatch current version: %v", err)
	}
	wantGreater(t, "conditional overwrite", v4, v5)
	c.del("k")
	v6 := c.put("k", "a")
	wantGreater(t, "delete and re-create", v5, v6)
	vs, err := c.s.Batch(c.ctx, c.ns, []kv.Op{{Put: kv.PutOp{Key: "k", Value: []byte("d")}}})
	if err != nil {
		t.Fatalf("Batch put: %v", err)
	}
	wantGreater(t, "batch put", v6, vs[0])
	if got := c.get("k").Version; got != vs[0] {
		t.Errorf("Get version = %q, want the batch's %q", got, vs[0])
	}
}

func testGetAbsent(t *testing.T, c *client) {
	c.wantNotFound("absent")
	c.put("present", "x")
	c.wantNotFound("presen")
	c.wantNotFound("present/")
}

func testDelete(t *testing.T, c *client) {
	c.put("k", "x")
	c.put("k2", "y")
	c.del("k")
	c.wantNotFound("k")
	c.wantValue("k2", "y", "")
}

func testDeleteAbsent(t *testing.T, c *client) {
	c.del("never-written")
	c.put("k", "x")
	c.del("k")
	c.del("k") // twice: still not an error
}

func testDeleteIfMatch(t *testing.T, c *client) {
	err := c.s.Delete(c.ctx, c.ns, "absent", kv.Cond{IfMatch: "1"})
	wantErr(t, "Delete IfMatch of absent key", err, kv.ErrVersionMismatch)

	v := c.put("k", "x")
	c.put("other", "y")
	for _, wrong := range []string{"1", "not-a-version", "0" + v} {
		err = c.s.Delete(c.ctx, c.ns, "k", kv.Cond{IfMatch: wrong})
		wantErr(t, fmt.Sprintf("Delete IfMatch %q (current %q)", wrong, v), err, kv.ErrVersionMismatch)
		c.wantValue("k", "x", v)
	}
	if err := c.s.Delete(c.ctx, c.ns, "k", kv.Cond{IfMatch: v}); err != nil {
		t.Fatalf("Delete IfMatch current version: %v", err)
	}
	c.wantNotFound("k")
	err = c.s.Delete(c.ctx, c.ns, "k", kv.Cond{IfMatch: v})
	wantErr(t, "Delete IfMatch after the key was deleted", err, kv.ErrVersionMismatch)
}

func testPutIfMatch(t *testing.T, c *client) {
	_, err := c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "absent", Value: []byte("x"), Cond: kv.Cond{IfMatch: "1"}})
	wantErr(t, "Put IfMatch on absent key", err, kv.ErrVersionMismatch)
	c.wantNotFound("absent")

	v1 := c.put("k", "one")
	for _, wrong := range []string{"1", "abc", "-1", "0" + v1, " " + v1} {
		_, err = c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "k", Value: []byte("bad"), Cond: kv.Cond{IfMatch: wrong}})
		wantErr(t, fmt.Sprintf("Put IfMatch %q (current %q)", wrong, v1), err, kv.ErrVersionMismatch)
		c.wantValue("k", "one", v1)
	}
	v2, err := c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "k", Value: []byte("two"), ContentType: "text/x", Cond: kv.Cond{IfMatch: v1}})
	if err != nil {
		t.Fatalf("Put IfMatch current version: %v", err)
	}
	wantGreater(t, "Put IfMatch", v1, v2)
	c.wantValue("k", "two", v2)
	if ct := c.get("k").ContentType; ct != "text/x" {
		t.Errorf("content type after Put IfMatch = %q, want text/x", ct)
	}
	_, err = c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "k", Value: []byte("stale"), Cond: kv.Cond{IfMatch: v1}})
	wantErr(t, "Put IfMatch with the superseded version", err, kv.ErrVersionMismatch)
	c.wantValue("k", "two", v2)
}

func testPutIfNoneMatch(t *testing.T, c *client) {
	create := func(key, value string) (string, error) {
		return c.s.Put(c.ctx, c.ns, kv.PutOp{Key: key, Value: []byte(value), Cond: kv.Cond{IfNoneMatch: true}})
	}
	v1, err := create("k", "one")
	if err != nil {
		t.Fatalf("Put IfNoneMatch on absent key: %v", err)
	}
	c.wantValue("k", "one", v1)
	_, err = create("k", "two")
	wantErr(t, "Put IfNoneMatch on live key", err, kv.ErrExists)
	c.wantValue("k", "one", v1)

	c.del("k")
	v2, err := create("k", "three")
	if err != nil {
		t.Fatalf("Put IfNoneMatch after delete: %v", err)
	}
	wantGreater(t, "create after delete", v1, v2)
	c.wantValue("k", "three", v2)
}

// race runs fn on n goroutines released together and returns their results.
func race(n int, fn func(i int) (string, error)) ([]string, []error) {
	versions, errs := make([]string, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			versions[i], errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return versions, errs
}

const racers = 16

// oneWinner checks that exactly one racer succeeded and every other failed
// with loserErr, and returns the winner's index.
func oneWinner(t *testing.T, errs []error, loserErr error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both succeeded; exactly one may win", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loserErr):
			t.Fatalf("racer %d: error = %v, want %v", i, err, loserErr)
		}
	}
	if winner < 0 {
		t.Fatalf("no racer succeeded; exactly one must win")
	}
	return winner
}

func testCASRace(t *testing.T, c *client) {
	v0 := c.put("k", "initial")
	versions, errs := race(racers, func(i int) (string, error) {
		return c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "k", Value: fmt.Appendf(nil, "racer %d", i), Cond: kv.Cond{IfMatch: v0}})
	})
	w := oneWinner(t, errs, kv.ErrVersionMismatch)
	c.wantValue("k", fmt.Sprintf("racer %d", w), versions[w])
}

func testCreateRace(t *testing.T, c *client) {
	versions, errs := race(racers, func(i int) (string, error) {
		return c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "fresh", Value: fmt.Appendf(nil, "racer %d", i), Cond: kv.Cond{IfNoneMatch: true}})
	})
	w := oneWinner(t, errs, kv.ErrExists)
	c.wantValue("fresh", fmt.Sprintf("racer %d", w), versions[w])
}

func testConcurrentPuts(t *testing.T, c *client) {
	versions, errs := race(racers, func(i int) (string, error) {
		return c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "k", Value: fmt.Appendf(nil, "racer %d", i)})
	})
	latest, seen := "", map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: unconditional Put failed: %v", i, err)
		}
		if j, dup := seen[versions[i]]; dup {
			t.Fatalf("racers %d and %d both got version %q; every write needs its own", j, i, versions[i])
		}
		seen[versions[i]] = i
		if latest == "" || versionLess(latest, versions[i]) {
			latest = versions[i]
		}
	}
	c.wantValue("k", fmt.Sprintf("racer %d", seen[latest]), latest)
}

// ttl is short to keep the suite fast but long enough that a slow, -race
// build still reads the key before it expires.
const ttl = 700 * time.Millisecond

// waitExpired polls until key is gone and checks it did not go early.
func (c *client) waitExpired(key string, written time.Time) {
	c.t.Helper()
	deadline := time.Now().Add(ttl + 5*time.Second)
	for {
		_, err := c.s.Get(c.ctx, c.ns, key)
		if errors.Is(err, kv.ErrNotFound) {
			// A millisecond of slack: drivers use the wall clock, the test
			// the monotonic one.
			if early := time.Since(written); early < ttl-time.Millisecond {
				c.t.Fatalf("key %q expired %v after the write, before its TTL of %v", key, early, ttl)
			}
			return
		}
		if err != nil {
			c.t.Fatalf("Get(%q) while waiting for expiry: %v", key, err)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("key %q still readable %v after a write with TTL %v", key, time.Since(written), ttl)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func testTTLExpires(t *testing.T, c *client) {
	c.put("a", "stays")
	written := time.Now()
	v := c.putOp(kv.PutOp{Key: "b", Value: []byte("expires"), TTL: ttl})
	c.put("c", "stays")

	if elapsed := time.Since(written); elapsed < ttl/2 {
		it := c.get("b")
		if it.ExpiresAt.Before(written.Add(ttl-time.Millisecond)) || it.ExpiresAt.After(time.Now().Add(ttl+time.Second)) {
			t.Errorf("ExpiresAt = %v, want about %v", it.ExpiresAt, written.Add(ttl))
		}
		if keys := keysOf(c.scan(kv.ScanQuery{Limit: 10}).Items); !slices.Equal(keys, []string{"a", "b", "c"}) {
			t.Errorf("Scan before expiry = %q, want [a b c]", keys)
		}
	} else {
		t.Logf("machine too slow (%v) to check the key before its TTL", elapsed)
	}

	c.waitExpired("b", written)
	if keys := keysOf(c.scan(kv.ScanQuery{Limit: 10}).Items); !slices.Equal(keys, []string{"a", "c"}) {
		t.Errorf("Scan after expiry = %q, want [a c]", keys)
	}
	items, err := c.s.MultiGet(c.ctx, c.ns, []string{"a", "b", "c"})
	if err != nil {
		t.Fatalf("MultiGet: %v", err)
	}
	if keys := keysOf(items); !slices.Equal(keys, []string{"a", "c"}) {
		t.Errorf("MultiGet after expiry = %q, want [a c]", keys)
	}
	_, err = c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "b", Value: []byte("x"), Cond: kv.Cond{IfMatch: v}})
	wantErr(t, "Put IfMatch on expired key", err, kv.ErrVersionMismatch)
	err = c.s.Delete(c.ctx, c.ns, "b", kv.Cond{IfMatch: v})
	wantErr(t, "Delete IfMatch on expired key", err, kv.ErrVersionMismatch)
	v2, err := c.s.Put(c.ctx, c.ns, kv.PutOp{Key: "b", Value: []byte("again"), Cond: kv.Cond{IfNoneMatch: true}})
	if err != nil {
		t.Fatalf("Put IfNoneMatch on expired key: %v, want success", err)
	}
	wantGreater(t, "create over expired key", v, v2)
	c.wantValue("b", "again", v2)
	if at := c.get("b").ExpiresAt; !at.IsZero() {
		t.Errorf("re-created key without TTL has ExpiresAt %v, want zero", at)
	}
}

func testTTLCleared(t *testing.T, c *client) {
	written := time.Now()
	c.putOp(kv.PutOp{Key: "k", Value: []byte("short"), TTL: ttl})
	c.put("k", "forever")
	c.putOp(kv.PutOp{Key: "probe", Value: []byte("x"), TTL: ttl})
	c.waitExpired("probe", written)
	c.wantValue("k", "forever", "")
}

// scanKeys covers separators, percent signs, non-ASCII UTF-8, invalid UTF-8
// (bytes >= 0x80 alone), a NUL byte and all-0xff keys.
var scanKeys = []string{
	"a", "a/b", "a/b/c", "a%2Fb", "a%", "a b", "a\x00", "a\xff", "ab", "b", "B", "~",
	"ключ", "ключи", "日本", "日本語", "😀", "😀/x", "é", "\x80", "\xc3", "\xff", "\xff\xff", "z",
}

func (c *client) putScanKeys() []string {
	c.t.Helper()
	for _, k := range scanKeys {
		c.put(k, "v:"+k)
	}
	sorted := slices.Clone(scanKeys)
	sort.Strings(sorted) // byte order
	return sorted
}

func keysOf(items []kv.Item) []string {
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}

func testScanOrder(t *testing.T, c *client) {
	want := c.putScanKeys()
	p := c.scan(kv.ScanQuery{Limit: kv.MaxScanLimit})
	if got := keysOf(p.Items); !slices.Equal(got, want) {
		t.Fatalf("Scan keys =\n%q\nwant byte order\n%q", got, want)
	}
	if p.More {
		t.Errorf("Scan of every key: More = true, want false")
	}
	for _, it := range p.Items {
		if string(it.Value) != "v:"+it.Key || it.ContentType != "text/plain" {
			t.Errorf("Scan item %q: value %q content type %q, want %q text/plain", it.Key, it.Value, it.ContentType, "v:"+it.Key)
		}
		checkVersionSyntax(t, it.Version)
	}
}

// expect filters keys (in byte order) as q selects them.
func expect(keys []string, q kv.ScanQuery) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, q.Prefix) && k >= q.Start && (q.End == "" || k < q.End) && k > q.After {
			out = append(out, k)
		}
	}
	return out
}

func testScanBounds(t *testing.T, c *client) {
	all := c.putScanKeys()
	for _, q := range []kv.ScanQuery{
		{Prefix: "a"},
		{Prefix: "a/"},
		{Prefix: "a%"},
		{Prefix: "ключ"},
		{Prefix: "日本"},
		{Prefix: "😀"},
		{Prefix: "\xff"},
		{Prefix: "a\xff"},
		{Prefix: "nothing"},
		{Start: "a/b"},
		{Start: "b", End: "z"},
		{End: "a/b"},
		{Start: "\x80"},
		{End: "\x80"},
		{Start: "é", End: "😀"},
		{Start: "z", End: "b"},
		{Start: "b", End: "b"},
		{Prefix: "a", Start: "a/b"},
		{Prefix: "a", End: "a/b/c"},
		{Prefix: "a", Start: "a%", End: "ab"},
		{Prefix: "a", Start: "0", End: "zz"},
		{Prefix: "b", Start: "c"},
		{After: "a"},
		{After: "a\x00"},
		{After: "\xff"},
		{Prefix: "a", After: "a/b"},
		{Prefix: "a", Start: "a/b", After: "a"},
		{Start: "a", End: "b", After: "a/b/c"},
	} {
		q.Limit = kv.MaxScanLimit
		want := expect(all, q)
		p := c.scan(q)
		if got := keysOf(p.Items); !slices.Equal(got, want) {
			t.Errorf("Scan(prefix %q start %q end %q after %q) =\n%q\nwant\n%q", q.Prefix, q.Start, q.End, q.After, got, want)
		}
		if p.More {
			t.Errorf("Scan(prefix %q start %q end %q after %q): More = true on the only page", q.Prefix, q.Start, q.End, q.After)
		}
	}
}

func testScanPaging(t *testing.T, c *client) {
	all := c.putScanKeys()
	for _, base := range []kv.ScanQuery{{}, {Prefix: "a"}, {Start: "b", End: "\xff"}} {
		want := expect(all, base)
		for limit := 1; limit <= len(want)+1; limit++ {
			q := base
			q.Limit = limit
			var got []string
			for pages := 0; ; pages++ {
				if pages > len(want)+1 {
					t.Fatalf("%+v: more pages than keys", q)
				}
				p := c.scan(q)
				got = append(got, keysOf(p.Items)...)
				if len(p.Items) > limit {
					t.Fatalf("%+v: page of %d items exceeds Limit", q, len(p.Items))
				}
				if !p.More {
					break
				}
				if len(p.Items) != limit {
					t.Fatalf("%+v: page of %d items has More set; only a full page may", q, len(p.Items))
				}
				q.After = p.Items[len(p.Items)-1].Key
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paging prefix %q start %q end %q with Limit %d saw\n%q\nwant every key once\n%q",
					base.Prefix, base.Start, base.End, limit, got, want)
			}
		}
	}
}

func testScanMaxBytes(t *testing.T, c *client) {
	var keys []string
	for i := range 10 {
		k := fmt.Sprintf("k%02d", i)
		keys = append(keys, k)
		c.putOp(kv.PutOp{Key: k, Value: bytes.Repeat([]byte{'x'}, 100)})
	}
	c.putOp(kv.PutOp{Key: "big", Value: bytes.Repeat([]byte{'y'}, 1000)})
	for _, tc := range []struct {
		q    kv.ScanQuery
		want int
		more bool
	}{
		{kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 250}, 3, true}, // 300 bytes reach 250
		{kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 200}, 2, true}, // exactly reached
		{kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 201}, 3, true},
		{kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 1}, 1, true}, // at least one item
		{kv.ScanQuery{Prefix: "k", Limit: 2, MaxBytes: 1000}, 2, true},
		{kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 1000}, 10, false}, // reached by the last key
		{kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 5000}, 10, false},
		{kv.ScanQuery{Prefix: "k", Limit: 100}, 10, false}, // zero means 1 MiB
		{kv.ScanQuery{Prefix: "big", Limit: 100, MaxBytes: 10}, 1, false},
		{kv.ScanQuery{Start: "big", Limit: 100, MaxBytes: 10}, 1, true},
	} {
		p := c.scan(tc.q)
		if len(p.Items) != tc.want || p.More != tc.more {
			t.Errorf("Scan(prefix %q start %q Limit %d MaxBytes %d) = %d items, More %v; want %d items, More %v",
				tc.q.Prefix, tc.q.Start, tc.q.Limit, tc.q.MaxBytes, len(p.Items), p.More, tc.want, tc.more)
		}
	}
	if got := c.scanAll(kv.ScanQuery{Prefix: "k", Limit: 100, MaxBytes: 250}); !slices.Equal(got, keys) {
		t.Errorf("paging by MaxBytes saw %q, want every key once: %q", got, keys)
	}
}

func testEmptyValue(t *testing.T, c *client) {
	for _, tc := range []struct {
		key   string
		value []byte
		ct    string
	}{
		{"nil", nil, "text/plain"},
		{"empty", []byte{}, "application/octet-stream"},
		{"no-content-type", []byte{}, ""},
	} {
		c.putOp(kv.PutOp{Key: tc.key, Value: tc.value, ContentType: tc.ct})
		it := c.get(tc.key)
		if it.Value == nil || len(it.Value) != 0 || it.ContentType != tc.ct {
			t.Errorf("Get(%q) = value %#v, content type %q; want non-nil empty value, %q", tc.key, it.Value, it.ContentType, tc.ct)
		}
	}
	p := c.scan(kv.ScanQuery{Limit: 10})
	items, err := c.s.MultiGet(c.ctx, c.ns, []string{"nil", "empty"})
	if err != nil {
		t.Fatalf("MultiGet: %v", err)
	}
	for _, it := range append(p.Items, items...) {
		if it.Value == nil || len(it.Value) != 0 {
			t.Errorf("Scan/MultiGet item %q: value %#v, want non-nil empty", it.Key, it.Value)
		}
	}
	if len(p.Items) != 3 || len(items) != 2 {
		t.Errorf("Scan found %d, MultiGet %d empty-valued keys; want 3 and 2", len(p.Items), len(items))
	}
}

func testLargeValue(t *testing.T, c *client) {
	value := make([]byte, 1<<20)
	if _, err := rand.Read(value); err != nil {
		t.Fatal(err)
	}
	v := c.putOp(kv.PutOp{Key: "big", Value: value, ContentType: "application/octet-stream"})
	it := c.get("big")
	if !bytes.Equal(it.Value, value) || it.Version != v {
		t.Fatalf("Get of a 1 MiB value returned %d bytes (equal: %v), version %q; want the exact bytes at %q",
			len(it.Value), bytes.Equal(it.Value, value), it.Version, v)
	}
	p := c.scan(kv.ScanQuery{Limit: 10})
	if len(p.Items) != 1 || !bytes.Equal(p.Items[0].Value, value) {
		t.Fatalf("Scan of a 1 MiB value returned %d items, want the exact bytes", len(p.Items))
	}
}

func testMultiGet(t *testing.T, c *client) {
	va, vb, vc := c.put("a", "A"), c.put("b", "B"), c.put("c", "C")
	c.put("d", "D")
	c.del("d")
	for _, tc := range []struct {
		keys []string
		want []string
	}{
		{[]string{"c", "missing", "a", "b"}, []string{"c", "a", "b"}},
		{[]string{"b", "d"}, []string{"b"}},
		{[]string{"a", "b", "a", "c", "b"}, []string{"a", "b", "c"}},
		{[]string{"missing"}, nil},
		{[]string{}, nil},
		{nil, nil},
	} {
		items, err := c.s.MultiGet(c.ctx, c.ns, tc.keys)
		if err != nil {
			t.Fatalf("MultiGet(%q): %v", tc.keys, err)
		}
		if got := keysOf(items); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
			t.Errorf("MultiGet(%q) = %q, want %q", tc.keys, got, tc.want)
		}
		for _, it := range items {
			wantV := map[string]string{"a": va, "b": vb, "c": vc}[it.Key]
			if string(it.Value) != strings.ToUpper(it.Key) || it.Version != wantV || it.ContentType != "text/plain" {
				t.Errorf("MultiGet item %q = {%q %q %q}, want {%q %q text/plain}", it.Key, it.Value, it.Version, it.ContentType,
					strings.ToUpper(it.Key), wantV)
			}
		}
	}
}

func testBatchApplies(t *testing.T, c *client) {
	vOld := c.put("old", "x")
	c.put("gone", "x")
	versions, err := c.s.Batch(c.ctx, c.ns, []kv.Op{
		{Put: kv.PutOp{Key: "new", Value: []byte("N"), ContentType: "text/plain"}},
		{Put: kv.PutOp{Key: "old", Value: []byte("O"), Cond: kv.Cond{IfMatch: vOld}}},
		{Delete: true, Put: kv.PutOp{Key: "gone"}},
		{Put: kv.PutOp{Key: "created", Value: []byte("C"), Cond: kv.Cond{IfNoneMatch: true}}},
		{Delete: true, Put: kv.PutOp{Key: "never-existed"}},
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if len(versions) != 5 || versions[2] != "" || versions[4] != "" {
		t.Fatalf("Batch versions = %q, want 5 with empty strings for the deletes (2, 4)", versions)
	}
	for _, i := range []int{0, 1, 3} {
		checkVersionSyntax(t, versions[i])
	}
	wantGreater(t, "batch put IfMatch", vOld, versions[1])
	c.wantValue("new", "N", versions[0])
	c.wantValue("old", "O", versions[1])
	c.wantValue("created", "C", versions[3])
	c.wantNotFound("gone")
	c.wantNotFound("never-existed")
}

func testBatchSequential(t *testing.T, c *client) {
	versions, err := c.s.Batch(c.ctx, c.ns, []kv.Op{
		{Put: kv.PutOp{Key: "k", Value: []byte("1")}},
		{Put: kv.PutOp{Key: "k", Value: []byte("2")}},
		{Delete: true, Put: kv.PutOp{Key: "gone"}},
		{Put: kv.PutOp{Key: "gone", Value: []byte("3")}},
		{Delete: true, Put: kv.PutOp{Key: "gone"}},
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	wantGreater(t, "second put of a key in one batch", versions[0], versions[1])
	c.wantValue("k", "2", versions[1])
	c.wantNotFound("gone")

	_, err = c.s.Batch(c.ctx, c.ns, []kv.Op{
		{Put: kv.PutOp{Key: "fresh", Value: []byte("1")}},
		{Put: kv.PutOp{Key: "fresh", Value: []byte("2"), Cond: kv.Cond{IfNoneMatch: true}}},
	})
	wantOpError(t, err, 1, kv.ErrExists)
	c.wantNotFound("fresh")
}

// wantOpError fails unless err is a *kv.OpError at index wrapping target.
func wantOpError(t *testing.T, err error, index int, target error) {
	t.Helper()
	var opErr *kv.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("Batch error = %v (%T), want *kv.OpError at index %d", err, err, index)
	}
	if opErr.Index != index || !errors.Is(err, target) {
		t.Fatalf("Batch error = op %d: %v, want op %d: %v", opErr.Index, opErr.Err, index, target)
	}
}

func testBatchMismatch(t *testing.T, c *client) {
	va := c.put("a", "A")
	vb := c.put("b", "B")
	vs, err := c.s.Batch(c.ctx, c.ns, []kv.Op{
		{Put: kv.PutOp{Key: "a", Value: []byte("changed")}},
		{Put: kv.PutOp{Key: "x", Value: []byte("new")}},
		{Delete: true, Put: kv.PutOp{Key: "b", Cond: kv.Cond{IfMatch: "1"}}},
	})
	if vs != nil {
		t.Errorf("failed Batch returned versions %q, want nil", vs)
	}
	wantOpError(t, err, 2, kv.ErrVersionMismatch)
	c.wantValue("a", "A", va)
	c.wantNotFound("x")
	c.wantValue("b", "B", vb)

	_, err = c.s.Batch(c.ctx, c.ns, []kv.Op{
		{Delete: true, Put: kv.PutOp{Key: "a"}},
		{Put: kv.PutOp{Key: "b", Value: []byte("changed"), Cond: kv.Cond{IfMatch: va}}},
	})
	wantOpError(t, err, 1, kv.ErrVersionMismatch)
	c.wantValue("a", "A", va)
	c.wantValue("b", "B", vb)
}

func testBatchExists(t *testing.T, c *client) {
	va := c.put("a", "A")
	_, err := c.s.Batch(c.ctx, c.ns, []kv.Op{
		{Put: kv.PutOp{Key: "n1", Value: []byte("1"), Cond: kv.Cond{IfNoneMatch: true}}},
		{Put: kv.PutOp{Key: "a", Value: []byte("changed"), Cond: kv.Cond{IfNoneMatch: true}}},
		{Put: kv.PutOp{Key: "n2", Value: []byte("2")}},
	})
	wantOpError(t, err, 1, kv.ErrExists)
	c.wantNotFound("n1")
	c.wantNotFound("n2")
	c.wantValue("a", "A", va)
}

func testNamespaces(t *testing.T, c *client) {
	other := &client{t: t, ctx: c.ctx, s: c.s, ns: Namespace(t)}
	v1 := c.put("k", "mine")
	v2 := other.put("k", "theirs")
	c.put("only-mine", "x")
	c.wantValue("k", "mine", v1)
	other.wantValue("k", "theirs", v2)
	other.wantNotFound("only-mine")
	if keys := keysOf(other.scan(kv.ScanQuery{Limit: 10}).Items); !slices.Equal(keys, []string{"k"}) {
		t.Errorf("Scan of the other namespace = %q, want [k]", keys)
	}
	_, err := other.s.Put(c.ctx, other.ns, kv.PutOp{Key: "only-mine", Value: []byte("x"), Cond: kv.Cond{IfNoneMatch: true}})
	if err != nil {
		t.Errorf("create-only Put of a key that exists only in another namespace: %v", err)
	}
	c.del("k")
	other.wantValue("k", "theirs", v2)
	items, err := other.s.MultiGet(c.ctx, other.ns, []string{"k", "only-mine"})
	if err != nil || len(items) != 2 {
		t.Errorf("MultiGet in the other namespace = %d items, %v; want 2", len(items), err)
	}
}

func testCancelled(t *testing.T, c *client) {
	v := c.put("k", "x")
	cancelled, cancel := context.WithCancel(c.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(c.ctx, time.Now().Add(-time.Second))
	defer cancel2()
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
			{"Get", func(ctx context.Context) error { _, err := c.s.Get(ctx, c.ns, "k"); return err }},
			{"Put", func(ctx context.Context) error {
				_, err := c.s.Put(ctx, c.ns, kv.PutOp{Key: "new", Value: []byte("x")})
				return err
			}},
			{"Delete", func(ctx context.Context) error { return c.s.Delete(ctx, c.ns, "k", kv.Cond{}) }},
			{"Scan", func(ctx context.Context) error { _, err := c.s.Scan(ctx, c.ns, kv.ScanQuery{Limit: 10}); return err }},
			{"MultiGet", func(ctx context.Context) error { _, err := c.s.MultiGet(ctx, c.ns, []string{"k"}); return err }},
			{"Batch", func(ctx context.Context) error {
				_, err := c.s.Batch(ctx, c.ns, []kv.Op{{Put: kv.PutOp{Key: "new", Value: []byte("x")}}})
				return err
			}},
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
}
