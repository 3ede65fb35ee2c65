package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/tstest"
)

// testOptions returns options for the test server (PRISM_TEST_NATS
// overrides 127.0.0.1:4222) with stream and subject prefixes unique to
// this run; every stream with the prefix is deleted when t ends. An
// unreachable server fails the test unless PRISM_SKIP_NATS=1.
func testOptions(t testing.TB) Options {
	t.Helper()
	url := os.Getenv("PRISM_TEST_NATS")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := natsio.Connect(url, natsio.Timeout(5*time.Second))
	if err == nil {
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
		}
		nc.Close()
	}
	if err != nil {
		if os.Getenv("PRISM_SKIP_NATS") == "1" {
			t.Skipf("NATS JetStream unreachable at %s and PRISM_SKIP_NATS=1: %v", url, err)
		}
		t.Fatalf("NATS JetStream unreachable at %s (set PRISM_TEST_NATS, or PRISM_SKIP_NATS=1 to skip): %v", url, err)
	}
	var b [5]byte
	rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	opts := Options{URL: url, StreamPrefix: "PRISMTEST_" + run + "_", SubjectPrefix: "prismtest." + run}
	t.Cleanup(func() { deleteStreams(t, url, opts.StreamPrefix) })
	return opts
}

// deleteStreams deletes every stream whose name starts with prefix.
func deleteStreams(t testing.TB, url, prefix string) {
	nc, err := natsio.Connect(url)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) {
			doomed = append(doomed, name)
		}
	}
	if err := names.Err(); err != nil {
		t.Errorf("cleanup: list streams: %v", err)
	}
	for _, name := range doomed {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("cleanup: delete stream %s: %v", name, err)
		}
	}
}

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	s := openStore(t, testOptions(t))
	tstest.Run(t, func(t *testing.T) ts.Store { return s })
}

func TestParseDSN(t *testing.T) {
	o, err := ParseDSN("nats://a:4222,nats://b:4222?stream_prefix=X_&subject_prefix=x.y&replicas=3&timeout=2s&poll_interval=1s")
	want := Options{URL: "nats://a:4222,nats://b:4222", StreamPrefix: "X_", SubjectPrefix: "x.y", Replicas: 3, Timeout: 2 * time.Second, PollInterval: time.Second}
	if err != nil || o != want {
		t.Errorf("ParseDSN = %+v, %v; want %+v", o, err, want)
	}
	for _, dsn := range []string{"nats://a?replica=3", "nats://a?timeout=5", "nats://a?%zz"} {
		if _, err := ParseDSN(dsn); err == nil {
			t.Errorf("ParseDSN(%q) succeeded, want an error", dsn)
		}
	}
	for _, o := range []Options{{StreamPrefix: "A.B"}, {SubjectPrefix: "a..b"}, {SubjectPrefix: "a.*"}} {
		if err := o.withDefaults().validate(); err == nil {
			t.Errorf("validate(%+v) succeeded, want an error", o)
		}
	}
}

func TestMsgIDSeparatesSeriesFromID(t *testing.T) {
	if msgID("a", "b:c") == msgID("a:b", "c") || msgID("ab", "c") == msgID("a", "bc") {
		t.Error("msgID does not separate series from id")
	}
}

func TestUnreachableServerFailsFast(t *testing.T) {
	start := time.Now()
	_, err := Open(context.Background(), Options{URL: "nats://127.0.0.1:1", Timeout: time.Second})
	if !errors.Is(err, ts.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ts.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of an unreachable server took %v", d)
	}
}

