package tstest

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// BenchData is the data of every event BenchAppend appends: about 100 B.
// Baselines that write to a broker directly publish the same events.
var BenchData = json.RawMessage(`{"temperature":21.5,"humidity":40,"site":"north-3","note":"benchmark payload of about 100 B"}`)

// BenchSeries is the series of the events of BenchAppend and BenchQuery.
const BenchSeries = "bench"

// FillBatch overwrites batch with the next events of a benchmark: series
// BenchSeries, time now, data BenchData, a tag, and ids *n+1, *n+2, …
// (advancing *n), so that no id repeats within a run.
func FillBatch(batch []ts.Event, n *int, now time.Time) {
	for i := range batch {
		*n++
		batch[i] = ts.Event{Series: BenchSeries, Time: now, ID: strconv.Itoa(*n), Data: BenchData, Tags: map[string]string{"k": "v"}}
	}
}

// Measure runs op once per benchmark iteration, each op handling size
// events, and reports events/s and the 50th and 99th percentiles of op's
// latency in µs (p50-µs, p99-µs) next to ns/op. Drivers and the direct
// baselines of their brokers report through it, so their numbers compare.
func Measure(b *testing.B, size int, op func() error) {
	b.Helper()
	lat := make([]time.Duration, 0, max(b.N, 1))
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat)*size)/b.Elapsed().Seconds(), "events/s")
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(percentile(lat, 99).Nanoseconds())/1e3, "p99-µs")
}

// percentile returns the p-th percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100 // ceil(len·p/100)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// BenchAppend measures appends of batches of size events (with ids, about
// 100 bytes of data each, see FillBatch) to one series of a fresh
// namespace, and reports events/s, p50-µs and p99-µs of an append.
func BenchAppend(b *testing.B, s ts.Store, size int) {
	ctx := context.Background()
	ns := benchNamespace(b, s, ts.NamespaceOptions{})
	batch := make([]ts.Event, size)
	n := 0
	Measure(b, size, func() error {
		FillBatch(batch, &n, time.Now())
		_, _, err := s.Append(ctx, ns, batch)
		return err
	})
}

// BenchQuery measures ascending query pages of size events over a series of
// 2000 events appended at once (times 100µs apart), paging through it with
// cursors (and starting over at its end), in a namespace with opts; it
// reports events/s, p50-µs and p99-µs of a page.
func BenchQuery(b *testing.B, s ts.Store, size int, opts ts.NamespaceOptions) {
	ctx := context.Background()
	ns := benchNamespace(b, s, opts)
	data := json.RawMessage(`{"temperature":21.5,"humidity":40,"site":"north-3"}`)
	const total = 2000
	base := time.Now()
	for i := 0; i < total; i += 500 {
		batch := make([]ts.Event, 500)
		for j := range batch {
			batch[j] = ts.Event{Series: BenchSeries, Time: base.Add(time.Duration(i+j) * 100 * time.Microsecond), Data: data}
		}
		if _, _, err := s.Append(ctx, ns, batch); err != nil {
			b.Fatal(err)
		}
	}
	cur := ""
	Measure(b, size, func() error {
		p, err := s.Query(ctx, ns, ts.QueryArgs{Series: BenchSeries, Limit: size, Cursor: cur})
		if err != nil {
			return err
		}
		if len(p.Events) == 0 {
			b.Fatal("empty page")
		}
		cur = p.NextCursor
		return nil
	})
}

func benchNamespace(b *testing.B, s ts.Store, opts ts.NamespaceOptions) string {
	ns := Namespace(b)
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, ns, opts); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.DropNamespace(context.Background(), ns) })
	return ns
}
