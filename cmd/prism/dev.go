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

// runDev runs the whole stack in one process: ext_proc on --grpc (so a real
// Envoy can use it too) and the dev edge on --http, which reaches ext_proc
// over gRPC like Envoy, never by a shortcut.
func runDev(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML); default: the embedded prism.yaml (namespace \"default\" on SQLite in ./.prism)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "dev edge listen address")
	grpcAddr := fs.String("grpc", "127.0.0.1:9001", "ext_proc gRPC listen address")
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
	grpcLis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return fmt.Errorf("ext_proc listener: %w", err)
	}
	httpLis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("dev edge listener: %w", err)
	}
	conn, err := dialExtproc(grpcLis.Addr().String())
	if err != nil {
		return err
	}
	defer conn.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveMetrics(gctx, *metricsAddr, reg, log) })
	// The HTTP edge stops first so that its in-flight requests can still
	// reach ext_proc; gRPC stops when the edge has drained.
	edgeDone := make(chan struct{})
	g.Go(func() error {
		defer close(edgeDone)
		return serveHTTP(gctx, newEdgeServer(conn, log), httpLis, log)
	})
	g.Go(func() error {
		stopCtx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-edgeDone:
			case <-gctx.Done():
				<-edgeDone
			}
			cancel()
		}()
		return serveGRPC(stopCtx, newGRPCServer(srv), grpcLis)
	})
	log.Info("prism dev ready", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String(), "namespaces", len(cfg.GetNamespaces()))
	err = g.Wait()
	log.Info("prism dev stopped")
	return err
}
