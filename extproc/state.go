package extproc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/backends/kv"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Defaults of a namespace's limits.
const (
	defaultMaxValueBytes  = 1 << 20
	defaultRequestTimeout = 5 * time.Second
)

// namespace is a namespace ready to serve: its config and open backend.
type namespace struct {
	cfg      *configv1.Namespace
	kv       kv.Store
	maxValue int64
	timeout  time.Duration
}

// state is one immutable generation of config. Requests read it through an
// atomic pointer, so a config change never blocks or tears a request.
type state struct {
	namespaces map[string]*namespace
}

// openStore is a backend opened for a config; kept across config changes so
// that an unchanged backend keeps its connections.
type openStore struct {
	cfg   *configv1.Backend
	store kv.Store
}

// kvDriver maps a backend config to a registered KV driver and its DSN.
func kvDriver(b *configv1.Backend) (driver, dsn string, err error) {
	switch d := b.GetDriver().(type) {
	case *configv1.Backend_Sqlite:
		if d.Sqlite.GetPath() == "" {
			return "", "", fmt.Errorf("backend %s: sqlite.path is empty", b.GetName())
		}
		return "sqlite", d.Sqlite.GetPath(), nil
	case *configv1.Backend_Postgres:
		if d.Postgres.GetDsn() == "" {
			return "", "", fmt.Errorf("backend %s: postgres.dsn is empty", b.GetName())
		}
		return "postgres", d.Postgres.GetDsn(), nil
	case nil:
		return "", "", fmt.Errorf("backend %s: no driver configured", b.GetName())
	default:
		return "", "", fmt.Errorf("backend %s: driver %T cannot serve keyvalue", b.GetName(), d)
	}
}

// Apply validates a new config, opens the backends it needs and makes it the
// config in force. On any error the config in force stays as it was.
func (s *Server) Apply(ctx context.Context, backends []*configv1.Backend, namespaces []*configv1.Namespace) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()

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
	opened := map[string]*openStore{}
	var errs []error
	for _, n := range namespaces {
		ns, err := s.prepareNamespace(ctx, n, byName, opened)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := next.namespaces[n.GetNamespace()]; dup {
			errs = append(errs, fmt.Errorf("namespace %s declared twice", n.GetNamespace()))
			continue
		}
		next.namespaces[n.GetNamespace()] = ns
	}
	if err := errors.Join(errs...); err != nil {
		// Close only what this attempt opened; stores in force stay open.
		for name, o := range opened {
			if s.stores[name] != o {
				o.store.Close()
			}
		}
		return err
	}
	var retired []*openStore
	for name, o := range s.stores {
		if opened[name] != o {
			retired = append(retired, o)
		}
	}
	s.stores = opened
	s.state.Store(next)
	s.retire(retired)
	return nil
}

// prepareNamespace checks one namespace and opens (or reuses) its backend.
func (s *Server) prepareNamespace(ctx context.Context, n *configv1.Namespace, backends map[string]*configv1.Backend, opened map[string]*openStore) (*namespace, error) {
	name := n.GetNamespace()
	if err := configv1.ValidateName(name); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	if n.GetAbstraction() != configv1.Abstraction_KEYVALUE {
		return nil, fmt.Errorf("namespace %s: abstraction %s is not served by this extproc yet", name, n.GetAbstraction())
	}
	b, ok := backends[n.GetBackend()]
	if !ok {
		return nil, fmt.Errorf("namespace %s: unknown backend %q", name, n.GetBackend())
	}
	o, ok := opened[b.GetName()]
	if !ok {
		if cur, ok := s.stores[b.GetName()]; ok && proto.Equal(cur.cfg, b) {
			o = cur
		} else {
			driver, dsn, err := kvDriver(b)
			if err != nil {
				return nil, fmt.Errorf("namespace %s: %w", name, err)
			}
			st, err := kv.Open(ctx, driver, dsn)
			if err != nil {
				return nil, fmt.Errorf("namespace %s: opening backend %s: %w", name, b.GetName(), err)
			}
			o = &openStore{cfg: b, store: st}
		}
		opened[b.GetName()] = o
	}
	ns := &namespace{cfg: n, kv: o.store, maxValue: defaultMaxValueBytes, timeout: defaultRequestTimeout}
	if l := n.GetLimits(); l != nil {
		if l.GetMaxValueBytes() > 0 {
			ns.maxValue = int64(l.GetMaxValueBytes())
		}
		if l.GetRequestTimeout() != nil {
			if d := l.GetRequestTimeout().AsDuration(); d > 0 {
				ns.timeout = d
			}
		}
	}
	return ns, nil
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
