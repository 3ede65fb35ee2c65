package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/admin"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/migration"
	"github.com/prism-gw/prism/xds/migration/backfill"
	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/provision"
	"github.com/prism-gw/prism/xds/report"
	"github.com/prism-gw/prism/xds/server"
	"github.com/prism-gw/prism/xds/store"
)

// xdsOptions are the settings of the control plane, from flags.
type xdsOptions struct {
	xdsAddr, adminAddr string
	storeDSN           string
	adminToken         string
	// seed's backends and namespaces become the desired state when the
	// store is empty (seedName says where it came from, for the log);
	// extproc lists the endpoints of the "default" pool when the store has
	// no pools.
	seed     *configv1.DevConfig
	seedName string
	extproc  []string
	model    model.Options
	resync   time.Duration
	log      *slog.Logger
	// audit and metrics feed the admin API's audit and traffic pages when
	// extproc runs in the same process (prism dev); nil otherwise.
	audit   admin.AuditReader
	metrics prometheus.Gatherer
	// metricsAddr serves the xDS metrics when metrics is nil (xdsmetrics.go).
	metricsAddr string
}

// runXDS runs the control plane: ADS on --xds, the admin API on --admin.
func runXDS(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("prism xds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o xdsOptions
	fs.StringVar(&o.xdsAddr, "xds", "0.0.0.0:18000", "ADS gRPC listen address (Envoy, extproc and proxyless gRPC nodes)")
	fs.StringVar(&o.adminAddr, "admin", "127.0.0.1:18001", "admin HTTP API listen address")
	fs.StringVar(&o.storeDSN, "store", envOr("PRISM_XDS_STORE", ".prism/xds.db"), "desired state: a SQLite file path, or a postgres:// DSN (env PRISM_XDS_STORE)")
	fs.StringVar(&o.adminToken, "admin-token", os.Getenv("PRISM_ADMIN_TOKEN"), "bearer token required by the admin API (env PRISM_ADMIN_TOKEN); may be empty only with a loopback --admin")
	fs.StringVar(&o.seedName, "seed", "", "prism.yaml applied when the store is empty (backends and namespaces)")
	extproc := fs.String("extproc", "127.0.0.1:9001", "comma-separated host:port of extproc; the \"default\" pool when the store has no pools")
	port := fs.Uint("envoy-port", model.DefaultListenerPort, "port of Envoy's data API listener")
	fs.StringVar(&o.model.CertDir, "envoy-cert-dir", model.DefaultCertDir, "directory on the Envoy host with server.pem, server-key.pem and ca.pem")
	fs.DurationVar(&o.resync, "resync", 30*time.Second, "how often to reload the store (other replicas) and re-resolve extproc host names")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := addLogFormatFlag(fs)
	fs.StringVar(&o.metricsAddr, "metrics", "", "listen address of /metrics (Prometheus: xDS pushes, ACKs, NACKs, node versions); empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port == 0 || *port > 65535 {
		return fmt.Errorf("--envoy-port %d: want 1..65535", *port)
	}
	o.model.ListenerPort = uint32(*port)
	for _, e := range strings.Split(*extproc, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.extproc = append(o.extproc, e)
		}
	}
	log, err := newFormatLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	o.log = log
	if err := checkAdminAuth(o.adminAddr, o.adminToken); err != nil {
		return err
	}
	if o.seedName != "" {
		if o.seed, err = config.Load(o.seedName); err != nil {
			return err
		}
	}
	xdsLis, adminLis, err := listenXDS(o.xdsAddr, o.adminAddr)
	if err != nil {
		return err
	}
	return serveXDS(ctx, o, xdsLis, adminLis)
}

// checkAdminAuth refuses an admin API without a token off loopback.
func checkAdminAuth(adminAddr, token string) error {
	if token == "" && !isLoopback(adminAddr) {
		return fmt.Errorf("--admin %s is not a loopback address: set --admin-token or PRISM_ADMIN_TOKEN", adminAddr)
	}
	return nil
}

