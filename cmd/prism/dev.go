package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/xdsclient"
)

// runDev runs the whole stack in one process: the control plane (ADS on
// --xds, admin API on --admin, desired state in --store, seeded from
// --config when the store is empty), ext_proc on --grpc taking its config
// from the control plane over ADS like any extproc (so a real Envoy can use
// it too), and the dev edge on --http, which reaches ext_proc over gRPC like
// Envoy, never by a shortcut.
func runDev(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML) seeding an empty --store; default: the embedded prism.yaml (namespace \"default\" on SQLite in ./.prism)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "dev edge listen address")
	grpcAddr := fs.String("grpc", "127.0.0.1:9001", "ext_proc gRPC listen address")
	var o xdsOptions
	fs.StringVar(&o.adminAddr, "admin", "127.0.0.1:8081", "admin HTTP API listen address of the control plane")
	fs.StringVar(&o.adminToken, "admin-token", "", "bearer token required by the admin API; may be empty only with a loopback --admin")
	fs.StringVar(&o.xdsAddr, "xds", "127.0.0.1:18000", "ADS gRPC listen address of the control plane")
	fs.StringVar(&o.storeDSN, "store", ".prism/xds.db", "desired state: a SQLite file path, or a postgres:// DSN")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	metricsAddr := fs.String("metrics", "", "listen address of /metrics (Prometheus); empty: none")
	redisAddr := fs.String("redis", "", "Redis address (host:port) of the KeyValue cache; empty: no cache")
	piiF := addPIIFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	if err := checkAdminAuth(o.adminAddr, o.adminToken); err != nil {
		return err
	}
	if o.seed, err = loadConfig(*cfgPath); err != nil {
		return err
	}
	o.seedName = *cfgPath
	if o.seedName == "" {
		o.seedName = "embedded prism.yaml"
	}
	o.resync = 30 * time.Second
	o.log = log
	keyring, auditLog, err := piiF.open(log)
	if err != nil {
		return err
	}
	defer auditLog.Close() // after srv.Close, deferred below

	grpcLis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return fmt.Errorf("ext_proc listener: %w", err)
	}
	httpLis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("dev edge listener: %w", err)
	}
	xdsLis, adminLis, err := listenXDS(o.xdsAddr, o.adminAddr)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return err
	}
	// The "default" pool, for an Envoy pointed at this control plane.
	o.extproc = []string{grpcLis.Addr().String()}

	cc, closeCache := openCache(*redisAddr, log)
	defer closeCache()
	reg := newRegistry()
	srv := extproc.NewServer(extproc.Options{Logger: log, Cache: cc, Metrics: reg, Keyring: keyring, Audit: auditLog})
	defer srv.Close()
	// The control plane is in this process: no cache file to start from.
	client, err := newExtprocXDSClient(srv, xdsclient.Options{Addr: xdsLis.Addr().String(), NodeID: defaultNodeID(), Logger: log})
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		xdsLis.Close()
		adminLis.Close()
		return err
	}
	conn, err := dialExtproc(grpcLis.Addr().String())
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		xdsLis.Close()
		adminLis.Close()
		return err
	}
	defer conn.Close()

	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	// The control plane stops last, once the data path has drained.
	xdsCtx, stopXDS := context.WithCancel(context.Background())
	defer stopXDS()
	g.Go(func() error { return serveXDS(xdsCtx, o, xdsLis, adminLis) })
	g.Go(func() error { return client.Run(gctx) })
	g.Go(func() error { return serveMetrics(gctx, *metricsAddr, reg, log) })
	g.Go(func() error {
		defer stopXDS()
		// Serving before a config is in force would answer 404 to all.
		select {
		case <-client.Ready():
		case <-gctx.Done():
			grpcLis.Close()
			httpLis.Close()
			return nil
		}
		log.Info("prism dev ready", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String(),
			"admin", adminLis.Addr().String(), "xds", xdsLis.Addr().String(), "startup", time.Since(start).Round(time.Millisecond).String())
		return serveEdgeThenGRPC(gctx, newEdgeServer(conn, log), httpLis, newGRPCServer(srv), grpcLis, log)
	})
	err = g.Wait()
	log.Info("prism dev stopped")
	return err
}

// serveEdgeThenGRPC serves the dev edge and ext_proc until ctx ends. The
// edge stops first so that its in-flight requests can still reach ext_proc;
// gRPC stops when the edge has drained.
func serveEdgeThenGRPC(ctx context.Context, edge *http.Server, httpLis net.Listener, grpcSrv *grpc.Server, grpcLis net.Listener, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	edgeDone := make(chan struct{})
	g.Go(func() error {
		defer close(edgeDone)
		return serveHTTP(gctx, edge, httpLis, log)
	})
	g.Go(func() error {
		stopCtx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-edgeDone
			cancel()
		}()
		return serveGRPC(stopCtx, grpcSrv, grpcLis)
	})
	return g.Wait()
}
