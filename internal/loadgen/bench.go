// Package loadgen is Prism's load generator, the engine of `prism bench`.
// It drives the ext_proc server the way Envoy does (or the dev edge / an
// Envoy over HTTP), in closed loop (N workers, max throughput) or open loop
// (a fixed rate, latency from the intended send time, so a stall is never
// hidden by the load generator waiting: no coordinated omission), records
// latencies in log-linear histograms, and runs the baselines — a no-op
// ext_proc server (the floor) and the backend called directly — in the same
// run, so results are ratios that hold on a noisy machine.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
)

// Transports: how requests reach Prism.
const (
	TransportExtproc = "extproc"
	TransportHTTP    = "http"
)

// Config is a whole bench: the scenarios, how to reach Prism, and how hard
// to load it.
type Config struct {
	Scenarios []string
	Keys      int
	ValueSize int
	Dist      string
	PII       bool

	// Transport is TransportExtproc (default) or TransportHTTP.
	Transport string
	// Target is the address of a running ext_proc server; empty starts
	// extproc in this process on Backend.
	Target string
	// URL is the base URL of a running dev edge or Envoy (HTTP transport);
	// empty serves a dev edge in this process.
	URL string
	// Namespace is used with Target or URL; the in-process stack has its
	// own per abstraction. Subject is the client identity sent with it.
	Namespace, Subject string

	// Backend is the in-process stack's driver: sqlite (default) or
	// postgres, with PostgresDSN.
	Backend     string
	PostgresDSN string
	// DirectDriver and DirectDSN open the direct baseline when Prism runs
	// elsewhere; the in-process stack's backend is used otherwise.
	DirectDriver, DirectDSN string
	// NoFloor and NoDirect leave a baseline out.
	NoFloor, NoDirect bool

	// Conns is the number of HTTP/2 connections to ext_proc (default 2).
	Conns int
	// Workers is the closed loop's concurrency (default 4).
	Workers          int
	Duration, Warmup time.Duration
	// Rate, when positive, runs every target open loop at this rate.
	Rate float64
	// OpenFraction, when positive (and Rate is not), adds an open-loop run
	// of Prism at this fraction of its closed-loop throughput.
	OpenFraction float64

	// Dir holds the in-process stack's files (default: a temporary one).
	Dir      string
	Progress io.Writer
	Logger   *slog.Logger
	// Server are further extproc options of the in-process stack.
	Server extproc.Options
}

