// Package xdsclient makes extproc an xDS client of `prism xds`: it
// subscribes to the Prism resources over incremental (delta) ADS, applies
// every response atomically through an Applier, ACKs or NACKs it, keeps
// serving the last good config while the control plane is away, and keeps
// that config on disk so that a restart during an outage still serves.
//
// The client keeps two sets of resources. "received" is what the control
// plane believes this node has: go-control-plane records a resource as sent
// whether the node ACKs or NACKs it, and does not send it again until it
// changes. "applied" is the set in force: the last one the Applier accepted;
// it is what the cache file holds and what a new stream announces in
// initial_resource_versions. Every response is applied as the whole
// received set, so that a later fix of any resource — say the backend a
// rejected namespace points at — brings the rejected one into force too.
package xdsclient

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/resource"
)

// Applier installs a config atomically, or returns an error and keeps the
// config in force. *extproc.Server is one.
type Applier interface {
	Apply(ctx context.Context, cfg *configv1.DevConfig) error
}

// ApplierFunc adapts a function to an Applier.
type ApplierFunc func(ctx context.Context, cfg *configv1.DevConfig) error

// Apply implements Applier.
func (f ApplierFunc) Apply(ctx context.Context, cfg *configv1.DevConfig) error {
	return f(ctx, cfg)
}

// Options configure a Client. Addr and NodeID are required.
type Options struct {
	// Addr is the host:port of prism xds's ADS server.
	Addr string
	// NodeID names this instance to the control plane, which reports ACKs
	// and NACKs per node id; it must be unique per instance.
	NodeID string
	// CachePath is the file that keeps the last applied set; empty: none.
	CachePath string
	// InitialTimeout is how long to wait at start for the control plane
	// before serving from the cache (default 5s). A control plane that
	// refuses the connection does not get that long.
	InitialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential wait between
	// reconnects (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// RetryInterval is the first wait before applying a rejected config
	// again, in case what failed was passing (a database restarting); it
	// doubles up to 8 times itself (default 30s).
	RetryInterval time.Duration
	// ApplyTimeout bounds one Apply (default 1m).
	ApplyTimeout time.Duration
	// DialOptions are added to the defaults (plaintext, keepalive, 64 MiB
	// messages); pass transport credentials here for TLS.
	DialOptions []grpc.DialOption
	Logger      *slog.Logger
}

// maxMessage bounds one xDS response: policies carry Rego sources.
const maxMessage = 64 << 20

// Client is an xDS client of prism xds for one extproc.
type Client struct {
	applier Applier
	opts    Options
	log     *slog.Logger
	node    *corev3.Node
	dial    []grpc.DialOption

	ready     chan struct{}
	readyOnce sync.Once

	// The fields below belong to Run's goroutine.
	applied    set
	appliedCfg config
	hasApplied bool
	// synced is set once a stream has had its first response of every type.
	synced bool
	// cache is the set loaded from CachePath, until it has been tried;
	// fallback fires when the control plane took too long at start.
	cache      set
	cacheInfo  cacheFile
	cacheTried bool
	fallback   <-chan time.Time
}

// New makes a Client; Run starts it.
func New(applier Applier, opts Options) (*Client, error) {
	if opts.Addr == "" {
		return nil, errors.New("xdsclient: the control plane address is empty")
	}
	if opts.NodeID == "" {
		return nil, errors.New("xdsclient: the node id is empty")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.InitialTimeout <= 0 {
		opts.InitialTimeout = 5 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	opts.MinBackoff = min(opts.MinBackoff, opts.MaxBackoff)
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 30 * time.Second
	}
	if opts.ApplyTimeout <= 0 {
		opts.ApplyTimeout = time.Minute
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)),
		// The server permits pings every 10s; a dead control plane is found
		// within Time+Timeout and the stream reconnects.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	return &Client{
		applier: applier,
		opts:    opts,
		log:     opts.Logger,
		node:    &corev3.Node{Id: opts.NodeID, Cluster: resource.ClusterExtproc, UserAgentName: "prism-extproc"},
		dial:    append(dial, opts.DialOptions...),
		ready:   make(chan struct{}),
		applied: set{},
	}, nil
}

