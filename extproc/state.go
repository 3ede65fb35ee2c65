package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/cache"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

// Defaults of a namespace's limits.
const (
	defaultMaxValueBytes  = 1 << 20
	defaultRequestTimeout = 5 * time.Second
)

// namespace is a namespace ready to serve: its config and open backend.
// Exactly one of the stores is set, by the namespace's abstraction.
type namespace struct {
	cfg      *configv1.Namespace
	kv       kv.Store
	ts       ts.Store
	graph    graph.Store
	maxValue int64
	timeout  time.Duration
	// policy is set when requests are decided by the policy: the namespace
	// has a PII schema or access lists. Open namespaces without PII skip it.
	policy *policies.Engine
	access policies.Access
	fields []policies.Field // the PII schema as the policy sees it
	pii    *pii.Schema      // nil without a PII schema
	// mig is set while the namespace migrates; kv is then its primary.
	mig *migration
	// tsTail routes tails below a handover's floor (tsmigrate.go).
	tsTail *tailRoute
	// backend names the backend that answers: the namespace's, or the
	// migration's primary (for metrics and traces).
	backend string
}

// state is one immutable generation of config. Requests read it through an
// atomic pointer, so a config change never blocks or tears a request.
type state struct {
	namespaces map[string]*namespace
}

// storeKey names an open store: one per backend and abstraction, shared by
// the namespaces on that backend.
type storeKey struct {
	backend     string
	abstraction configv1.Abstraction
}

// openStore is a backend opened for a config; kept across config changes so
// that an unchanged backend keeps its connections.
type openStore struct {
	cfg   *configv1.Backend
	store io.Closer // kv.Store, ts.Store or graph.Store
}

// driverDSN maps a backend config to a driver name and its DSN; the
// mapping lives in xds/config so that `prism migrate backfill` opens a
// backend exactly as extproc does.
func driverDSN(b *configv1.Backend) (driver, dsn string, err error) {
	return config.DriverDSN(b)
}

// openFor opens the store of one abstraction on a backend.
func openFor(ctx context.Context, a configv1.Abstraction, b *configv1.Backend) (io.Closer, error) {
	driver, dsn, err := driverDSN(b)
	if err != nil {
		return nil, err
	}
	switch a {
	case configv1.Abstraction_KEYVALUE:
		if !contains(kv.Drivers(), driver) {
			return nil, fmt.Errorf("backend %s (%s) cannot serve keyvalue (drivers: %v)", b.GetName(), driver, kv.Drivers())
		}
		return kv.Open(ctx, driver, dsn)
	case configv1.Abstraction_TIMESERIES:
		if !contains(ts.Drivers(), driver) {
			return nil, fmt.Errorf("backend %s (%s) cannot serve timeseries (drivers: %v)", b.GetName(), driver, ts.Drivers())
		}
		return ts.Open(ctx, driver, dsn)
	case configv1.Abstraction_GRAPH:
		if !contains(graph.Drivers(), driver) {
			return nil, fmt.Errorf("backend %s (%s) cannot serve graph (drivers: %v)", b.GetName(), driver, graph.Drivers())
		}
		return graph.Open(ctx, driver, dsn)
	}
	return nil, fmt.Errorf("abstraction %s is not served by this extproc yet", a)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Apply validates a new config, opens the backends it needs and makes it the
// config in force. On any error the config in force stays as it was.
func (s *Server) Apply(ctx context.Context, cfg *configv1.DevConfig) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	backends, namespaces := cfg.GetBackends(), cfg.GetNamespaces()

	byName := make(map[string]*configv1.Backend, len(backends))
	for _, b := range backends {
		if err := configv1.ValidateName(b.GetName()); err != nil {
			return fmt.Errorf("backend: %w", err)
		}
		if _, dup := byName[b.GetName()]; dup {
			return fmt.Errorf("backend %s declared twice", b.GetName())
		}
		byName[b.GetName()] = b
	}
	// Policies first: one that cannot be compiled refuses the whole config
	// before any backend is opened (see policyset.go).
	pols, err := s.preparePolicies(ctx, cfg.GetPolicies())
	if err != nil {
		return err
	}
	s.applying = pols
	defer func() { s.applying = nil }()
	next := &state{namespaces: make(map[string]*namespace, len(namespaces))}
	opened := map[storeKey]*openStore{}
	var errs []error
	migrations := make(map[string]*configv1.Migration, len(cfg.GetMigrations()))
	aborted := map[string]*configv1.Migration{}
	for _, m := range cfg.GetMigrations() {
		if err := checkPhase(s.migSeen[m.GetNamespace()], m); err != nil {
			errs = append(errs, err)
		}
		switch {
		case activeMigration(m.GetPhase()):
			migrations[m.GetNamespace()] = m
		case m.GetPhase() == configv1.Migration_ABORTED:
			aborted[m.GetNamespace()] = m
		}
	}
	for _, n := range namespaces {
		if _, dup := next.namespaces[n.GetNamespace()]; dup {
			errs = append(errs, fmt.Errorf("namespace %s declared twice", n.GetNamespace()))
			continue
		}
		ns, err := s.prepareNamespace(ctx, n, migrations[n.GetNamespace()], aborted[n.GetNamespace()], byName, opened)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next.namespaces[n.GetNamespace()] = ns
	}
	if err := errors.Join(errs...); err != nil {
		// Close only what this attempt opened; stores in force stay open.
		for k, o := range opened {
			if s.stores[k] != o {
				o.store.Close()
			}
		}
		return err
	}
	var retired []*openStore
	for k, o := range s.stores {
		if opened[k] != o {
			retired = append(retired, o)
		}
	}
	s.endMigrations(cfg.GetMigrations(), opened)
	s.stores = opened
	s.policies = pols
	s.installMigrations(next, cfg.GetMigrations())
	s.traceStores(next)
	s.state.Store(next)
	s.retire(retired)
	return nil
}

