package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/envoy/devedge"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// natsBackend is the NATS server of the tests; the streams the test's
// namespaces create are deleted at cleanup.
func natsBackend(t *testing.T, name string, namespaces ...string) *configv1.Backend {
	if os.Getenv("PRISM_SKIP_NATS") == "1" {
		t.Skip("PRISM_SKIP_NATS=1")
	}
	u := os.Getenv("PRISM_TEST_NATS")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := ts.Open(ctx, "nats", u)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer st.Close()
		for _, ns := range namespaces {
			if err := st.DropNamespace(ctx, ns); err != nil {
				t.Logf("cleanup of %s: %v", ns, err)
			}
		}
	})
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Nats{Nats: &configv1.Backend_NatsOptions{Url: u}}}
}

// kafkaBackend starts an in-process Kafka (kfake, the real wire protocol).
func kafkaBackend(t *testing.T, name string) *configv1.Backend {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Kafka{Kafka: &configv1.Backend_KafkaOptions{Brokers: c.ListenAddrs()}}}
}

type eventsPage struct {
	Events []struct {
		Series string          `json:"series"`
		Time   string          `json:"time"`
		ID     string          `json:"id"`
		Data   json.RawMessage `json:"data"`
		Tags   map[string]string
	} `json:"events"`
	NextCursor string `json:"next_cursor"`
}

func TestTimeSeriesThroughDevEdge(t *testing.T) {
	for _, b := range []struct {
		name    string
		backend func(t *testing.T, ns string) *configv1.Backend
	}{
		{"sqlite", func(t *testing.T, _ string) *configv1.Backend { return sqliteBackend(t, "db") }},
		{"postgres", func(t *testing.T, _ string) *configv1.Backend { return postgresBackend(t, "db", "") }},
		{"nats", func(t *testing.T, ns string) *configv1.Backend { return natsBackend(t, "db", ns) }},
		{"kafka", func(t *testing.T, _ string) *configv1.Backend { return kafkaBackend(t, "db") }},
	} {
		t.Run(b.name, func(t *testing.T) {
			ns := fmt.Sprintf("it-metrics-%d", time.Now().UnixNano()%1_000_000_000)
			// A short message timeout proves the tail's long poll extends it
			// the way it must under Envoy.
			st := startStackWith(t, stackOptions{edge: devedge.Options{MessageTimeout: 2 * time.Second}}, []*configv1.Backend{b.backend(t, ns)},
				[]*configv1.Namespace{{Namespace: ns, Abstraction: configv1.Abstraction_TIMESERIES, Backend: "db"}})
			c := kvClient{t: t, base: st.edgeURL + "/v1/ts/" + ns}
			testTSRoutes(t, c)
		})
	}
}

func testTSRoutes(t *testing.T, c kvClient) {
	// Log backends (nats, kafka) accept events within a time window of now.
	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	var events []map[string]any
	for i := 0; i < 5; i++ {
		events = append(events, map[string]any{
			"series": "sensor-7", "id": fmt.Sprintf("e%d", i),
			"time": base.Add(time.Duration(i)*time.Second + 123456789).Format(time.RFC3339Nano),
			"data": map[string]any{"v": i}, "tags": map[string]string{"unit": "C"},
		})
	}
	body, _ := json.Marshal(map[string]any{"events": events})
	r := c.do("POST", "/events", body)
	expect(t, "append", r, 200, "")
	var res struct{ Appended, Duplicates int }
	r.json(t, &res)
	if res.Appended != 5 || res.Duplicates != 0 {
		t.Fatalf("append = %s, want 5 appended", r.body)
	}
	r = c.do("POST", "/events", body)
	r.json(t, &res)
	if res.Appended != 0 || res.Duplicates != 5 {
		t.Fatalf("re-append = %s, want 5 duplicates", r.body)
	}

	// Query pages in both orders.
	for _, order := range []string{"asc", "desc"} {
		var got []string
		cursor := ""
		for i := 0; ; i++ {
			if i > 5 {
				t.Fatal("query paging does not end")
			}
			q := "/events?series=sensor-7&limit=2&order=" + order + "&start=" + url.QueryEscape(base.Format(time.RFC3339Nano))
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := c.do("GET", q, nil)
			expect(t, "query "+order, r, 200, "")
			var p eventsPage
			r.json(t, &p)
			for _, e := range p.Events {
				got = append(got, e.ID)
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		want := "[e0 e1 e2 e3 e4]"
		if order == "desc" {
			want = "[e4 e3 e2 e1 e0]"
		}
		if fmt.Sprint(got) != want {
			t.Fatalf("query %s = %v, want %s", order, got, want)
		}
	}
	r = c.do("GET", "/events?series=sensor-7&limit=1", nil)
	var p eventsPage
	r.json(t, &p)
	if len(p.Events) != 1 || p.Events[0].Time != base.Add(123456789).Format(time.RFC3339Nano) || string(p.Events[0].Data) != `{"v":0}` || p.Events[0].Tags["unit"] != "C" {
		t.Fatalf("first event = %s", r.body)
	}

	// Tail: without a cursor it starts at the end; it wakes on an append.
	r = c.do("GET", "/tail?series=sensor-7&wait=0s", nil)
	expect(t, "tail now", r, 200, "")
	r.json(t, &p)
	if len(p.Events) != 0 || p.NextCursor == "" {
		t.Fatalf("tail without cursor = %s, want no events and a cursor", r.body)
	}
	cursor := p.NextCursor
	got := make(chan response, 1)
	start := time.Now()
	go func() { got <- c.do("GET", "/tail?series=sensor-7&wait=20s&after="+url.QueryEscape(cursor), nil) }()
	time.Sleep(2500 * time.Millisecond) // longer than the edge's message timeout
	expect(t, "append during tail", c.do("POST", "/events", []byte(`{"events":[{"series":"sensor-7","id":"late","data":1}]}`)), 200, "")
	r = <-got
	expect(t, "tail", r, 200, "")
	r.json(t, &p)
	if len(p.Events) != 1 || p.Events[0].ID != "late" {
		t.Fatalf("tail = %s, want the late event", r.body)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("tail returned after %v; it should wake on the append", took)
	}
	r = c.do("GET", "/tail?series=sensor-7&wait=1s&after="+url.QueryEscape(p.NextCursor), nil)
	expect(t, "empty tail", r, 200, "")
	var empty eventsPage
	r.json(t, &empty)
	if len(empty.Events) != 0 || empty.NextCursor == "" {
		t.Fatalf("tail after the last event = %s, want no events and a cursor", r.body)
	}

	expect(t, "bad wait", c.do("GET", "/tail?series=s&wait=31s", nil), 400, "INVALID_ARGUMENT")
	expect(t, "bad series", c.do("GET", "/events?series=a%20b", nil), 400, "INVALID_ARGUMENT")
	expect(t, "bad time", c.do("POST", "/events", []byte(`{"events":[{"series":"s","time":"yesterday"}]}`)), 400, "INVALID_ARGUMENT")
	expect(t, "bad cursor", c.do("GET", "/events?series=sensor-7&cursor=garbage", nil), 400, "INVALID_ARGUMENT")
	expect(t, "unknown route", c.do("GET", "/points", nil), 404, "NOT_FOUND")
}
