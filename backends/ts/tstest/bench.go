package tstest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// BenchAppend measures appends of batches of size events (with ids, 100
// bytes of data each) to one series of a fresh namespace, and reports
// events/s next to ns/op.
func BenchAppend(b *testing.B, s ts.Store, size int) {
	ctx := context.Background()
	ns := benchNamespace(b, s, ts.NamespaceOptions{})
	data := json.RawMessage(`{"temperature":21.5,"humidity":40,"site":"north-3","note":"benchmark payload of about 100 B"}`)
	batch := make([]ts.Event, size)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		now := time.Now()
		for i := range batch {
			n++
			batch[i] = ts.Event{Series: "bench", Time: now, ID: fmt.Sprint(n), Data: data, Tags: map[string]string{"k": "v"}}
		}
		if _, _, err := s.Append(ctx, ns, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}

// BenchQuery measures ascending query pages of size events over a series of
// 2000 events appended at once (times 100µs apart), paging through it with
// cursors, in a namespace with opts.
func BenchQuery(b *testing.B, s ts.Store, size int, opts ts.NamespaceOptions) {
	ctx := context.Background()
	ns := benchNamespace(b, s, opts)
	data := json.RawMessage(`{"temperature":21.5,"humidity":40,"site":"north-3"}`)
	const total = 2000
	base := time.Now()
	for i := 0; i < total; i += 500 {
		batch := make([]ts.Event, 500)
		for j := range batch {
			batch[j] = ts.Event{Series: "bench", Time: base.Add(time.Duration(i+j) * 100 * time.Microsecond), Data: data}
		}
		if _, _, err := s.Append(ctx, ns, batch); err != nil {
			b.Fatal(err)
		}
	}
	cur := ""
	b.ResetTimer()
	for b.Loop() {
		p, err := s.Query(ctx, ns, ts.QueryArgs{Series: "bench", Limit: size, Cursor: cur})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Events) == 0 {
			b.Fatal("empty page")
		}
		cur = p.NextCursor
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
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
