package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/prism-gw/prism/envoy/devedge"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// noopProcessor is the baseline: an ext_proc server that does no work but
// keeps the same message pattern as Prism (reads answered at headers, writes
// at body), so the ratio to it is Prism's own cost.
type noopProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (noopProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	ok := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: 200}, Body: []byte("{}")},
	}}
	for {
		msg, err := s.Recv()
		if err != nil {
			return nil
		}
		if h := msg.GetRequestHeaders(); h != nil && !h.GetEndOfStream() {
			if err := s.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
				RequestHeaders: &extprocv3.HeadersResponse{}}}); err != nil {
				return err
			}
			continue
		}
		return s.Send(ok)
	}
}

func startNoopEdge(b *testing.B) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(g, noopProcessor{})
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	edge := httptest.NewServer(devedge.New(extprocv3.NewExternalProcessorClient(conn), devedge.Options{}))
	b.Cleanup(func() { edge.Close(); conn.Close(); g.Stop() })
	return edge.URL
}

// BenchmarkDevEdgeKV measures KV get and put through the dev edge on SQLite
// and, as the baseline in the same run, through the dev edge to a no-op
// ext_proc server. It reports P50/P99 latency and throughput.
func BenchmarkDevEdgeKV(b *testing.B) {
	prism := startStack(b, []*configv1.Backend{sqliteBackend(b, "db")}, []*configv1.Namespace{kvNamespace("bench", "db", 0)})
	noop := startNoopEdge(b)
	value := bytes.Repeat([]byte("v"), 100)
	const keys = 1000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// Seed the keys the get benchmarks read.
	for i := 0; i < keys; i++ {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/kv/bench/k%d", prism.edgeURL, i), bytes.NewReader(value))
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("seeding: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	for _, target := range []struct{ name, url string }{{"prism-sqlite", prism.edgeURL}, {"noop-extproc", noop}} {
		for _, op := range []string{"get", "put"} {
			b.Run(op+"/"+target.name, func(b *testing.B) {
				var n atomic.Int64
				lat := newLatencies()
				b.SetParallelism(4)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						i := n.Add(1) % keys
						url := fmt.Sprintf("%s/v1/kv/bench/k%d", target.url, i)
						var req *http.Request
						if op == "get" {
							req, _ = http.NewRequest("GET", url, nil)
						} else {
							req, _ = http.NewRequest("PUT", url, bytes.NewReader(value))
						}
						t0 := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mine = append(mine, time.Since(t0))
						if resp.StatusCode != 200 {
							b.Errorf("%s %s: %d", op, url, resp.StatusCode)
							return
						}
					}
					lat.add(mine)
				})
				elapsed := time.Since(start)
				b.StopTimer()
				lat.report(b, elapsed)
			})
		}
	}
}

// latencies collects per-request latencies from parallel workers.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.d) == 0 {
		return
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "req/s")
}