func (c *Config) defaults() error {
	if len(c.Scenarios) == 0 {
		c.Scenarios = []string{ScenarioKVGet}
	}
	for _, s := range c.Scenarios {
		name, pii := splitPII(s)
		if err := validScenario(name); err != nil {
			return err
		}
		if c.Transport == TransportHTTP && (c.PII || pii) && c.URL == "" {
			return errors.New("PII namespaces need a client certificate, which the in-process dev edge over plain HTTP cannot carry: use the extproc transport")
		}
	}
	if c.Transport == "" {
		c.Transport = TransportExtproc
	}
	if c.Transport != TransportExtproc && c.Transport != TransportHTTP {
		return fmt.Errorf("unknown transport %q: want extproc or http", c.Transport)
	}
	if c.Conns <= 0 {
		c.Conns = 2
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if (c.Target != "" || c.URL != "") && c.Namespace == "" {
		return errors.New("a namespace is needed with an external target")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// splitPII reads a scenario name with an optional "+pii" suffix, which
// runs that scenario on the namespaces with a PII schema.
func splitPII(s string) (name string, pii bool) {
	name, pii = strings.CutSuffix(s, "+pii")
	return name, pii
}

// bench is one Bench call's running parts.
type bench struct {
	cfg     Config
	stack   *Stack
	floor   *Floor
	edges   []*http.Server
	closers []io.Closer
	seeded  map[string]bool
}

// Bench runs every scenario against Prism and the baselines and returns
// the results.
func Bench(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, seeded: map[string]bool{}}
	defer b.close()
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	res := NewResult()
	for _, name := range cfg.Scenarios {
		sr, err := b.scenario(ctx, name)
		if err != nil {
			return res, fmt.Errorf("scenario %s: %w", name, err)
		}
		res.Scenarios = append(res.Scenarios, sr)
	}
	return res, nil
}

func (b *bench) start(ctx context.Context) error {
	c := &b.cfg
	if c.Target == "" && c.URL == "" {
		dir := c.Dir
		if dir == "" {
			d, err := os.MkdirTemp("", "prism-bench-")
			if err != nil {
				return err
			}
			dir = d
			b.closers = append(b.closers, closerFunc(func() error { return os.RemoveAll(d) }))
		}
		st, err := StartStack(ctx, StackOptions{Dir: dir, Driver: c.Backend, PostgresDSN: c.PostgresDSN, Logger: c.Logger, Server: c.Server})
		if err != nil {
			return err
		}
		b.stack = st
		if c.DirectDriver == "" {
			c.DirectDriver, c.DirectDSN = st.Driver, st.DSN
		}
	}
	if !c.NoFloor {
		f, err := StartFloor()
		if err != nil {
			return err
		}
		b.floor = f
	}
	return nil
}

func (b *bench) close() {
	for i := len(b.edges) - 1; i >= 0; i-- {
		b.edges[i].Close()
	}
	if b.floor != nil {
		b.floor.Close()
	}
	if b.stack != nil {
		if err := b.stack.Close(); err != nil {
			b.cfg.Logger.Warn("closing the bench stack", "err", err)
		}
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i].Close()
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// namespace is where a scenario's requests go.
func (b *bench) namespace(abstraction string, pii bool) string {
	if b.cfg.Namespace != "" {
		return b.cfg.Namespace
	}
	return Namespace(abstraction, pii)
}

// subject is the client identity of Prism requests.
func (b *bench) subject(pii bool) string {
	if b.cfg.Subject != "" || b.stack == nil {
		return b.cfg.Subject
	}
	if pii {
		return BenchSubject
	}
	return ""
}

// prismTarget connects to Prism (in-process or not) by the transport.
func (b *bench) prismTarget(abstraction string, pii bool) (Target, error) {
	addr := b.cfg.Target
	if b.stack != nil {
		addr = b.stack.Addr
	}
	return b.target(addr, b.cfg.URL, abstraction, b.namespace(abstraction, pii), b.subject(pii))
}

// target reaches an ext_proc server at addr, or over HTTP at url (a dev
// edge in this process when url is empty).
func (b *bench) target(addr, url, abstraction, ns, subject string) (Target, error) {
	if b.cfg.Transport == TransportExtproc {
		return DialExtproc(addr, b.cfg.Conns, abstraction, ns, subject)
	}
	if url == "" {
		u, err := b.serveEdge(addr)
		if err != nil {
			return nil, err
		}
		url = u
	}
	return NewHTTPTarget(url, b.cfg.Conns, abstraction, ns), nil
}

// serveEdge serves a dev edge in front of an ext_proc server.
func (b *bench) serveEdge(addr string) (string, error) {
	ep, err := DialExtproc(addr, b.cfg.Conns, "", "", "")
	if err != nil {
		return "", err
	}
	b.closers = append(b.closers, ep)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: devedge.New(ep.clients[0], devedge.Options{Logger: b.cfg.Logger}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(lis)
	b.edges = append(b.edges, srv)
	return "http://" + lis.Addr().String(), nil
}

// scenario seeds the data of a scenario and loads each target in turn.
func (b *bench) scenario(ctx context.Context, spec string) (*ScenarioResult, error) {
	c := &b.cfg
	name, pii := splitPII(spec)
	pii = pii || c.PII
	abstraction := Abstraction(name)
	sc := ScenarioConfig{Name: name, Keys: c.Keys, Dist: c.Dist, ValueSize: c.ValueSize, PII: pii}
	sc.defaults()
	sr := &ScenarioResult{Scenario: name, Transport: c.Transport, Backend: c.DirectDriver, PII: pii, Dist: sc.Dist, Keys: sc.Keys, ValueSize: sc.ValueSize}
	if b.stack == nil && c.Target != "" {
		sr.Backend = "external"
	}

	prism, err := b.prismTarget(abstraction, pii)
	if err != nil {
		return nil, err
	}
	defer prism.Close()
	if err := b.seed(ctx, prism, sc); err != nil {
		return nil, err
	}
	rc := RunConfig{Duration: c.Duration, Warmup: c.Warmup, Workers: c.Workers, Rate: c.Rate, Progress: c.Progress}

	run := func(label string, t Target) (*Summary, error) {
		rc := rc
		rc.Label = name + " " + label
		s, err := Run(ctx, t, sc, rc)
		if err != nil {
			return nil, err
		}
		s.Label = label
		sr.Runs = append(sr.Runs, s)
		return s, nil
	}
	p, err := run(LabelPrism, prism)
	if err != nil {
		return nil, err
	}
	if b.floor != nil {
		f, err := b.target(b.floor.Addr, "", abstraction, b.namespace(abstraction, pii), "")
		if err != nil {
			return nil, err
		}
		_, err = run(LabelFloor, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if !c.NoDirect && c.DirectDriver != "" {
		d, err := b.direct(ctx, b.namespace(abstraction, pii), abstraction)
		if err != nil {
			return nil, err
		}
		_, err = run(LabelDirect, d)
		d.Close()
		if err != nil {
			return nil, err
		}
	}
	if c.Rate <= 0 && c.OpenFraction > 0 && p.Throughput > 0 {
		orc := rc
		orc.Rate = p.Throughput * c.OpenFraction
		orc.Label = name + " " + LabelPrismOpen
		s, err := Run(ctx, prism, sc, orc)
		if err != nil {
			return nil, err
		}
		s.Label = LabelPrismOpen
		sr.Runs = append(sr.Runs, s)
	}
	sr.ComputeRatios()
	return sr, nil
}

// direct opens the direct baseline. Its writes go to a namespace of their
// own: they are plaintext, and a PII namespace never holds plaintext.
func (b *bench) direct(ctx context.Context, ns, abstraction string) (*DirectTarget, error) {
	d, err := OpenDirect(ctx, abstraction, b.cfg.DirectDriver, b.cfg.DirectDSN, ns)
	if err != nil {
		return nil, err
	}
	d.writeNS = ns + "-direct"
	if d.ts != nil {
		// A TimeSeries store serves the namespaces it was told about.
		for _, n := range []string{ns, d.writeNS} {
			if err := d.ts.EnsureNamespace(ctx, n, ts.NamespaceOptions{}); err != nil {
				d.Close()
				return nil, fmt.Errorf("provisioning namespace %s on the direct baseline's store: %w", n, err)
			}
		}
	}
	return d, nil
}

// seed writes a scenario's data through Prism once per data set.
func (b *bench) seed(ctx context.Context, t Target, sc ScenarioConfig) error {
	phases := seedOps(sc)
	if len(phases) == 0 {
		return nil
	}
	key := fmt.Sprintf("%s/%v/%d/%d", Abstraction(sc.Name), sc.PII, sc.Keys, sc.ValueSize)
	if b.seeded[key] {
		return nil
	}
	start := time.Now()
	for _, ops := range phases {
		if err := runAll(ctx, t, ops, 16); err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
	}
	b.seeded[key] = true
	b.cfg.Logger.Info("seeded", "scenario", sc.Name, "took", time.Since(start).String())
	return nil
}

// runAll runs ops with some concurrency and stops at the first error.
func runAll(ctx context.Context, t Target, ops []Op, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan *Op)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range ch {
				if err := t.Do(ctx, op); err != nil {
					cancel(fmt.Errorf("%s %s: %w", op.Method, op.Path, err))
					return
				}
			}
		}()
	}
	for i := range ops {
		select {
		case ch <- &ops[i]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