// Ready is closed once a config is in force: the control plane's (the
// first time a stream has every type), or the cache's when the control
// plane is unreachable at start.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// Run follows the control plane until ctx ends, reconnecting with
// jittered exponential backoff when the stream fails. The config in force
// stays in force meanwhile. Call Run once.
func (c *Client) Run(ctx context.Context) error {
	c.loadCache()
	if c.cache != nil {
		t := time.NewTimer(c.opts.InitialTimeout)
		defer t.Stop()
		c.fallback = t.C
	}
	attempt := 0
	for {
		got, err := c.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRestart) {
			continue
		}
		if !c.synced {
			c.tryCache(ctx)
		}
		if got {
			attempt = 0
		}
		wait := backoff(c.opts.MinBackoff, c.opts.MaxBackoff, attempt)
		attempt++
		c.log.Warn("xds stream to the control plane failed; keeping the config in force and reconnecting",
			"addr", c.opts.Addr, "err", err, "retry_in", wait.Round(time.Millisecond).String(), "attempt", attempt, "has_config", c.hasApplied)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the wait before reconnect attempt n (from 0): lo doubled n
// times, at most hi, then jittered down by up to half so that a fleet of
// extprocs does not reconnect in step after a control plane restart.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// loadCache reads CachePath for a start without the control plane.
func (c *Client) loadCache() {
	if c.opts.CachePath == "" {
		return
	}
	s, info, err := loadCache(c.opts.CachePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.log.Info("no cached xds config yet", "path", c.opts.CachePath)
	case err != nil:
		c.log.Warn("ignoring the cached xds config", "err", err)
	default:
		c.cache, c.cacheInfo = s, info
	}
}

// tryCache applies the cached set once, when the control plane has not
// given a full config yet. It reports whether the cache is now in force.
func (c *Client) tryCache(ctx context.Context) bool {
	if c.cacheTried {
		return false
	}
	c.cacheTried, c.fallback = true, nil
	s := c.cache
	c.cache = nil
	if s == nil {
		c.log.Warn("the control plane is unreachable and there is no cached config; waiting for it", "addr", c.opts.Addr, "cache", c.opts.CachePath)
		return false
	}
	cfg := build(s)
	if err := c.apply(ctx, cfg); err != nil {
		c.log.Error("the cached xds config cannot be applied; waiting for the control plane", "path", c.opts.CachePath, "err", err)
		return false
	}
	c.applied, c.appliedCfg, c.hasApplied = s, cfg, true
	c.markReady()
	c.log.Warn("the control plane is unreachable: serving the cached config until it answers",
		"path", c.opts.CachePath, "saved_at", c.cacheInfo.SavedAt, "node", c.cacheInfo.Node,
		"backends", len(cfg.Backends), "namespaces", len(cfg.Namespaces))
	return true
}

func (c *Client) markReady() { c.readyOnce.Do(func() { close(c.ready) }) }

// markSynced notes that a stream has delivered every type once.
func (c *Client) markSynced() {
	c.synced, c.fallback = true, nil
	c.markReady()
	c.log.Info("xds in sync with the control plane", "addr", c.opts.Addr, "node", c.opts.NodeID,
		"backends", len(c.appliedCfg.Backends), "namespaces", len(c.appliedCfg.Namespaces), "held_out", c.appliedCfg.heldOut)
}

// apply runs the Applier within ApplyTimeout.
func (c *Client) apply(ctx context.Context, cfg config) error {
	actx, cancel := context.WithTimeout(ctx, c.opts.ApplyTimeout)
	defer cancel()
	return c.applier.Apply(actx, cfg.DevConfig)
}

// install makes s the set in force: the Applier runs when the config
// differs from the one in force, and a changed set is written to the
// cache. On error nothing changes. attrs describe the cause, for the log.
func (c *Client) install(ctx context.Context, s set, attrs ...any) error {
	cfg := build(s)
	for _, n := range cfg.heldOut {
		c.log.Debug("xds namespace held out until its backend arrives", "namespace", n)
	}
	if !c.hasApplied || !cfg.equal(c.appliedCfg) {
		if err := c.apply(ctx, cfg); err != nil {
			return err
		}
	}
	changed := !c.hasApplied || !sameVersions(c.applied, s)
	c.applied, c.appliedCfg, c.hasApplied = s.clone(), cfg, true
	if !changed {
		return nil
	}
	c.log.Info("xds config applied", append(attrs,
		"backends", len(cfg.Backends), "namespaces", len(cfg.Namespaces), "held_out", cfg.heldOut)...)
	if c.opts.CachePath != "" {
		if err := saveCache(c.opts.CachePath, c.opts.NodeID, c.applied, time.Now()); err != nil {
			c.log.Warn("could not write the xds cache; a restart without the control plane will not serve this config", "err", err)
		}
	}
	return nil
}

// shortType shortens a Prism type URL for logs.
func shortType(typeURL string) string {
	return strings.TrimPrefix(typeURL, "type.googleapis.com/prism.config.v1.")
}
