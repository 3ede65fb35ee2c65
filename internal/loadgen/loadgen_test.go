package loadgen

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinPrecision(t *testing.T) {
	h := NewHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	for range 100000 {
		// Log-uniform from 1 µs to 1 s, like latencies.
		v := time.Duration(float64(time.Microsecond) * pow10(rng.Float64()*6))
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if rel := float64(got-exact) / float64(exact); rel < -0.001 || rel > 1.0/subBuckets+0.001 {
			t.Errorf("q%.3f: got %v, exact %v (relative error %.4f, want within [0, %.4f])", q, got, exact, rel, 1.0/subBuckets)
		}
	}
	if h.Max() != vals[len(vals)-1] {
		t.Errorf("max %v, want %v", h.Max(), vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d, want %d", h.Count(), len(vals))
	}
}

func pow10(x float64) float64 {
	r := 1.0
	for x >= 1 {
		r *= 10
		x--
	}
	// 10^x for x in [0,1) by a few terms is enough for a test spread.
	return r * (1 + 9*x)
}

func TestHistogramBucketsAreContiguous(t *testing.T) {
	for i := 1; i < numBuckets; i++ {
		if bucketHigh(i-1)+1 != lowOf(i) {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lowOf(i), bucketHigh(i-1))
		}
		if bucketOf(lowOf(i)) != i || bucketOf(bucketHigh(i)) != i {
			t.Fatalf("bucket %d: bounds [%d, %d] map to %d and %d", i, lowOf(i), bucketHigh(i), bucketOf(lowOf(i)), bucketOf(bucketHigh(i)))
		}
	}
}

func lowOf(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	return uint64(i%subBuckets+subBuckets) << shift
}

func TestHistogramMerge(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(5 * time.Millisecond)
	a.Merge(b)
	if a.Count() != 3 || a.Max() != 5*time.Millisecond || a.Min() != time.Millisecond {
		t.Errorf("merged: count %d max %v min %v, want 3, 5ms, 1ms", a.Count(), a.Max(), a.Min())
	}
}

func TestZipfianKeysAreSkewedUniformAreNot(t *testing.T) {
	count := func(dist string) (top int) {
		p, err := newKeyPicker(dist, 1000, 42)
		if err != nil {
			t.Fatal(err)
		}
		hits := make([]int, 1000)
		for range 100000 {
			hits[p.next()]++
		}
		slices.Sort(hits)
		for _, h := range hits[len(hits)-10:] {
			top += h
		}
		return top
	}
	// The 10 hottest keys of 1000: 1% of requests if uniform, far more
	// under Zipf.
	if u := count(Uniform); u > 2000 {
		t.Errorf("uniform: the 10 hottest keys got %d of 100000 requests, want about 1000", u)
	}
	if z := count(Zipfian); z < 20000 {
		t.Errorf("zipfian: the 10 hottest keys got %d of 100000 requests, want a skew (> 20000)", z)
	}
	if _, err := newKeyPicker("pareto", 10, 1); err == nil {
		t.Error("an unknown distribution was accepted")
	}
}

// stallTarget answers at once, except the first request, which holds every
// other one behind it (a lock) for stall.
type stallTarget struct {
	mu    sync.Mutex
	first bool
	stall time.Duration
}

func (s *stallTarget) Do(ctx context.Context, op *Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.first {
		s.first = true
		time.Sleep(s.stall)
	}
	return nil
}

func (s *stallTarget) Close() error { return nil }

