package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/prism-gw/prism/envoy/certs"
	"github.com/prism-gw/prism/envoy/devedge"
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
	logFormat := addLogFormatFlag(fs)
	metricsAddr := fs.String("metrics", "", "listen address of /metrics (Prometheus); empty: none")
	redisAddr := fs.String("redis", "", "Redis address (host:port) of the KeyValue cache; empty: no cache")
	piiF := addPIIFlags(fs)
	traceF := addTracingFlags(fs)
	tlsOn := fs.Bool("tls", false, "the dev edge terminates mTLS like Envoy: certificates of a dev CA in --tls-dir (made when missing); a client certificate's URI SAN becomes the caller's identity")
	tlsDir := fs.String("tls-dir", ".prism/certs", "with --tls: the dev CA and server certificate (`prism certs --out DIR --client NAME` issues client certificates)")
	tlsRequire := fs.Bool("tls-require-client-cert", false, "with --tls: refuse clients without a certificate at the handshake (default: they get no identity, so namespaces that require one answer 401)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newFormatLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	tp, err := traceF.start(ctx, log, "prism-dev")
	if err != nil {
		return err
	}
	defer traceF.shutdown(log)
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
	// Pick up keys that `prism keys rotate` adds while this runs.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go keyring.Watch(watchCtx, keyReloadInterval, log)

	grpcLis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return fmt.Errorf("ext_proc listener: %w", err)
	}
	httpLis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("dev edge listener: %w", err)
	}
	if *tlsOn {
		if httpLis, err = listenEdgeTLS(httpLis, *tlsDir, *tlsRequire, log); err != nil {
			grpcLis.Close()
			return err
		}
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
	o.metrics, o.audit = reg, auditLog
	srv := extproc.NewServer(extproc.Options{Logger: log, Cache: cc, Metrics: reg, Keyring: keyring, Audit: auditLog, TracerProvider: tp})
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
	g.Go(func() error {
		return srv.ReportMigrations(gctx, xdsLis.Addr().String(), defaultNodeID(), extproc.DefaultReportInterval)
	})
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
		log.Info("prism dev ready", "http", httpLis.Addr().String(), "tls", *tlsOn, "grpc", grpcLis.Addr().String(),
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

// listenEdgeTLS wraps the dev edge's listener in mTLS with the dev CA of
// dir, creating the CA and a server certificate for localhost when missing.
// It closes lis on error.
func listenEdgeTLS(lis net.Listener, dir string, requireClientCert bool, log *slog.Logger) (net.Listener, error) {
	if _, err := certs.EnsureDevSet(dir, certs.DefaultTrustDomain, []string{"localhost", "127.0.0.1", "::1"}); err != nil {
		lis.Close()
		return nil, fmt.Errorf("--tls: %w", err)
	}
	cfg, err := devedge.TLSConfig(dir, requireClientCert)
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("--tls: %w", err)
	}
	log.Info("dev edge terminates mTLS", "certs", dir, "require_client_cert", requireClientCert)
	return tls.NewListener(lis, cfg), nil
}
