package integration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestMetricsAfterKnownTraffic scrapes /metrics the way Prometheus does and
// checks the counters against the requests the test made.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := startStackWith(t, stackOptions{metrics: reg}, []*configv1.Backend{sqliteBackend(t, "db")},
		[]*configv1.Namespace{kvNamespace("orders", "db", 0)})
	c := kvClient{t: t, base: st.edgeURL + "/v1/kv/orders"}
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, "v")
	}
	expect(t, "get", c.do("GET", "/a", nil), 200, "")
	expect(t, "get", c.do("GET", "/b", nil), 200, "")
	expect(t, "get missing", c.do("GET", "/zz", nil), 404, "NOT_FOUND")

	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scrape.Close()
	resp, err := http.Get(scrape.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`prism_requests_total{abstraction="kv",backend="db",code="200",namespace="orders",operation="put"} 3`,
		`prism_requests_total{abstraction="kv",backend="db",code="200",namespace="orders",operation="get"} 2`,
		`prism_requests_total{abstraction="kv",backend="db",code="404",namespace="orders",operation="get"} 1`,
		`prism_request_duration_seconds_count{abstraction="kv",namespace="orders",operation="get"} 3`,
		`prism_tail_waiters 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}
