package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/cache"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
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

// driverDSN maps a backend config to a driver name and its DSN; the driver
// name is the same in every abstraction's registry.
func driverDSN(b *configv1.Backend) (driver, dsn string, err error) {
	switch d := b.GetDriver().(type) {
	case *configv1.Backend_Sqlite:
		driver, dsn = "sqlite", d.Sqlite.GetPath()
	case *configv1.Backend_Postgres:
		driver, dsn = "postgres", d.Postgres.GetDsn()
	case *configv1.Backend_Nats:
		driver, dsn = "nats", d.Nats.GetUrl()
	case *configv1.Backend_Kafka:
		driver, dsn = "kafka", "kafka://"+strings.Join(d.Kafka.GetBrokers(), ",")
	case *configv1.Backend_Neptune:
		driver, dsn = "neptune", d.Neptune.GetEndpoint()
		if r := d.Neptune.GetRegion(); r != "" && dsn != "" {
			dsn += "?region=" + url.QueryEscape(r) // a region turns SigV4 signing on
		}
	case *configv1.Backend_Redis:
		return "", "", fmt.Errorf("backend %s: redis is a cache, not a primary backend", b.GetName())
	default:
		return "", "", fmt.Errorf("backend %s: no driver configured", b.GetName())
	}
	if dsn == "" {
		return "", "", fmt.Errorf("backend %s: %s needs its address or path", b.GetName(), driver)
	}
	return driver, dsn, nil
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
	next := &state{namespaces: make(map[string]*namespace, len(namespaces))}
	opened := map[storeKey]*openStore{}
	var errs []error
	for _, n := range namespaces {
		if _, dup := next.namespaces[n.GetNamespace()]; dup {
			errs = append(errs, fmt.Errorf("namespace %s declared twice", n.GetNamespace()))
			continue
		}
		ns, err := s.prepareNamespace(ctx, n, byName, opened)
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
	s.stores = opened
	s.state.Store(next)
	s.retire(retired)
	return nil
}

// prepareNamespace checks one namespace and opens (or reuses) its backend.
func (s *Server) prepareNamespace(ctx context.Context, n *configv1.Namespace, backends map[string]*configv1.Backend, opened map[storeKey]*openStore) (*namespace, error) {
	name := n.GetNamespace()
	if err := configv1.ValidateName(name); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	b, ok := backends[n.GetBackend()]
	if !ok {
		return nil, fmt.Errorf("namespace %s: unknown backend %q", name, n.GetBackend())
	}
	key := storeKey{backend: b.GetName(), abstraction: n.GetAbstraction()}
	o, ok := opened[key]
	if !ok {
		if cur, ok := s.stores[key]; ok && proto.Equal(cur.cfg, b) {
			o = cur
		} else {
			st, err := openFor(ctx, n.GetAbstraction(), b)
			if err != nil {
				return nil, fmt.Errorf("namespace %s: %w", name, err)
			}
			o = &openStore{cfg: b, store: st}
		}
		opened[key] = o
	}
	ns := &namespace{cfg: n, maxValue: defaultMaxValueBytes, timeout: defaultRequestTimeout}
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
	}
	return ns, nil
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
