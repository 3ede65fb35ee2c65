package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	_ "github.com/prism-gw/prism/backends/graph/neptune"
	_ "github.com/prism-gw/prism/backends/graph/postgres"
	_ "github.com/prism-gw/prism/backends/graph/sqlite"
	"github.com/prism-gw/prism/backends/kv/cache"
	_ "github.com/prism-gw/prism/backends/kv/postgres" // drivers register by name
	_ "github.com/prism-gw/prism/backends/kv/sqlite"
	_ "github.com/prism-gw/prism/backends/ts/kafka"
	_ "github.com/prism-gw/prism/backends/ts/nats"
	_ "github.com/prism-gw/prism/backends/ts/postgres"
	_ "github.com/prism-gw/prism/backends/ts/sqlite"
	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

//go:embed prism.yaml
var defaultConfig []byte

// maxGRPCMessage must hold the largest buffered body Envoy sends and the
// largest response extproc returns.
const maxGRPCMessage = 64 << 20

// shutdownGrace bounds how long in-flight requests may take at shutdown.
const shutdownGrace = 15 * time.Second

// loadConfig reads --config, or the embedded default when it is empty.
func loadConfig(path string) (*configv1.DevConfig, error) {
	if path == "" {
		return config.Parse(defaultConfig)
	}
	return config.Load(path)
}

// prepareSQLiteDirs creates the directories of SQLite files so that a fresh
// checkout runs without setup.
func prepareSQLiteDirs(cfg *configv1.DevConfig) error {
	for _, b := range cfg.GetBackends() {
		if p := b.GetSqlite().GetPath(); p != "" {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("backend %s: %w", b.GetName(), err)
			}
		}
	}
	return nil
}

// newGRPCServer makes the ext_proc gRPC server. Envoy keeps long-lived
// HTTP/2 connections and opens one stream per request.
func newGRPCServer(srv *extproc.Server) *grpc.Server {
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxGRPCMessage),
		grpc.MaxSendMsgSize(maxGRPCMessage),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// Reused stream goroutines keep their grown stacks: a new goroutine
		// per stream spent a quarter of a KV get growing its stack (pprof).
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))*8),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	extprocv3.RegisterExternalProcessorServer(g, srv)
	return g
}

// serveGRPC serves until ctx ends, then stops gracefully within the grace.
func serveGRPC(ctx context.Context, g *grpc.Server, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		g.Stop()
	}
	return nil
}

// dialExtproc connects the dev edge to the ext_proc server over gRPC.
func dialExtproc(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage), grpc.MaxCallSendMsgSize(maxGRPCMessage)),
	)
}

// serveHTTP serves until ctx ends, then lets in-flight requests finish.
func serveHTTP(ctx context.Context, srv *http.Server, lis net.Listener, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newEdgeServer wraps the dev edge in an HTTP server with sane timeouts.
func newEdgeServer(conn *grpc.ClientConn, log *slog.Logger) *http.Server {
	edge := devedge.New(extprocv3.NewExternalProcessorClient(conn), devedge.Options{Logger: log})
	return &http.Server{
		Handler:           edge,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// openCache connects the Redis cache of KeyValue namespaces when addr is set.
// Redis being down at start is not an error: the cache bypasses itself until
// Redis answers.
func openCache(addr string, log *slog.Logger) (*cache.Client, func()) {
	if addr == "" {
		return nil, func() {}
	}
	rdb := redis.NewClient(cache.RedisOptions(addr))
	cc := cache.NewClient(rdb, cache.ClientOptions{Logger: log})
	return cc, func() {
		cc.Close()
		rdb.Close()
	}
}

// serveMetrics serves /metrics of reg on addr until ctx ends; empty addr
// serves nothing.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics", "addr", lis.Addr().String())
	return serveHTTP(ctx, srv, lis, log)
}

// newRegistry holds the process's metrics: Go runtime, process, and Prism's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// piiFlags locate the PII keyring and the audit log.
type piiFlags struct {
	kekFile, keysFile, auditLog string
}

func addPIIFlags(set *flag.FlagSet) *piiFlags {
	p := &piiFlags{}
	set.StringVar(&p.kekFile, "kek-file", ".prism/kek", "key-encryption key wrapping the PII data keys (32 bytes, base64 or hex); created when missing")
	set.StringVar(&p.keysFile, "keys-file", ".prism/keys.json", "keyring file holding the wrapped PII data keys")
	set.StringVar(&p.auditLog, "audit-log", ".prism/audit.log", "append-only, hash-chained audit log of PII accesses: a JSON-lines file, or a database (a path ending in .db, sqlite://PATH, postgres://DSN)")
	return p
}

// open loads (or on first start creates) the KEK, and opens the keyring and
// the audit log. The caller closes the log after the server.
func (p *piiFlags) open(log *slog.Logger) (*pii.Keyring, audit.Store, error) {
	for _, path := range []string{p.kekFile, p.keysFile} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, err
		}
	}
	if _, err := os.Stat(p.kekFile); errors.Is(err, iofs.ErrNotExist) {
		if err := pii.CreateKEKFile(p.kekFile); err != nil && !errors.Is(err, iofs.ErrExist) {
			return nil, nil, fmt.Errorf("--kek-file: %w", err)
		}
		log.Warn("created a new key-encryption key for PII; keep it safe, values encrypted under it are lost without it", "kek_file", p.kekFile)
	}
	kek, err := pii.LoadKEKFile(p.kekFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--kek-file: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	al, err := audit.Open(ctx, p.auditLog)
	if err != nil {
		return nil, nil, fmt.Errorf("--audit-log: %w", err)
	}
	return pii.NewKeyring(pii.NewFileKeyStore(p.keysFile), kek), al, nil
}
