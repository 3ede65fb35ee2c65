package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/xdsclient"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// runExtproc runs the ext_proc server alone, for Envoy. Its namespaces come
// from the control plane with --xds, otherwise from --config.
func runExtproc(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism extproc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML); default: the embedded prism.yaml. Not with --xds")
	grpcAddr := fs.String("grpc", "0.0.0.0:9001", "ext_proc gRPC listen address")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := addLogFormatFlag(fs)
	redisAddr := fs.String("redis", "", "Redis address (host:port) of the KeyValue cache; empty: no cache")
	xdsAddr := fs.String("xds", "", "address (host:port) of prism xds; backends and namespaces then come from the control plane")
	nodeID := fs.String("node-id", "", "with --xds: node id, unique per instance; default hostname-pid")
	xdsCache := fs.String("xds-cache", ".prism/xds-cache.json", "with --xds: file keeping the last applied config, served at start while the control plane is unreachable; empty: none")
	piiF := addPIIFlags(fs)
	traceF := addTracingFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newFormatLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	if *xdsAddr != "" && flagSet(fs, "config") {
		return errors.New("--config and --xds are exclusive: with --xds the namespaces come from the control plane")
	}
	keyring, auditLog, err := piiF.open(log)
	if err != nil {
		return err
	}
	defer auditLog.Close() // after srv.Close, deferred below
	// Pick up keys that `prism keys rotate` adds while this runs.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go keyring.Watch(watchCtx, keyReloadInterval, log)
	popts := extproc.Options{Logger: log, Keyring: keyring, Audit: auditLog}
	if popts.TracerProvider, err = traceF.start(ctx, log, "prism-extproc"); err != nil {
		return err
	}
	defer traceF.shutdown(log)
	if *xdsAddr != "" {
		if *nodeID == "" {
			*nodeID = defaultNodeID()
		}
		return runExtprocXDS(ctx, popts, *grpcAddr, *redisAddr, xdsclient.Options{
			Addr: *xdsAddr, NodeID: *nodeID, CachePath: *xdsCache, Logger: log,
		})
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
	popts.Cache = cc
	srv := extproc.NewServer(popts)
	defer srv.Close()
	if err := srv.Apply(ctx, cfg); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return fmt.Errorf("ext_proc listener: %w", err)
	}
	log.Info("prism extproc ready", "grpc", lis.Addr().String(), "namespaces", len(cfg.GetNamespaces()))
	return serveGRPC(ctx, newGRPCServer(srv), lis)
}

// runExtprocXDS runs the ext_proc server on the control plane's config. It
// takes traffic only once a config is in force — from the control plane,
// or from the cache when the control plane is unreachable — because
// answering before that would turn every request into a 404.
func runExtprocXDS(ctx context.Context, popts extproc.Options, grpcAddr, redisAddr string, opts xdsclient.Options) error {
	log := popts.Logger
	cc, closeCache := openCache(redisAddr, log)
	defer closeCache()
	popts.Cache = cc
	srv := extproc.NewServer(popts)
	defer srv.Close()
	client, err := newExtprocXDSClient(srv, opts)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return client.Run(gctx) })
	g.Go(func() error { return srv.ReportMigrations(gctx, opts.Addr, opts.NodeID, extproc.DefaultReportInterval) })
	g.Go(func() error {
		log.Info("prism extproc waiting for its config", "xds", opts.Addr, "node", opts.NodeID)
		select {
		case <-client.Ready():
		case <-gctx.Done():
			return nil
		}
		lis, err := net.Listen("tcp", grpcAddr)
		if err != nil {
			return fmt.Errorf("ext_proc listener: %w", err)
		}
		log.Info("prism extproc ready", "grpc", lis.Addr().String(), "xds", opts.Addr, "node", opts.NodeID)
		return serveGRPC(gctx, newGRPCServer(srv), lis)
	})
	return g.Wait()
}

// newExtprocXDSClient makes the xDS client that applies the control
// plane's backends and namespaces to srv, creating the SQLite directories
// of the backends in use first.
func newExtprocXDSClient(srv *extproc.Server, opts xdsclient.Options) (*xdsclient.Client, error) {
	return xdsclient.New(xdsclient.ApplierFunc(func(ctx context.Context, cfg *configv1.DevConfig) error {
		if err := prepareSQLiteDirs(&configv1.DevConfig{Backends: usedBackends(cfg.GetBackends(), cfg.GetNamespaces())}); err != nil {
			return err
		}
		return srv.Apply(ctx, cfg)
	}), opts)
}

// usedBackends lists the backends some namespace uses: only those are
// opened, so only their SQLite directories are created.
func usedBackends(backends []*configv1.Backend, namespaces []*configv1.Namespace) []*configv1.Backend {
	used := map[string]bool{}
	for _, n := range namespaces {
		used[n.GetBackend()] = true
	}
	var out []*configv1.Backend
	for _, b := range backends {
		if used[b.GetName()] {
			out = append(out, b)
		}
	}
	return out
}

// defaultNodeID is hostname-pid: unique per instance on a host, and stable
// enough for an operator to find in the admin API's node list.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "extproc"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// flagSet reports whether a flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
