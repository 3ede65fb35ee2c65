package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
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

// BenchmarkPIIOverhead is the PII case of `make bench`: the same request
// with a JSON value of three PII fields (email, ssn, name) on a namespace
// with a PII schema and access lists, and on one without, through the mTLS
// dev edge as the owner, one request at a time, the two interleaved so that
// both see the same machine. It reports the P50 of each and the P50
// overhead (their difference): policy + field crypto, and in a second case
// also the audit record (a fsync'd hash-chained file). Goal: ≤ 50 µs for
// policy + crypto.
func BenchmarkPIIOverhead(b *testing.B) {
	noAudit := matrixPolicy(b)
	src := noAudit["pii.rego"]
	if !strings.Contains(src, "audit if count(input.fields) > 0") {
		b.Fatal("the default pii.rego has no audit rule to switch off")
	}
	noAudit["pii.rego"] = strings.Replace(src, "audit if count(input.fields) > 0", `audit if input.purpose == "never"`, 1)
	cases := []struct {
		name string
		opts func(b *testing.B) mtlsOptions
	}{
		{"policy+crypto", func(b *testing.B) mtlsOptions { return mtlsOptions{policy: noAudit} }},
		{"policy+crypto+audit-file", func(b *testing.B) mtlsOptions {
			return mtlsOptions{auditSpec: filepath.Join(b.TempDir(), "audit.log")}
		}},
	}
	for _, c := range cases {
		st := startMTLSStack(b, c.opts(b))
		for _, op := range []string{"get", "put"} {
			b.Run(op+"/"+c.name, func(b *testing.B) {
				for _, ns := range []string{"open", "m-kv"} {
					if s := st.do(b, subjOwner, "PUT", "/v1/kv/"+ns+"/k", mtlsDoc); s.status != 200 {
						b.Fatalf("seed %s: %d %s", ns, s.status, s.body)
					}
				}
				var plain, withPII []time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for _, ns := range []string{"open", "m-kv"} {
						method, body := "GET", ""
						if op == "put" {
							method, body = "PUT", mtlsDoc
						}
						t0 := time.Now()
						s := st.do(b, subjOwner, method, "/v1/kv/"+ns+"/k", body)
						d := time.Since(t0)
						if s.status != 200 {
							b.Fatalf("%s %s: %d %s", method, ns, s.status, s.body)
						}
						if ns == "open" {
							plain = append(plain, d)
						} else {
							withPII = append(withPII, d)
						}
					}
				}
				b.StopTimer()
				pp, pw := p50(plain), p50(withPII)
				b.ReportMetric(pp, "p50-plain-µs")
				b.ReportMetric(pw, "p50-pii-µs")
				b.ReportMetric(pw-pp, "p50-overhead-µs")
				if b.N < 100 {
					return // the calibration runs
				}
				b.Logf("%s %s: P50 %.0f µs without PII schema, %.0f µs with 3 PII fields: overhead %.1f µs (goal ≤ 50 µs for policy+crypto) over %d requests each",
					op, c.name, pp, pw, pw-pp, len(plain))
			})
		}
	}
}

// p50 is the median of d in µs (d gets sorted).
func p50(d []time.Duration) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[len(d)/2].Nanoseconds()) / 1e3
}

