package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/tstest"
	"github.com/twmb/franz-go/pkg/kfake"
)

// testCluster starts an in-process Kafka (kfake) on a loopback port,
// stopped when t ends, and returns options pointing at it.
func testCluster(t testing.TB) Options {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return Options{Brokers: c.ListenAddrs()}
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
	s := openStore(t, testCluster(t))
	tstest.Run(t, func(t *testing.T) ts.Store { return s })
}

func TestParseDSN(t *testing.T) {
	o, err := ParseDSN("kafka://a:9092,b:9092?topic_prefix=x.&partitions=6&replication_factor=3&timeout=2s&poll_interval=1s&dedup_entries=10")
	if err != nil || strings.Join(o.Brokers, ",") != "a:9092,b:9092" || o.TopicPrefix != "x." || o.Partitions != 6 ||
		o.ReplicationFactor != 3 || o.Timeout != 2*time.Second || o.PollInterval != time.Second || o.DedupEntries != 10 {
		t.Errorf("ParseDSN = %+v, %v", o, err)
	}
	for _, dsn := range []string{"a:9092", "kafka://a?partition=3", "kafka://a?timeout=5"} {
		if _, err := ParseDSN(dsn); err == nil {
			t.Errorf("ParseDSN(%q) succeeded, want an error", dsn)
		}
	}
	if err := (Options{TopicPrefix: "a b"}).withDefaults().validate(); err == nil {
		t.Error("a topic prefix with a space was accepted")
	}
}

func TestUnreachableClusterFailsFast(t *testing.T) {
	start := time.Now()
	_, err := Open(context.Background(), Options{Brokers: []string{"127.0.0.1:1"}, Timeout: time.Second})
	if !errors.Is(err, ts.ErrUnavailable) {
		t.Fatalf("Open of an unreachable cluster: %v, want ts.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of an unreachable cluster took %v", d)
	}
}

// Two stores stand for two gateways: each de-duplicates against what the
// other appended, by catching its index up from the partition.
func TestDeduplicationAcrossGateways(t *testing.T) {
	opts := testCluster(t)
	a, b := openStore(t, opts), openStore(t, opts)
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
	// b's index is seeded from the partition on first use...
	if n, d, err := b.Append(ctx, "ns", []ts.Event{e}); err != nil || n != 0 || d != 1 {
		t.Fatalf("Append of the same id on b = %d appended, %d duplicates, %v; want 0, 1", n, d, err)
	}
	// ...and caught up on later ones.
	e2 := e
	e2.ID = "twice"
	if n, _, err := a.Append(ctx, "ns", []ts.Event{e2}); err != nil || n != 1 {
		t.Fatalf("Append on a = %d, %v", n, err)
	}
	if n, d, err := b.Append(ctx, "ns", []ts.Event{e2}); err != nil || n != 0 || d != 1 {
		t.Fatalf("Append of a later id on b = %d appended, %d duplicates, %v; want 0, 1", n, d, err)
	}
}

func TestDedupIndexForgetsAfterWindowAndCap(t *testing.T) {
	var d dedup
	d.cap = 3
	t0 := time.Now()
	for i := range 5 {
		d.add(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second))
	}
	if d.has("0") || d.has("1") || !d.has("2") || !d.has("4") {
		t.Fatalf("cap 3 kept %v", d.ids)
	}
	d.expire(t0.Add(3500 * time.Millisecond))
	if d.has("3") || !d.has("4") {
		t.Fatalf("expiry before 3.5s kept %v", d.ids)
	}
}

// kcatRecord is one line of kcat's JSON output (-J).
type kcatRecord struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	TsType    string   `json:"tstype"`
	Ts        int64    `json:"ts"`
	Key       string   `json:"key"`
	Payload   string   `json:"payload"`
	Headers   []string `json:"headers"`
}

// An independent client, kcat (librdkafka), reads what the driver wrote:
// real Kafka records keyed by series with the JSON event as value.
func TestKcatReadsRecords(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if kcat, err = exec.LookPath("kafkacat"); err != nil {
			t.Skip("kcat not found: install the Debian package kcat (make test installs it)")
		}
	}
	opts := testCluster(t)
	s := openStore(t, opts)
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "orders/eu", ts.NamespaceOptions{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	in := []ts.Event{
		{Series: "sensor-7", Time: now.Add(123456789), ID: "e1", Data: json.RawMessage(`{"temp":21.5}`), Tags: map[string]string{"site": "north"}},
		{Series: "sensor-8", Time: now, Data: json.RawMessage(`[1,2]`)},
		{Series: "sensor-7", Time: now.Add(-time.Second), Data: json.RawMessage(`"x"`)},
	}
	if n, _, err := s.Append(ctx, "orders/eu", in); err != nil || n != 3 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	topic := s.topicName("orders/eu")
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(kctx, kcat, "-b", strings.Join(opts.Brokers, ","), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	byKey := map[string][]ts.Event{}
	partOf := map[string]int32{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r kcatRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("kcat line %q: %v", sc.Text(), err)
		}
		if r.Topic != topic {
			t.Errorf("record of topic %q, want %q", r.Topic, topic)
		}
		if p, ok := partOf[r.Key]; ok && p != r.Partition {
			t.Errorf("series %q in partitions %d and %d", r.Key, p, r.Partition)
		}
		partOf[r.Key] = r.Partition
		if r.TsType != "create" || r.Ts < now.Add(-time.Minute).UnixMilli() || r.Ts > time.Now().Add(time.Minute).UnixMilli() {
			t.Errorf("record timestamp %s %d, want the append time", r.TsType, r.Ts)
		}
		var e struct {
			Series string            `json:"series"`
			Time   time.Time         `json:"time"`
			ID     string            `json:"id"`
			Data   json.RawMessage   `json:"data"`
			Tags   map[string]string `json:"tags"`
		}
		if err := json.Unmarshal([]byte(r.Payload), &e); err != nil {
			t.Fatalf("record value %q is not the JSON event: %v", r.Payload, err)
		}
		if e.Series != r.Key {
			t.Errorf("record keyed %q holds an event of series %q", r.Key, e.Series)
		}
		if e.ID != "" && !slicesContains(r.Headers, idHeader) {
			t.Errorf("record of event %q lacks header %s: %v", e.ID, idHeader, r.Headers)
		}
		byKey[r.Key] = append(byKey[r.Key], ts.Event{Series: e.Series, Time: e.Time, ID: e.ID, Data: e.Data, Tags: e.Tags})
	}
	if len(byKey["sensor-7"]) != 2 || len(byKey["sensor-8"]) != 1 {
		t.Fatalf("kcat read %v, want 2 records keyed sensor-7 and 1 keyed sensor-8\n%s", byKey, out)
	}
	got := byKey["sensor-7"][0]
	if !got.Time.Equal(in[0].Time) || got.ID != "e1" || string(got.Data) != `{"temp":21.5}` || got.Tags["site"] != "north" {
		t.Errorf("kcat read %+v, want %+v", got, in[0])
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
