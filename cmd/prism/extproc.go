package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/prism-gw/prism/extproc"
)

// runExtproc runs the ext_proc server alone, for Envoy. Until the xDS client
// lands, namespaces come from --config.
func runExtproc(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism extproc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML); default: the embedded prism.yaml")
	grpcAddr := fs.String("grpc", "0.0.0.0:9001", "ext_proc gRPC listen address")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	metricsAddr := fs.String("metrics", "", "listen address of /metrics (Prometheus); empty: none")
	redisAddr := fs.String("redis", "", "Redis address (host:port) of the KeyValue cache; empty: no cache")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := prepareSQLiteDirs(cfg); err != nil {
		return err
	}
	cc, closeCache := openCache(*redisAddr, log)
	defer closeCache()
	reg := newRegistry()
	srv := extproc.NewServer(extproc.Options{Logger: log, Cache: cc, Metrics: reg})
	defer srv.Close()
	if err := srv.Apply(ctx, cfg.GetBackends(), cfg.GetNamespaces()); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return fmt.Errorf("ext_proc listener: %w", err)
	}
	log.Info("prism extproc ready", "grpc", lis.Addr().String(), "namespaces", len(cfg.GetNamespaces()))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveMetrics(gctx, *metricsAddr, reg, log) })
	g.Go(func() error { return serveGRPC(gctx, newGRPCServer(srv), lis) })
	return g.Wait()
}
