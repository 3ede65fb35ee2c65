// Package desired holds the desired state of a Prism deployment — backends,
// namespaces, migrations, policies and extproc pools — as operators declared
// it. It is plain data: the store persists it, validation checks it, and the
// translator turns it into xDS resources.
package desired

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

// Kind names a kind of resource in the desired state.
type Kind string

// The kinds of resources, each stored under its name (a migration under the
// name of its namespace).
const (
	Backend   Kind = "backend"
	Pool      Kind = "pool"
	Policy    Kind = "policy"
	Namespace Kind = "namespace"
	Migration Kind = "migration"
)

// Kinds lists every kind in dependency order: a kind only refers to kinds
// before it. Pushing in this order (and deleting in reverse) means a client
// never sees a reference to a resource it does not have yet.
func Kinds() []Kind { return []Kind{Backend, Pool, Policy, Namespace, Migration} }

// State is one version of the desired state. Maps are keyed by resource
// name; messages are never modified in place once in a State, so clones may
// share them.
type State struct {
	// Version increases with every accepted change; 0 is the empty state.
	Version    int64
	Backends   map[string]*configv1.Backend
	Pools      map[string]*configv1.ExtprocPool
	Policies   map[string]*configv1.Policy
	Namespaces map[string]*configv1.Namespace
	Migrations map[string]*configv1.Migration
}

// New returns an empty state.
func New() *State {
	return &State{
		Backends:   map[string]*configv1.Backend{},
		Pools:      map[string]*configv1.ExtprocPool{},
		Policies:   map[string]*configv1.Policy{},
		Namespaces: map[string]*configv1.Namespace{},
		Migrations: map[string]*configv1.Migration{},
	}
}

// Clone copies the maps (not the messages, which are immutable by
// convention), so that a change can be tried on the clone.
func (s *State) Clone() *State {
	return &State{
		Version:    s.Version,
		Backends:   cloneMap(s.Backends),
		Pools:      cloneMap(s.Pools),
		Policies:   cloneMap(s.Policies),
		Namespaces: cloneMap(s.Namespaces),
		Migrations: cloneMap(s.Migrations),
	}
}

func cloneMap[M proto.Message](m map[string]M) map[string]M {
	if m == nil {
		return map[string]M{}
	}
	return maps.Clone(m)
}