// prepareNamespace checks one namespace and opens (or reuses) its backend.
// m is the namespace's migration when one is active, aborted its aborted
// one, if any.
func (s *Server) prepareNamespace(ctx context.Context, n *configv1.Namespace, m, aborted *configv1.Migration, backends map[string]*configv1.Backend, opened map[storeKey]*openStore) (*namespace, error) {
	name := n.GetNamespace()
	if err := configv1.ValidateName(name); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	b, ok := backends[n.GetBackend()]
	if !ok {
		return nil, fmt.Errorf("namespace %s: unknown backend %q", name, n.GetBackend())
	}
	o, err := s.openStore(ctx, storeKey{backend: b.GetName(), abstraction: n.GetAbstraction()}, b, opened)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	ns := &namespace{cfg: n, maxValue: defaultMaxValueBytes, timeout: defaultRequestTimeout, backend: b.GetName()}
	if err := s.preparePolicy(ctx, n, ns); err != nil {
		return nil, err
	}
	if l := n.GetLimits(); l != nil {
		if l.GetMaxValueBytes() > 0 {
			ns.maxValue = int64(l.GetMaxValueBytes())
		}
		if d := l.GetRequestTimeout().AsDuration(); d > 0 {
			ns.timeout = d
		}
	}
	if m != nil {
		return ns, s.prepareMigration(ctx, n, m, backends, o, opened, ns)
	}
	switch st := o.store.(type) {
	case kv.Store:
		ns.kv = st
		if s.cache != nil {
			ns.kv = cache.New(st, s.cache, cache.Options{
				Backend:       b.GetName(),
				TTL:           n.GetCache().GetTtl().AsDuration(), // 0: invalidate only
				MaxValueBytes: int(n.GetCache().GetMaxValueBytes()),
			})
		}
	case graph.Store:
		ns.graph = st
	case ts.Store:
		ns.ts = st
		if err := st.EnsureNamespace(ctx, name, tsOptions(n)); err != nil {
			return nil, fmt.Errorf("namespace %s: provisioning on backend %s: %w", name, b.GetName(), err)
		}
		if err := s.prepareTailRoute(ctx, n, aborted, backends, opened, ns); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// openStore returns the open store of key: one this Apply already opened,
// the one in force when its backend config is unchanged, or a new one.
func (s *Server) openStore(ctx context.Context, key storeKey, b *configv1.Backend, opened map[storeKey]*openStore) (*openStore, error) {
	if o, ok := opened[key]; ok {
		return o, nil
	}
	o, ok := s.stores[key]
	if !ok || !proto.Equal(o.cfg, b) {
		st, err := openFor(ctx, key.abstraction, b)
		if err != nil {
			return nil, err
		}
		o = &openStore{cfg: b, store: st}
	}
	opened[key] = o
	return o, nil
}

// tsOptions derives a namespace's TimeSeries options from its config.
func tsOptions(n *configv1.Namespace) ts.NamespaceOptions {
	return ts.NamespaceOptions{Retention: time.Duration(n.GetRetentionDays()) * 24 * time.Hour}
}

// retire closes stores no longer in the config once requests that may still
// hold them have had time to finish.
func (s *Server) retire(stores []*openStore) {
	if len(stores) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		timer := time.NewTimer(s.retireAfter)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-s.closing:
		}
		for _, o := range stores {
			if err := o.store.Close(); err != nil {
				s.log.Warn("closing retired backend", "backend", o.cfg.GetName(), "err", err)
			}
		}
	}()
}
