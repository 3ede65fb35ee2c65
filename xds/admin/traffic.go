package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestsMetric is extproc's request counter (extproc/metrics.go), labelled
// namespace, abstraction, operation, backend and code.
const requestsMetric = "prism_requests_total"

// Spacing of the scrapes a rate is computed from. A rate needs two scrapes;
// keeping one per minSpacing for keepFor lets any number of pollers share
// them and still get an interval of at least minSpacing.
const (
	minSpacing = time.Second
	keepFor    = 2 * time.Minute
)

// rateSampler turns extproc's cumulative request counters into rates: each
// request scrapes the registry and diffs against the newest kept scrape that
// is at least minSpacing old.
type rateSampler struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu   sync.Mutex
	kept []scrape // oldest first
}

// scrape is the request counters of every namespace at one time.
type scrape struct {
	at     time.Time
	counts map[string]counts
}

// counts are one namespace's cumulative requests by outcome and operation.
type counts struct {
	requests, clientErrors, serverErrors float64
	operations                           map[string]float64
}

func newRateSampler(g prometheus.Gatherer) *rateSampler {
	if g == nil {
		return nil
	}
	return &rateSampler{g: g, now: time.Now}
}

// trafficReport is the answer of GET /v1/admin/namespaces/{ns}/traffic.
// Rates are per second over the interval between two scrapes; errors are
// 5xx answers (the gateway's or a backend's fault), client errors 4xx.
type trafficReport struct {
	Namespace             string             `json:"namespace"`
	At                    time.Time          `json:"at"`
	IntervalSeconds       float64            `json:"interval_seconds"`
	RequestsPerSecond     float64            `json:"requests_per_second"`
	ErrorsPerSecond       float64            `json:"errors_per_second"`
	ClientErrorsPerSecond float64            `json:"client_errors_per_second"`
	ErrorRatio            float64            `json:"error_ratio"`
	Totals                trafficTotals      `json:"totals"`
	OperationsPerSecond   map[string]float64 `json:"operations_per_second"`
	Note                  string             `json:"note,omitempty"`
}

// trafficTotals are the counters since extproc started.
type trafficTotals struct {
	Requests     float64 `json:"requests"`
	Errors       float64 `json:"errors"`
	ClientErrors float64 `json:"client_errors"`
}

func (h *Handler) traffic(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if h.rates == nil {
		return notFound("traffic rates are not available: this control plane has no extproc metrics " +
			"(prism dev has them; for prism xds scrape each extproc's /metrics)")
	}
	if _, ok := h.ctl.State().Namespaces[name]; !ok {
		return notFound("namespace %s does not exist", name)
	}
	rep, err := h.rates.report(name)
	if err != nil {
		return &apiError{http.StatusServiceUnavailable, CodeUnavailable, err.Error()}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// report scrapes now and computes ns's rates since the newest kept scrape at
// least minSpacing old.
func (s *rateSampler) report(ns string) (trafficReport, error) {
	cur, err := s.scrape()
	if err != nil {
		return trafficReport{}, err
	}
	s.mu.Lock()
	var prev *scrape
	for i := len(s.kept) - 1; i >= 0; i-- {
		if cur.at.Sub(s.kept[i].at) >= minSpacing {
			prev = &s.kept[i]
			break
		}
	}
	s.keep(cur)
	var before counts
	var interval time.Duration
	if prev != nil {
		before, interval = prev.counts[ns], cur.at.Sub(prev.at)
	}
	s.mu.Unlock()

	now := cur.counts[ns]
	rep := trafficReport{
		Namespace:           ns,
		At:                  cur.at.UTC(),
		IntervalSeconds:     interval.Seconds(),
		Totals:              trafficTotals{Requests: now.requests, Errors: now.serverErrors, ClientErrors: now.clientErrors},
		OperationsPerSecond: map[string]float64{},
	}
	if prev == nil {
		rep.Note = "first scrape: rates need a second one, ask again in a second"
		return rep, nil
	}
	secs := interval.Seconds()
	rate := func(a, b float64) float64 {
		if a < b { // a counter reset: extproc restarted
			return a / secs
		}
		return (a - b) / secs
	}
	rep.RequestsPerSecond = rate(now.requests, before.requests)
	rep.ErrorsPerSecond = rate(now.serverErrors, before.serverErrors)
	rep.ClientErrorsPerSecond = rate(now.clientErrors, before.clientErrors)
	if rep.RequestsPerSecond > 0 {
		rep.ErrorRatio = rep.ErrorsPerSecond / rep.RequestsPerSecond
	}
	for op, n := range now.operations {
		rep.OperationsPerSecond[op] = rate(n, before.operations[op])
	}
	return rep, nil
}

// keep adds cur unless a kept scrape is younger than minSpacing, and drops
// those older than keepFor. The caller holds s.mu.
func (s *rateSampler) keep(cur scrape) {
	if n := len(s.kept); n > 0 && cur.at.Sub(s.kept[n-1].at) < minSpacing {
		return
	}
	s.kept = append(s.kept, cur)
	drop := 0
	for drop < len(s.kept)-1 && cur.at.Sub(s.kept[drop].at) > keepFor {
		drop++
	}
	s.kept = s.kept[drop:]
}

// scrape reads the request counters of every namespace.
func (s *rateSampler) scrape() (scrape, error) {
	families, err := s.g.Gather()
	at := s.now()
	if err != nil {
		return scrape{}, fmt.Errorf("reading the extproc metrics: %w", err)
	}
	out := scrape{at: at, counts: map[string]counts{}}
	for _, f := range families {
		if f.GetName() != requestsMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			var ns, op string
			code := 0
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "namespace":
					ns = l.GetValue()
				case "operation":
					op = l.GetValue()
				case "code":
					code, _ = strconv.Atoi(l.GetValue())
				}
			}
			v := m.GetCounter().GetValue()
			c := out.counts[ns]
			if c.operations == nil {
				c.operations = map[string]float64{}
			}
			c.requests += v
			c.operations[op] += v
			switch {
			case code >= 500:
				c.serverErrors += v
			case code >= 400:
				c.clientErrors += v
			}
			out.counts[ns] = c
		}
	}
	return out, nil
}
