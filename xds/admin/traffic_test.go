package admin

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRateSamplerDiffsScrapes checks rates against a clock the test moves:
// requests and errors per second over the interval between two scrapes,
// shared by pollers that ask more often than minSpacing.
func TestRateSamplerDiffsScrapes(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsMetric},
		[]string{"namespace", "abstraction", "operation", "backend", "code"})
	reg.MustRegister(requests)
	s := newRateSampler(reg)
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }

	requests.WithLabelValues("a", "kv", "put", "lite", "200").Add(10)
	first, err := s.report("a")
	if err != nil {
		t.Fatal(err)
	}
	if first.IntervalSeconds != 0 || first.Totals.Requests != 10 || first.Note == "" {
		t.Fatalf("first report = %+v, want totals only and a note", first)
	}

	now = now.Add(2 * time.Second)
	requests.WithLabelValues("a", "kv", "put", "lite", "200").Add(16)
	requests.WithLabelValues("a", "kv", "get", "lite", "503").Add(2)
	requests.WithLabelValues("a", "kv", "get", "lite", "404").Add(2)
	requests.WithLabelValues("b", "kv", "put", "lite", "200").Add(100)
	got, err := s.report("a")
	if err != nil {
		t.Fatal(err)
	}
	want := trafficReport{IntervalSeconds: 2, RequestsPerSecond: 10, ErrorsPerSecond: 1, ClientErrorsPerSecond: 1, ErrorRatio: 0.1}
	if got.IntervalSeconds != want.IntervalSeconds || got.RequestsPerSecond != want.RequestsPerSecond ||
		got.ErrorsPerSecond != want.ErrorsPerSecond || got.ClientErrorsPerSecond != want.ClientErrorsPerSecond || got.ErrorRatio != want.ErrorRatio {
		t.Errorf("report after 2s = %+v, want %+v", got, want)
	}
	if got.OperationsPerSecond["put"] != 8 || got.OperationsPerSecond["get"] != 2 {
		t.Errorf("operations = %v, want put 8/s get 2/s", got.OperationsPerSecond)
	}

	// A poller 0.5 s later still gets an interval of at least minSpacing.
	now = now.Add(500 * time.Millisecond)
	got, _ = s.report("a")
	if got.IntervalSeconds != 2.5 || got.RequestsPerSecond != 8 {
		t.Errorf("report 0.5s later = interval %v rate %v, want 2.5s since the first kept scrape, 20 requests / 2.5s = 8/s", got.IntervalSeconds, got.RequestsPerSecond)
	}
	if len(s.kept) != 2 {
		t.Errorf("kept %d scrapes, want 2 (one per minSpacing)", len(s.kept))
	}

	// Old scrapes are dropped.
	now = now.Add(keepFor + time.Minute)
	s.report("a")
	if len(s.kept) != 1 {
		t.Errorf("kept %d scrapes after keepFor, want 1", len(s.kept))
	}
}