// TestOpenLoopCountsAStallAgainstEveryScheduledRequest is the coordinated
// omission check: a 300 ms stall at the start of an open-loop run at 100/s
// delays every request scheduled during it, and each of them must show its
// wait from the intended send time. The 20 requests scheduled in the first
// 200 ms are answered after the stall ends, so each waited ≥ 100 ms; a
// generator measuring from the actual send would report one slow request.
func TestOpenLoopCountsAStallAgainstEveryScheduledRequest(t *testing.T) {
	sc := ScenarioConfig{Name: ScenarioKVGet, Keys: 10}
	s, err := Run(context.Background(), &stallTarget{stall: 300 * time.Millisecond}, sc, RunConfig{Label: "open", Duration: time.Second, Rate: 100, MaxInFlight: 64})
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests < 90 {
		t.Fatalf("open loop at 100/s for 1s sent %d requests, want about 100 (the schedule must not slow down)", s.Requests)
	}
	// At least 20 of ~100 requests waited ≥ 100 ms, so the P90 did.
	if s.Latency.P90 < 100_000 {
		t.Errorf("P90 %.0fµs < 100ms: the requests scheduled during the stall were not charged their wait (%+v)", s.Latency.P90, s.Latency)
	}

	closed, err := Run(context.Background(), &stallTarget{stall: 300 * time.Millisecond}, sc, RunConfig{Label: "closed", Duration: time.Second, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if closed.Latency.Max < 300_000 {
		t.Errorf("closed loop max %.0fµs, want the 300 ms stall", closed.Latency.Max)
	}
}

// TestBenchEveryScenarioInProcess runs each scenario briefly against the
// in-process stack on SQLite, the floor and the direct baseline, and checks
// that every request succeeded and the outputs are written.
func TestBenchEveryScenarioInProcess(t *testing.T) {
	for _, pii := range []bool{false, true} {
		scenarios := Scenarios
		if pii {
			// One per abstraction: PII changes the values, not the scenario.
			scenarios = []string{ScenarioKVMixed, ScenarioTSQuery + "+pii", ScenarioTraverse}
		}
		cfg := Config{
			Scenarios: scenarios, Keys: 50, ValueSize: 64, PII: pii, Dist: Zipfian,
			Workers: 4, Duration: 100 * time.Millisecond, OpenFraction: 0.5, Dir: t.TempDir(),
		}
		res, err := Bench(context.Background(), cfg)
		if err != nil {
			t.Fatalf("pii=%v: %v", pii, err)
		}
		if len(res.Scenarios) != len(scenarios) {
			t.Fatalf("pii=%v: %d scenario results, want %d", pii, len(res.Scenarios), len(scenarios))
		}
		for _, s := range res.Scenarios {
			for _, label := range []string{LabelPrism, LabelFloor, LabelDirect, LabelPrismOpen} {
				r := s.Run(label)
				if r == nil {
					t.Errorf("pii=%v %s: no %s run", pii, s.Scenario, label)
					continue
				}
				if r.Errors > 0 || r.Requests == 0 {
					t.Errorf("pii=%v %s %s: %d requests, %d errors (first: %s)", pii, s.Scenario, label, r.Requests, r.Errors, r.FirstError)
				}
			}
			if s.Ratios.ThroughputVsFloor <= 0 || s.Ratios.P50BudgetUS <= 0 {
				t.Errorf("pii=%v %s: ratios not computed: %+v", pii, s.Scenario, s.Ratios)
			}
		}
		dir := t.TempDir()
		if err := res.WriteJSON(filepath.Join(dir, "r.json")); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteHTML(filepath.Join(dir, "r.html")); err != nil {
			t.Fatal(err)
		}
		var back Result
		b, _ := os.ReadFile(filepath.Join(dir, "r.json"))
		if err := json.Unmarshal(b, &back); err != nil || len(back.Scenarios) != len(scenarios) {
			t.Errorf("JSON result does not read back: %v", err)
		}
		page, _ := os.ReadFile(filepath.Join(dir, "r.html"))
		if !strings.Contains(string(page), "<svg") || strings.Contains(string(page), "<script") || strings.Contains(string(page), "http://") && !strings.Contains(string(page), "http://www.w3.org/2000/svg") {
			t.Errorf("HTML chart is not a self-contained SVG page")
		}
	}
}

func TestBenchOverHTTPThroughTheDevEdge(t *testing.T) {
	res, err := Bench(context.Background(), Config{
		Scenarios: []string{ScenarioKVMixed}, Keys: 20, Transport: TransportHTTP,
		Workers: 2, Duration: 200 * time.Millisecond, Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Scenarios[0].Runs {
		if r.Errors > 0 || r.Requests == 0 {
			t.Errorf("%s: %d requests, %d errors (first: %s)", r.Label, r.Requests, r.Errors, r.FirstError)
		}
	}
}

func TestBenchRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"unknown scenario":        {Scenarios: []string{"kv-teleport"}},
		"unknown transport":       {Transport: "carrier-pigeon"},
		"external, no namespace":  {Target: "127.0.0.1:1"},
		"http pii, no client TLS": {Transport: TransportHTTP, PII: true},
		"unknown distribution":    {Dist: "pareto", Duration: time.Millisecond, Dir: "/nonexistent-but-unused"},
	} {
		if name == "unknown distribution" {
			if _, err := NewGenerator(ScenarioConfig{Name: ScenarioKVGet, Dist: cfg.Dist}, 1); err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if _, err := Bench(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