// listenXDS opens the ADS and admin API listeners.
func listenXDS(xdsAddr, adminAddr string) (xdsLis, adminLis net.Listener, err error) {
	xdsLis, err = net.Listen("tcp", xdsAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("xds listener: %w", err)
	}
	adminLis, err = net.Listen("tcp", adminAddr)
	if err != nil {
		xdsLis.Close()
		return nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	return xdsLis, adminLis, nil
}

// serveXDS runs the control plane on the given listeners until ctx ends.
func serveXDS(ctx context.Context, o xdsOptions, xdsLis, adminLis net.Listener) error {
	st, err := store.Open(ctx, o.storeDSN)
	if err != nil {
		xdsLis.Close()
		adminLis.Close()
		return err
	}
	defer st.Close()
	if err := seedStore(ctx, st, o); err != nil {
		xdsLis.Close()
		adminLis.Close()
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	srv := server.New(gctx, server.Options{Logger: o.log})
	ctl := server.NewController(st, srv, server.ControllerOptions{Model: o.model, Logger: o.log})
	if err := ctl.Start(gctx); err != nil {
		xdsLis.Close()
		adminLis.Close()
		return err
	}
	handovers := backfill.NewHandoverMetrics()
	if err := serveXDSMetrics(gctx, g, o, srv, handovers); err != nil {
		xdsLis.Close()
		adminLis.Close()
		return err
	}
	grpcSrv := newXDSGRPCServer()
	srv.Register(grpcSrv)
	// Migration counters arrive next to ADS; backfill progress goes to the
	// store's values table, which never causes an xDS push.
	values, _ := st.(store.Values)
	tracker := migration.NewTracker(migration.TrackerOptions{State: ctl.State, Values: values, Logger: o.log})
	report.Register(grpcSrv, tracker)
	adminOpts := admin.Options{Token: o.adminToken, Logger: o.log, Migrations: tracker, Audit: o.audit, Metrics: o.metrics,
		Provisioner: provision.New(provision.Options{Logger: o.log}),
		// Promoting a TimeSeries migration seals one store and unseals the
		// other, with the drivers this binary registers (serve.go).
		Handover: handovers.Wrap(backfill.Handover)}
	adminSrv := &http.Server{
		Handler:           admin.New(ctl, srv, adminOpts),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
	}
	g.Go(func() error { return serveGRPC(gctx, grpcSrv, xdsLis) })
	g.Go(func() error { return serveHTTP(gctx, adminSrv, adminLis, o.log) })
	g.Go(func() error { ctl.Run(gctx, o.resync); return nil })
	o.log.Info("prism xds ready", "xds", xdsLis.Addr().String(), "admin", adminLis.Addr().String(),
		"store", storeKind(o.storeDSN), "state_version", ctl.State().Version, "admin_auth", o.adminToken != "")
	err = g.Wait()
	o.log.Info("prism xds stopped")
	return err
}

// newXDSGRPCServer makes the ADS server. xDS streams live as long as their
// clients; keepalives find dead ones.
func newXDSGRPCServer() *grpc.Server {
	return grpc.NewServer(
		grpc.MaxConcurrentStreams(1_000_000),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
}

// seedStore gives an empty store its first state: --seed's backends,
// policies and namespaces, and a "default" pool of --extproc when there are
// no pools. Seed policies pass the admin API's checks (policies.Check) first.
func seedStore(ctx context.Context, st store.Store, o xdsOptions) error {
	seed := o.seed
	seeded := false
	var seedPolicies []*configv1.Policy
	for _, p := range seed.GetPolicies() {
		checked, err := policies.Check(ctx, p.GetModules())
		if err != nil {
			return fmt.Errorf("seed policy %s: %w", p.GetName(), err)
		}
		p = proto.Clone(p).(*configv1.Policy)
		p.Version = checked.Version
		seedPolicies = append(seedPolicies, p)
	}
	_, changed, err := st.Update(ctx, func(s *desired.State) error {
		if seed != nil && s.Version == 0 {
			seeded = true
			for _, b := range seed.GetBackends() {
				if err := s.Put(b); err != nil {
					return err
				}
			}
			for _, p := range seedPolicies {
				if err := s.Put(p); err != nil {
					return err
				}
			}
			for _, n := range seed.GetNamespaces() {
				if err := s.Put(n); err != nil {
					return err
				}
			}
		}
		if len(s.Pools) == 0 && len(o.extproc) > 0 {
			return s.Put(&configv1.ExtprocPool{Name: "default", Endpoints: o.extproc, Weight: 100})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seeding the desired state: %w", err)
	}
	if changed {
		o.log.Info("seeded the desired state", "seed", o.seedName, "seeded", seeded, "extproc", o.extproc)
	}
	if seed != nil && !seeded {
		o.log.Info("the store already has a desired state; the seed is not applied (change it through the admin API)",
			"seed", o.seedName, "store", storeKind(o.storeDSN))
	}
	return nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func storeKind(dsn string) string {
	if store.IsPostgres(dsn) {
		return "postgres"
	}
	return "sqlite:" + dsn
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