// BenchmarkPIIPolicyCryptoInProcess is the in-process part of the PII
// overhead, without the network and backend noise of BenchmarkPIIOverhead:
// one policy decision (a new request id each time) and the field crypto of
// a 3-PII-field value, for a write (encrypt) and an owner's read (decrypt).
func BenchmarkPIIPolicyCryptoInProcess(b *testing.B) {
	ctx := context.Background()
	eng, err := policies.Compile(ctx, matrixPolicy(b))
	if err != nil {
		b.Fatal(err)
	}
	kek, err := pii.NewLocalKEK(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		b.Fatal(err)
	}
	fields := []pii.Field{{Path: "email", Class: pii.Email}, {Path: "ssn", Class: pii.SSN}, {Path: "name", Class: pii.Name}}
	sch, err := pii.NewSchema(pii.NewKeyring(pii.NewMemKeyStore(), kek), "m-kv", fields)
	if err != nil {
		b.Fatal(err)
	}
	in := policies.Input{
		Subject: "spiffe://prism.local/owner", Namespace: "m-kv", Key: "k",
		Fields: []policies.Field{{Path: "email", Class: "email"}, {Path: "ssn", Class: "ssn"}, {Path: "name", Class: "name"}},
		Access: policies.Access{Owners: []string{"spiffe://prism.local/owner"}, RequireIdentity: true},
	}
	enc, _, err := sch.Encrypt(ctx, "k", []byte(mtlsDoc))
	if err != nil {
		b.Fatal(err)
	}
	for _, op := range []string{"put", "get"} {
		b.Run(op, func(b *testing.B) {
			in := in
			in.Operation = op
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				in.RequestID = strconv.Itoa(i)
				d, err := eng.Decide(ctx, in)
				if err != nil || !d.Allow {
					b.Fatalf("Decide = %+v, %v", d, err)
				}
				if op == "put" {
					_, _, err = sch.Encrypt(ctx, "k", []byte(mtlsDoc))
				} else {
					actions := make(map[string]pii.Action, len(d.Fields))
					for p, a := range d.Fields {
						actions[p] = pii.Action(a)
					}
					_, _, err = sch.Apply(ctx, "k", enc, actions)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkShadowOverhead is what a migration costs a write: the same put
// (KeyValue) or append (TimeSeries) on a namespace migrating from SQLite to
// Postgres in SHADOW_WRITE and on one that is not, through the dev edge,
// one request at a time, interleaved. The copy is synchronous in the
// request, so the overhead is about one Postgres write.
func BenchmarkShadowOverhead(b *testing.B) {
	ctx := context.Background()
	src, dst := sqliteBackend(b, "src"), postgresBackend(b, "dst", "")
	backends := []*configv1.Backend{src, dst}
	var namespaces []*configv1.Namespace
	var migrations []*configv1.Migration
	for name, a := range map[string]configv1.Abstraction{"kv": configv1.Abstraction_KEYVALUE, "ts": configv1.Abstraction_TIMESERIES} {
		namespaces = append(namespaces,
			&configv1.Namespace{Namespace: "plain-" + name, Abstraction: a, Backend: "src"},
			&configv1.Namespace{Namespace: "mig-" + name, Abstraction: a, Backend: "src"})
		migrations = append(migrations, &configv1.Migration{Namespace: "mig-" + name, From: "src", To: "dst", Id: "m-" + name, Phase: configv1.Migration_SHADOW_WRITE})
	}
	st := startStack(b, backends, namespaces)
	if err := st.server.Apply(ctx, &configv1.DevConfig{Backends: backends, Namespaces: namespaces, Migrations: migrations}); err != nil {
		b.Fatal(err)
	}
	requests := map[string]func(ns string, i int) (method, path, body string){
		"kv-put": func(ns string, i int) (string, string, string) {
			return "PUT", "/v1/kv/" + ns + "/k" + strconv.Itoa(i%100), `{"n":` + strconv.Itoa(i) + `}`
		},
		"ts-append": func(ns string, i int) (string, string, string) {
			return "POST", "/v1/ts/" + ns + "/events", `{"events":[{"series":"s` + strconv.Itoa(i%10) + `","data":{"n":` + strconv.Itoa(i) + `}}]}`
		},
	}
	for _, op := range []string{"kv-put", "ts-append"} {
		b.Run(op, func(b *testing.B) {
			kind := op[:2]
			var plain, shadowed []time.Duration
			for i := 0; i < b.N; i++ {
				for _, ns := range []string{"plain-" + kind, "mig-" + kind} {
					method, path, body := requests[op](ns, i)
					req, _ := http.NewRequest(method, st.edgeURL+path, strings.NewReader(body))
					t0 := time.Now()
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					d := time.Since(t0)
					if resp.StatusCode != 200 {
						b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
					}
					if ns == "plain-"+kind {
						plain = append(plain, d)
					} else {
						shadowed = append(shadowed, d)
					}
				}
			}
			b.StopTimer()
			pp, ps := p50(plain), p50(shadowed)
			b.ReportMetric(pp, "p50-plain-µs")
			b.ReportMetric(ps, "p50-shadowed-µs")
			b.ReportMetric(ps-pp, "p50-overhead-µs")
			copies := uint64(0)
			for _, m := range st.server.MigrationReport("bench").GetMigrations() {
				if m.GetNamespace() == "mig-"+kind {
					copies = m.GetShadowWrites()
				}
			}
			if copies < uint64(b.N) {
				b.Fatalf("%d copies counted for %d writes: the namespace is not migrating", copies, b.N)
			}
			if b.N >= 100 {
				b.Logf("%s: P50 %.0f µs alone, %.0f µs with the copy to Postgres: overhead %.0f µs over %d requests each",
					op, pp, ps, ps-pp, len(plain))
			}
		})
	}
}
