package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prism-gw/prism/internal/loadgen"
)

// runBench is `prism bench`: load Prism with a scenario and the baselines
// in the same run (the no-op ext_proc floor and the backend directly), and
// print a table, a JSON result and an HTML chart. By default it starts
// extproc on SQLite in this process, so it needs nothing running.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadgen.Config
	scenarios := fs.String("scenario", loadgen.ScenarioKVGet, "comma-separated scenarios: "+strings.Join(loadgen.Scenarios, ", ")+", or \"standard\" for the standard set")
	fs.IntVar(&c.Keys, "keys", 10000, "number of KV keys, TS series or graph nodes")
	fs.StringVar(&c.Dist, "dist", loadgen.Uniform, "key distribution: uniform or zipfian")
	fs.IntVar(&c.ValueSize, "value-size", 100, "bytes per KV value / TS event data")
	fs.BoolVar(&c.PII, "pii", false, "use namespaces with a PII schema (values carry an encrypted email field)")
	fs.StringVar(&c.Transport, "transport", loadgen.TransportExtproc, "extproc (gRPC, as Envoy) or http (through a dev edge or --url)")
	fs.StringVar(&c.Target, "target", "", "address of a running ext_proc server; empty: start extproc in this process")
	fs.StringVar(&c.URL, "url", "", "base URL of a running dev edge or Envoy (with --transport http)")
	fs.StringVar(&c.Namespace, "namespace", "", "namespace on --target / --url")
	fs.StringVar(&c.Subject, "subject", "", "client identity (SPIFFE URI) sent with --target requests")
	fs.StringVar(&c.Backend, "backend", "sqlite", "in-process backend: sqlite or postgres")
	fs.StringVar(&c.PostgresDSN, "postgres", "", "Postgres DSN of the postgres backend")
	fs.StringVar(&c.DirectDriver, "direct-driver", "", "driver of the direct baseline with --target (sqlite, postgres...)")
	fs.StringVar(&c.DirectDSN, "direct-dsn", "", "DSN of the direct baseline with --target")
	fs.BoolVar(&c.NoFloor, "no-floor", false, "skip the no-op ext_proc floor")
	fs.BoolVar(&c.NoDirect, "no-direct", false, "skip the direct-backend baseline")
	fs.IntVar(&c.Conns, "conns", 2, "HTTP/2 connections to ext_proc")
	fs.IntVar(&c.Workers, "workers", 4, "closed loop: concurrent requests (4 saturate a 2-core machine without queueing hiding the latency)")
	fs.DurationVar(&c.Duration, "duration", 5*time.Second, "measured time per run")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "unmeasured time before each run")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop at this many requests per second (latency from the intended send time); 0: closed loop")
	fs.Float64Var(&c.OpenFraction, "open-fraction", 0, "also run Prism open loop at this fraction of its closed-loop throughput (e.g. 0.5)")
	jsonOut := fs.String("json", "", "write the JSON result here")
	htmlOut := fs.String("html", "", "write the HTML chart here")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole bench here (pprof)")
	quiet := fs.Bool("quiet", false, "no live progress line")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	c.Logger = log
	if *scenarios == "standard" {
		c.Scenarios = loadgen.Scenarios
	} else {
		c.Scenarios = strings.Split(*scenarios, ",")
	}
	if !*quiet && isTerminal(stderr) {
		c.Progress = stderr // a live line rewritten in place: for a terminal only
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := loadgen.Bench(ctx, c)
	if res != nil && len(res.Scenarios) > 0 {
		res.WriteTable(stdout)
		if *jsonOut != "" {
			err = errors.Join(err, res.WriteJSON(*jsonOut))
		}
		if *htmlOut != "" {
			err = errors.Join(err, res.WriteHTML(*htmlOut))
		}
	}
	return err
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
