package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Percentiles of a run's latency, in microseconds.
type Percentiles struct {
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p99_9_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

// Point is one second of a run, by intended send time.
type Point struct {
	Second   int     `json:"second"`
	Requests int64   `json:"requests"`
	P50      float64 `json:"p50_us"`
	P99      float64 `json:"p99_us"`
	Max      float64 `json:"max_us"`
}

// Summary is the result of loading one target.
type Summary struct {
	// Label is the target: prism, floor, direct, or prism-open (open loop).
	Label string `json:"label"`
	// Mode is closed or open (loop).
	Mode       string  `json:"mode"`
	Workers    int     `json:"workers,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	Throughput float64 `json:"throughput_rps"`
	// CPUPerRequestUS is the CPU time of this whole process (load
	// generator, and the in-process server or baseline) per request: less
	// distorted by a busy machine than throughput. Prism's own cost is its
	// difference to the floor's.
	CPUPerRequestUS float64     `json:"cpu_per_request_us,omitempty"`
	Latency         Percentiles `json:"latency"`
	Series          []Point     `json:"series"`
}

// Ratios compare Prism with its baselines in the same run; they are what
// holds on a noisy machine.
type Ratios struct {
	// ThroughputVsFloor is Prism's closed-loop throughput over the floor's
	// (target ≥ 0.7 for KV get).
	ThroughputVsFloor float64 `json:"throughput_vs_floor,omitempty"`
	// ThroughputVsDirect is Prism's throughput over the direct backend's.
	ThroughputVsDirect float64 `json:"throughput_vs_direct,omitempty"`
	// P50BudgetUS is floor P50 + direct P50 + 100 µs, the P50 Prism should
	// stay within; P50OverBudgetUS is how far above it Prism is (negative:
	// within).
	P50BudgetUS     float64 `json:"p50_budget_us,omitempty"`
	P50OverBudgetUS float64 `json:"p50_over_budget_us,omitempty"`
}

// ScenarioResult is one scenario with its runs.
type ScenarioResult struct {
	Scenario  string     `json:"scenario"`
	Transport string     `json:"transport"` // extproc or http
	Backend   string     `json:"backend"`
	PII       bool       `json:"pii"`
	Dist      string     `json:"dist"`
	Keys      int        `json:"keys"`
	ValueSize int        `json:"value_size"`
	Runs      []*Summary `json:"runs"`
	Ratios    Ratios     `json:"ratios"`
}

// Result is a whole bench run.
type Result struct {
	Started    time.Time         `json:"started"`
	GoVersion  string            `json:"go_version"`
	NumCPU     int               `json:"num_cpu"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	Scenarios  []*ScenarioResult `json:"scenarios"`
}

// NewResult starts a result with the machine's facts.
func NewResult() *Result {
	return &Result{Started: time.Now().UTC(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
}

// Run returns the run with a label, or nil.
func (s *ScenarioResult) Run(label string) *Summary {
	for _, r := range s.Runs {
		if r.Label == label {
			return r
		}
	}
	return nil
}

// Labels of the runs of a scenario.
const (
	LabelPrism     = "prism"
	LabelPrismOpen = "prism-open"
	LabelFloor     = "floor"
	LabelDirect    = "direct"
)

// ComputeRatios fills Ratios from the closed-loop runs.
func (s *ScenarioResult) ComputeRatios() {
	p, f, d := s.Run(LabelPrism), s.Run(LabelFloor), s.Run(LabelDirect)
	if p == nil {
		return
	}
	if f != nil && f.Throughput > 0 {
		s.Ratios.ThroughputVsFloor = p.Throughput / f.Throughput
	}
	if d != nil && d.Throughput > 0 {
		s.Ratios.ThroughputVsDirect = p.Throughput / d.Throughput
	}
	if f != nil && d != nil {
		s.Ratios.P50BudgetUS = f.Latency.P50 + d.Latency.P50 + 100
		s.Ratios.P50OverBudgetUS = p.Latency.P50 - s.Ratios.P50BudgetUS
	}
}

// WriteJSON writes the result to a file.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the JSON result: %w", err)
	}
	return nil
}

// WriteTable prints one table row per run and the ratios per scenario.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trun\tmode\treq/s\tp50\tp90\tp99\tp99.9\tmax\tcpu/req\terrors\t")
	for _, s := range r.Scenarios {
		name := s.Scenario
		if s.PII {
			name += "+pii"
		}
		if s.Dist == Zipfian {
			name += "/zipf"
		}
		for _, run := range s.Runs {
			var mode string
			if run.Rate > 0 {
				mode = fmt.Sprintf("open@%.0f", run.Rate)
			} else {
				mode = fmt.Sprintf("closed×%d", run.Workers)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, run.Label, mode, run.Throughput,
				fmtUS(run.Latency.P50), fmtUS(run.Latency.P90), fmtUS(run.Latency.P99), fmtUS(run.Latency.P999), fmtUS(run.Latency.Max), fmtUS(run.CPUPerRequestUS), run.Errors)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, s := range r.Scenarios {
		fmt.Fprintln(w, s.RatioLine())
	}
	for _, s := range r.Scenarios {
		for _, run := range s.Runs {
			if run.FirstError != "" {
				fmt.Fprintf(w, "%s %s: %d errors, first: %s\n", s.Scenario, run.Label, run.Errors, run.FirstError)
			}
		}
	}
}

// RatioLine is the one-line verdict of a scenario.
func (s *ScenarioResult) RatioLine() string {
	var b strings.Builder
	name := s.Scenario
	if s.PII {
		name += "+pii"
	}
	fmt.Fprintf(&b, "%-22s", name)
	if s.Ratios.ThroughputVsFloor > 0 {
		fmt.Fprintf(&b, " throughput prism/floor %.2f", s.Ratios.ThroughputVsFloor)
	}
	if s.Ratios.ThroughputVsDirect > 0 {
		fmt.Fprintf(&b, "  prism/direct %.2f", s.Ratios.ThroughputVsDirect)
	}
	if p, f := s.Run(LabelPrism), s.Run(LabelFloor); p != nil && f != nil && p.CPUPerRequestUS > 0 && f.CPUPerRequestUS > 0 {
		fmt.Fprintf(&b, "  cpu/req over floor %s", fmtUS(p.CPUPerRequestUS-f.CPUPerRequestUS))
	}
	if s.Ratios.P50BudgetUS > 0 {
		p := s.Run(LabelPrism)
		verdict := "within"
		if s.Ratios.P50OverBudgetUS > 0 {
			verdict = "OVER"
		}
		fmt.Fprintf(&b, "  p50 %s vs floor+direct+100µs = %s (%s)", fmtUS(p.Latency.P50), fmtUS(s.Ratios.P50BudgetUS), verdict)
	}
	if o := s.Run(LabelPrismOpen); o != nil {
		fmt.Fprintf(&b, "  open@%.0f/s: p50 %s p99 %s", o.Rate, fmtUS(o.Latency.P50), fmtUS(o.Latency.P99))
	}
	return b.String()
}

func fmtUS(v float64) string {
	return fmtDur(time.Duration(v * float64(time.Microsecond)))
}
