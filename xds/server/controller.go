package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/model"
	"github.com/prism-gw/prism/xds/store"
	"github.com/prism-gw/prism/xds/translate"
)

// ControllerOptions configure a Controller. The zero value works.
type ControllerOptions struct {
	// Model holds the deployment settings of the translation.
	Model model.Options
	// Lookup resolves extproc endpoint host names; default the system
	// resolver.
	Lookup LookupFunc
	Logger *slog.Logger
}

// Controller keeps what a Server serves in step with the desired state in a
// Store: every accepted change is stored, translated and pushed.
type Controller struct {
	store store.Store
	srv   *Server
	model model.Options
	dns   *dnsCache
	log   *slog.Logger

	// mu serialises changes and resyncs in this process, so that pushes
	// follow the order of state versions.
	mu    sync.Mutex
	state *desired.State
}

// NewController makes a Controller; Start loads the state and pushes it.
func NewController(st store.Store, srv *Server, opts ControllerOptions) *Controller {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Lookup == nil {
		opts.Lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	return &Controller{store: st, srv: srv, model: opts.Model, dns: newDNSCache(opts.Lookup, opts.Logger), log: opts.Logger, state: desired.New()}
}

// Start loads the desired state and serves it. A stored state that no longer
// validates (say, after a downgrade) is still served as it is, with an
// error logged: refusing to start would take the whole data path down.
func (c *Controller) Start(ctx context.Context) error {
	st, err := c.store.Load(ctx)
	if err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		c.log.Error("the stored desired state does not validate; serving it anyway until it is fixed", "version", st.Version, "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serve(ctx, st)
}

// State returns the state in force.
func (c *Controller) State() *desired.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Update applies change to the desired state. The result must validate and
// translate, or nothing is stored and the error (wrapping store.ErrInvalid
// for validation and translation failures) is returned; the config in force
// stays. change may return its own errors, passed through as they are.
func (c *Controller) Update(ctx context.Context, change func(*desired.State) error) (*desired.State, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, changed, err := c.store.Update(ctx, func(next *desired.State) error {
		if err := change(next); err != nil {
			return err
		}
		if err := next.Validate(); err != nil {
			return fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		if _, err := c.translate(next); err != nil {
			return fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if err := c.serve(ctx, st); err != nil {
		// Stored but not served: Resync retries.
		return st, changed, fmt.Errorf("state %d stored but not pushed: %w", st.Version, err)
	}
	return st, changed, nil
}

// Resync reloads the state (another replica may have changed it) and
// re-resolves endpoint names, pushing when either changed.
func (c *Controller) Resync(ctx context.Context) error {
	st, err := c.store.Load(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.Version < c.state.Version {
		return nil
	}
	dnsChanged := c.dns.refresh(ctx, hosts(st))
	if st.Version == c.state.Version && !dnsChanged && c.srv.Served().StateVersion == st.Version {
		return nil
	}
	return c.push(st)
}

// Run resyncs every interval until ctx ends.
func (c *Controller) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Resync(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("xds resync failed", "err", err)
			}
		}
	}
}

// serve resolves, translates and pushes st; c.mu is held.
func (c *Controller) serve(ctx context.Context, st *desired.State) error {
	c.dns.refresh(ctx, hosts(st))
	return c.push(st)
}

// push translates and pushes st; c.mu is held.
func (c *Controller) push(st *desired.State) error {
	r, err := c.translate(st)
	if err != nil {
		return err
	}
	// The snapshot cache only uses the context to notify watches.
	if err := c.srv.Push(context.Background(), r); err != nil {
		return err
	}
	c.state = st
	return nil
}

func (c *Controller) translate(st *desired.State) (*translate.Resources, error) {
	m, err := model.Build(st, c.model, c.dns.resolve)
	if err != nil {
		return nil, err
	}
	return translate.Translate(m)
}

// hosts lists the host names of every extproc endpoint.
func hosts(st *desired.State) []string {
	var out []string
	for _, p := range st.Pools {
		for _, e := range p.GetEndpoints() {
			if ep, err := config.SplitEndpoint(e); err == nil {
				out = append(out, ep.Host)
			}
		}
	}
	return out
}
