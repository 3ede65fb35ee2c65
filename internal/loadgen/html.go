package loadgen

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// runColors are the series colours, by run label.
var runColors = map[string]string{
	LabelPrism: "#1f77b4", LabelFloor: "#7f7f7f", LabelDirect: "#2ca02c", LabelPrismOpen: "#d62728",
}

func colorOf(label string) string {
	if c, ok := runColors[label]; ok {
		return c
	}
	return "#9467bd"
}

// WriteHTML writes a self-contained page (inline SVG, no scripts or remote
// assets) with, per scenario, the latency percentiles of each run on a log
// scale, and throughput and P99 over time.
func (r *Result) WriteHTML(path string) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>prism bench</title>
<style>body{font:14px sans-serif;margin:24px;color:#222}h2{margin-top:32px}svg{background:#fafafa;border:1px solid #ddd;margin:4px}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}.legend span{margin-right:16px}</style></head><body>`)
	fmt.Fprintf(&b, "<h1>prism bench</h1><p>%s — %s, %d CPUs, GOMAXPROCS %d</p>", r.Started.Format("2006-01-02 15:04:05 MST"), html.EscapeString(r.GoVersion), r.NumCPU, r.GOMAXPROCS)
	for _, s := range r.Scenarios {
		title := s.Scenario
		if s.PII {
			title += " + PII"
		}
		fmt.Fprintf(&b, "<h2>%s</h2><p>%s via %s, %d keys (%s), values %d B</p>", html.EscapeString(title), html.EscapeString(s.Backend), html.EscapeString(s.Transport), s.Keys, html.EscapeString(s.Dist), s.ValueSize)
		b.WriteString(`<p class="legend">`)
		for _, run := range s.Runs {
			fmt.Fprintf(&b, `<span style="color:%s">■ %s</span>`, colorOf(run.Label), html.EscapeString(runName(run)))
		}
		b.WriteString("</p>")
		b.WriteString("<table><tr><th>run</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th></tr>")
		for _, run := range s.Runs {
			l := run.Latency
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%.0f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>",
				html.EscapeString(runName(run)), run.Throughput, fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), run.Errors)
		}
		b.WriteString("</table>")
		if line := s.RatioLine(); line != "" {
			fmt.Fprintf(&b, "<p><code>%s</code></p>", html.EscapeString(line))
		}
		percentileChart(&b, s)
		timeChart(&b, s, "throughput (req/s) over time", func(p Point) float64 { return float64(p.Requests) }, false)
		timeChart(&b, s, "P99 latency over time", func(p Point) float64 { return p.P99 }, true)
	}
	b.WriteString("</body></html>\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing the HTML chart: %w", err)
	}
	return nil
}

func runName(s *Summary) string {
	if s.Rate > 0 {
		return fmt.Sprintf("%s (open loop %.0f/s)", s.Label, s.Rate)
	}
	return fmt.Sprintf("%s (closed loop ×%d)", s.Label, s.Workers)
}

const (
	chartW, chartH = 640, 260
	padL, padR     = 70, 20
	padT, padB     = 28, 36
)

// logScale maps microseconds to a y coordinate on a log axis spanning
// [lo, hi].
func logScale(lo, hi float64) func(float64) float64 {
	llo, lhi := math.Log10(lo), math.Log10(hi)
	return func(v float64) float64 {
		v = max(v, lo)
		return padT + (chartH-padT-padB)*(1-(math.Log10(v)-llo)/(lhi-llo))
	}
}

// decades returns the powers of ten bounding values.
func decades(vals []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, v := range vals {
		if v > 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi == 0 {
		return 1, 10
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

// percentileChart draws grouped bars: one group per percentile, one bar per run.
func percentileChart(b *strings.Builder, s *ScenarioResult) {
	names := []string{"p50", "p90", "p99", "p99.9", "max"}
	var all []float64
	for _, r := range s.Runs {
		l := r.Latency
		all = append(all, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	lo, hi := decades(all)
	y := logScale(lo, hi)
	fmt.Fprintf(b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<text x="%d" y="18" font-size="13">latency percentiles (log scale)</text>`, padL)
	for d := lo; d <= hi*1.001; d *= 10 {
		yy := y(d)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, chartW-padR, yy, yy, padL-6, yy+4, fmtUS(d))
	}
	groupW := float64(chartW-padL-padR) / float64(len(names))
	barW := groupW * 0.8 / float64(max(len(s.Runs), 1))
	for gi, n := range names {
		gx := float64(padL) + groupW*float64(gi) + groupW*0.1
		for ri, r := range s.Runs {
			l := r.Latency
			v := [...]float64{l.P50, l.P90, l.P99, l.P999, l.Max}[gi]
			x := gx + barW*float64(ri)
			top := y(v)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x, top, barW-1, float64(chartH-padB)-top, colorOf(r.Label), html.EscapeString(r.Label), n, fmtUS(v))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="12" text-anchor="middle">%s</text>`, gx+groupW*0.4, chartH-padB+16, n)
	}
	b.WriteString("</svg>")
}

// timeChart draws one line per run of a value per second.
func timeChart(b *strings.Builder, s *ScenarioResult, title string, val func(Point) float64, logY bool) {
	maxSec := 1
	var all []float64
	for _, r := range s.Runs {
		for _, p := range r.Series {
			maxSec = max(maxSec, p.Second+1)
			all = append(all, val(p))
		}
	}
	var y func(float64) float64
	var ticks []float64
	if logY {
		lo, hi := decades(all)
		y = logScale(lo, hi)
		for d := lo; d <= hi*1.001; d *= 10 {
			ticks = append(ticks, d)
		}
	} else {
		hi := 1.0
		for _, v := range all {
			hi = max(hi, v)
		}
		hi = niceCeil(hi)
		y = func(v float64) float64 { return padT + (chartH-padT-padB)*(1-v/hi) }
		for i := 0; i <= 4; i++ {
			ticks = append(ticks, hi*float64(i)/4)
		}
	}
	x := func(sec float64) float64 {
		return padL + (chartW-padL-padR)*sec/float64(maxSec)
	}
	fmt.Fprintf(b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, `<text x="%d" y="18" font-size="13">%s</text>`, padL, html.EscapeString(title))
	for _, t := range ticks {
		label := fmt.Sprintf("%.0f", t)
		if logY {
			label = fmtUS(t)
		}
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(t), y(t), padL-6, y(t)+4, label)
	}
	for sec := 0; sec <= maxSec; sec += max(1, maxSec/10) {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%ds</text>`, x(float64(sec)), chartH-padB+16, sec)
	}
	for _, r := range s.Runs {
		if len(r.Series) == 0 {
			continue
		}
		var pts []string
		for _, p := range r.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(p.Second)+0.5), y(val(p))))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`,
			colorOf(r.Label), strings.Join(pts, " "), html.EscapeString(runName(r)))
	}
	b.WriteString("</svg>")
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
