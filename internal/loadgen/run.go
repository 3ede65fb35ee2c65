package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// RunConfig is how one target is loaded.
type RunConfig struct {
	// Label names the run in the output (prism, floor, direct...).
	Label string
	// Duration is the measured time; Warmup runs before it unmeasured.
	Duration, Warmup time.Duration
	// Workers is the number of closed-loop workers, each sending its next
	// request when the previous one is answered.
	Workers int
	// Rate, when positive, makes the run open loop: requests are started
	// at this many per second on a fixed schedule, whatever the answers
	// take, and latency is measured from the intended send time.
	Rate float64
	// MaxInFlight bounds the open loop's concurrent requests (default
	// 256); a schedule falling behind shows as latency, never as fewer
	// requests.
	MaxInFlight int
	// Progress, when set, gets a live progress line every second.
	Progress io.Writer
}

// Run loads target with the scenario's operations and returns what it
// measured. Errors of single requests are counted, not returned; Run fails
// only when it cannot start.
func Run(ctx context.Context, target Target, sc ScenarioConfig, rc RunConfig) (*Summary, error) {
	if rc.Duration <= 0 {
		return nil, errors.New("duration must be positive")
	}
	workers := max(rc.Workers, 1)
	mode := "closed"
	if rc.Rate > 0 {
		mode = "open"
		workers = rc.MaxInFlight
		if workers <= 0 {
			workers = 256
		}
	}
	gens := make([]*Generator, workers)
	for i := range gens {
		g, err := NewGenerator(sc, uint64(i)+1)
		if err != nil {
			return nil, err
		}
		gens[i] = g
	}
	rec := newRecorder(rc.Duration)
	var firstErr atomic.Pointer[string]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	measureFrom := start.Add(rc.Warmup)
	end := measureFrom.Add(rc.Duration)
	interval := time.Duration(0)
	if rc.Rate > 0 {
		interval = time.Duration(float64(time.Second) / rc.Rate)
	}

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		rec.progress(rc, measureFrom, stopProgress)
	}()

	var cpuAtStart time.Duration
	cpuMeasured := make(chan struct{})
	go func() {
		// CPU is counted from the end of warmup.
		defer close(cpuMeasured)
		select {
		case <-time.After(time.Until(measureFrom)):
		case <-ctx.Done():
		}
		cpuAtStart = processCPU()
	}()

	// Open loop: one pacer hands out intended send times on the schedule;
	// a request whose worker is late still carries its intended time, so
	// the backlog counts as latency. (A sleeping goroutine per request cost
	// a third more CPU per request than the closed loop.)
	var sched chan time.Time
	if interval > 0 {
		sched = make(chan time.Time, 4096)
		go func() {
			defer close(sched)
			for i := int64(0); ; i++ {
				intended := start.Add(time.Duration(i) * interval)
				if !intended.Before(end) {
					return
				}
				if d := time.Until(intended); d > 0 {
					time.Sleep(d)
				}
				select {
				case sched <- intended:
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(g *Generator) {
			defer wg.Done()
			for ctx.Err() == nil {
				op := g.Next()
				var intended time.Time
				if sched != nil {
					var ok bool
					if intended, ok = <-sched; !ok {
						return
					}
				} else {
					intended = time.Now()
					if !intended.Before(end) {
						return
					}
				}
				err := target.Do(ctx, &op)
				done := time.Now()
				if intended.Before(measureFrom) {
					continue // warmup
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					rec.errors.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				rec.record(intended.Sub(measureFrom), done.Sub(intended))
			}
		}(gens[w])
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	<-cpuMeasured
	cpu := processCPU() - cpuAtStart
	close(stopProgress)
	<-progressDone

	s := rec.summary(rc.Label, mode, elapsed)
	s.Workers = max(rc.Workers, 1)
	if rc.Rate > 0 {
		s.Workers = 0
		s.Rate = rc.Rate
	}
	if s.Requests > 0 && cpu > 0 {
		s.CPUPerRequestUS = us(cpu) / float64(s.Requests)
	}
	if p := firstErr.Load(); p != nil {
		s.FirstError = *p
	}
	return s, nil
}

// recorder holds a run's histograms: the whole run's and one per second
// of the schedule, for the charts over time.
type recorder struct {
	all    *Histogram
	secs   []*Histogram
	errors atomic.Int64
}

func newRecorder(d time.Duration) *recorder {
	n := int(d/time.Second) + 1
	r := &recorder{all: NewHistogram(), secs: make([]*Histogram, n)}
	for i := range r.secs {
		r.secs[i] = NewHistogram()
	}
	return r
}

// record adds one answered request, by its intended send time since the
// start of measurement.
func (r *recorder) record(at, latency time.Duration) {
	r.all.Record(latency)
	i := min(max(int(at/time.Second), 0), len(r.secs)-1)
	r.secs[i].Record(latency)
}

// progress writes a progress line every second until stop.
func (r *recorder) progress(rc RunConfig, measureFrom time.Time, stop <-chan struct{}) {
	if rc.Progress == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-stop:
			fmt.Fprint(rc.Progress, "\r\033[K")
			return
		case now := <-t.C:
			n := r.all.Count()
			phase := "measuring"
			if now.Before(measureFrom) {
				phase = "warming up"
			}
			fmt.Fprintf(rc.Progress, "\r\033[K%-28s %-10s %5.1fs  %9d req  %8.0f req/s  p50 %s  p99 %s  errors %d",
				rc.Label, phase, now.Sub(measureFrom).Seconds(), n, float64(n-last), fmtDur(r.all.Quantile(0.5)), fmtDur(r.all.Quantile(0.99)), r.errors.Load())
			last = n
		}
	}
}

// summary turns the histograms into the result of a run.
func (r *recorder) summary(label, mode string, elapsed time.Duration) *Summary {
	s := &Summary{Label: label, Mode: mode, Requests: int64(r.all.Count()), Errors: r.errors.Load(), Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		s.Throughput = float64(s.Requests) / elapsed.Seconds()
	}
	s.Latency = percentilesOf(r.all)
	for i, h := range r.secs {
		if h.Count() == 0 {
			continue
		}
		s.Series = append(s.Series, Point{Second: i, Requests: int64(h.Count()), P50: us(h.Quantile(0.5)), P99: us(h.Quantile(0.99)), Max: us(h.Max())})
	}
	return s
}

func percentilesOf(h *Histogram) Percentiles {
	return Percentiles{
		P50: us(h.Quantile(0.50)), P90: us(h.Quantile(0.90)), P99: us(h.Quantile(0.99)),
		P999: us(h.Quantile(0.999)), Max: us(h.Max()), Mean: us(h.Mean()),
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