func TestStreamFollowsNamespaceOptions(t *testing.T) {
	opts := testOptions(t)
	s := openStore(t, opts)
	ctx := context.Background()
	ns := "opts/ns.1"
	if err := s.EnsureNamespace(ctx, ns, ts.NamespaceOptions{Retention: time.Hour, DuplicateWindow: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	info := streamInfo(t, s, ns)
	if info.Config.MaxAge != time.Hour || info.Config.Duplicates != 10*time.Minute || !info.Config.AllowDirect ||
		info.Config.Storage != jetstream.FileStorage || len(info.Config.Subjects) != 1 ||
		info.Config.Subjects[0] != opts.SubjectPrefix+".opts_2Fns_2E1.>" {
		t.Errorf("stream config = %+v", info.Config)
	}
	// A retention shorter than the duplicate window caps it.
	if err := s.EnsureNamespace(ctx, ns, ts.NamespaceOptions{Retention: time.Minute, DuplicateWindow: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if info := streamInfo(t, s, ns); info.Config.MaxAge != time.Minute || info.Config.Duplicates != time.Minute {
		t.Errorf("after update: MaxAge %v, Duplicates %v; want 1m, 1m", info.Config.MaxAge, info.Config.Duplicates)
	}
}

func streamInfo(t *testing.T, s *Store, ns string) *jetstream.StreamInfo {
	t.Helper()
	st, err := s.js.Stream(context.Background(), s.streamName(ns))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// Two stores stand for two gateways: the server de-duplicates across them,
// and a tail on one wakes by its notification consumer when the other
// appends, long before its poll.
func TestTwoGateways(t *testing.T) {
	opts := testOptions(t)
	a := openStore(t, opts)
	opts.PollInterval = time.Hour
	b := openStore(t, opts)
	ctx := context.Background()
	for _, s := range []*Store{a, b} {
		if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e := ts.Event{Series: "s", Time: time.Now(), ID: "once"}
	if n, _, err := a.Append(ctx, "ns", []ts.Event{e}); err != nil || n != 1 {
		t.Fatalf("Append on a = %d, %v", n, err)
	}
	if n, d, err := b.Append(ctx, "ns", []ts.Event{e}); err != nil || n != 0 || d != 1 {
		t.Fatalf("Append of the same id on b = %d appended, %d duplicates, %v; want 0, 1", n, d, err)
	}
	p, err := b.Tail(ctx, "ns", ts.TailArgs{Series: "s"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ts.Page, 1)
	go func() {
		p, err := b.Tail(ctx, "ns", ts.TailArgs{Series: "s", After: p.NextCursor, Wait: 10 * time.Second})
		if err != nil {
			t.Errorf("Tail: %v", err)
		}
		done <- p
	}()
	time.Sleep(200 * time.Millisecond)
	appended := time.Now()
	if _, _, err := a.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-done:
		if len(p.Events) != 1 {
			t.Fatalf("Tail returned %d events, want 1", len(p.Events))
		}
		if d := time.Since(appended); d > time.Second {
			t.Errorf("tail woke %v after another gateway's append", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail did not wake on another gateway's append")
	}
}

// Queries read a window of the stream, not all of it: a page of recent
// events of a long series creates a bounded number of consumers.
func TestDescendingPageOfLongSeries(t *testing.T) {
	s := openStore(t, testOptions(t))
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{TimeWindow: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var all []ts.Event
	for i := range 5 {
		batch := make([]ts.Event, 200)
		for j := range batch {
			batch[j] = ts.Event{Series: "s", Time: time.Now().Add(-time.Duration(j%7) * 100 * time.Millisecond)}
		}
		if _, _, err := s.Append(ctx, "ns", batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
		if i < 4 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	var n int
	cur := ""
	var prev time.Time
	for {
		p, err := s.Query(ctx, "ns", ts.QueryArgs{Series: "s", Desc: true, Limit: 150, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if !prev.IsZero() && e.Time.After(prev) {
				t.Fatalf("descending page out of order: %v after %v", e.Time, prev)
			}
			prev = e.Time
		}
		n += len(p.Events)
		if cur = p.NextCursor; cur == "" {
			break
		}
	}
	if n != len(all) {
		t.Fatalf("descending pages returned %d events, want %d", n, len(all))
	}
}