// NewMessage returns an empty message of a kind, for decoding.
func NewMessage(k Kind) (proto.Message, error) {
	switch k {
	case Backend:
		return &configv1.Backend{}, nil
	case Pool:
		return &configv1.ExtprocPool{}, nil
	case Policy:
		return &configv1.Policy{}, nil
	case Namespace:
		return &configv1.Namespace{}, nil
	case Migration:
		return &configv1.Migration{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", k)
}

// Name is the name a message is stored under.
func Name(m proto.Message) string {
	switch m := m.(type) {
	case *configv1.Backend:
		return m.GetName()
	case *configv1.ExtprocPool:
		return m.GetName()
	case *configv1.Policy:
		return m.GetName()
	case *configv1.Namespace:
		return m.GetNamespace()
	case *configv1.Migration:
		return m.GetNamespace()
	}
	return ""
}

// Items returns the resources of one kind as generic messages.
func (s *State) Items(k Kind) map[string]proto.Message {
	out := map[string]proto.Message{}
	switch k {
	case Backend:
		copyInto(out, s.Backends)
	case Pool:
		copyInto(out, s.Pools)
	case Policy:
		copyInto(out, s.Policies)
	case Namespace:
		copyInto(out, s.Namespaces)
	case Migration:
		copyInto(out, s.Migrations)
	}
	return out
}

func copyInto[M proto.Message](dst map[string]proto.Message, src map[string]M) {
	for k, v := range src {
		dst[k] = v
	}
}

// Get returns one resource.
func (s *State) Get(k Kind, name string) (proto.Message, bool) {
	m, ok := s.Items(k)[name]
	return m, ok
}

// Put stores a resource under its name, replacing any of the same kind and
// name.
func (s *State) Put(m proto.Message) error {
	name := Name(m)
	switch m := m.(type) {
	case *configv1.Backend:
		s.Backends[name] = m
	case *configv1.ExtprocPool:
		s.Pools[name] = m
	case *configv1.Policy:
		s.Policies[name] = m
	case *configv1.Namespace:
		s.Namespaces[name] = m
	case *configv1.Migration:
		s.Migrations[name] = m
	default:
		return fmt.Errorf("desired state cannot hold a %T", m)
	}
	return nil
}

// Delete removes a resource and reports whether it existed.
func (s *State) Delete(k Kind, name string) bool {
	_, ok := s.Get(k, name)
	switch k {
	case Backend:
		delete(s.Backends, name)
	case Pool:
		delete(s.Pools, name)
	case Policy:
		delete(s.Policies, name)
	case Namespace:
		delete(s.Namespaces, name)
	case Migration:
		delete(s.Migrations, name)
	}
	return ok
}

// Equal reports whether two states hold the same resources (versions are
// not compared).
func Equal(a, b *State) bool {
	for _, k := range Kinds() {
		x, y := a.Items(k), b.Items(k)
		if len(x) != len(y) {
			return false
		}
		for name, m := range x {
			if n, ok := y[name]; !ok || !proto.Equal(m, n) {
				return false
			}
		}
	}
	return true
}

// SortedNames returns the names of a kind in byte order, so that everything
// derived from a state is deterministic.
func (s *State) SortedNames(k Kind) []string {
	return slices.Sorted(maps.Keys(s.Items(k)))
}

// DevConfig returns the backends, policies and namespaces in name order,
// the shape that `prism dev` reads and config.Validate checks (policies
// included, so that a namespace's policy reference is checked).
func (s *State) DevConfig() *configv1.DevConfig {
	cfg := &configv1.DevConfig{}
	for _, name := range s.SortedNames(Backend) {
		cfg.Backends = append(cfg.Backends, s.Backends[name])
	}
	for _, name := range s.SortedNames(Policy) {
		cfg.Policies = append(cfg.Policies, s.Policies[name])
	}
	for _, name := range s.SortedNames(Namespace) {
		cfg.Namespaces = append(cfg.Namespaces, s.Namespaces[name])
	}
	return cfg
}

// Validate checks the whole state and reports every problem at once. A
// state that fails never replaces the one in force.
func (s *State) Validate() error {
	var errs []error
	for _, k := range Kinds() {
		for name, m := range s.Items(k) {
			if Name(m) != name {
				errs = append(errs, fmt.Errorf("%s %q is stored under the name %q", k, Name(m), name))
			}
		}
	}
	if err := config.Validate(s.DevConfig()); err != nil {
		errs = append(errs, err)
	}
	var weight uint64
	for _, name := range s.SortedNames(Pool) {
		errs = append(errs, config.ValidatePool(s.Pools[name])...)
		weight += uint64(s.Pools[name].GetWeight())
	}
	if len(s.Pools) > 0 && weight == 0 {
		errs = append(errs, fmt.Errorf("every extproc pool has weight 0; Envoy would have no extproc to send requests to"))
	}
	for _, name := range s.SortedNames(Migration) {
		errs = append(errs, config.ValidateMigration(s.Migrations[name], s.Namespaces, s.Backends)...)
	}
	return errors.Join(errs...)
}

// Users lists, in name order, the namespaces and migrations that refer to a
// backend; a backend in use cannot be deleted.
func (s *State) Users(backend string) []string {
	var users []string
	for _, name := range s.SortedNames(Namespace) {
		if s.Namespaces[name].GetBackend() == backend {
			users = append(users, "namespace "+name)
		}
	}
	for _, name := range s.SortedNames(Migration) {
		if m := s.Migrations[name]; m.GetFrom() == backend || m.GetTo() == backend {
			users = append(users, "migration of "+name)
		}
	}
	return users
}

// GetVersion returns the version, or 0 for a nil state.
func (s *State) GetVersion() int64 {
	if s == nil {
		return 0
	}
	return s.Version
}
