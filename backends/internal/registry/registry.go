// Package registry is the driver registry behind kv.Register, ts.Register
// and graph.Register: a name-to-opener map safe for concurrent use.
package registry

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Registry maps driver names to functions opening a store of type S. The
// zero value is not usable; use New.
type Registry[S any] struct {
	family  string // "kv", "ts", ...: the prefix of panics and errors
	mu      sync.RWMutex
	drivers map[string]func(ctx context.Context, dsn string) (S, error)
}

// New returns an empty registry for the named backend family.
func New[S any](family string) *Registry[S] {
	return &Registry[S]{family: family, drivers: map[string]func(context.Context, string) (S, error){}}
}

// Register makes a driver available by name. It panics on a duplicate
// name, like database/sql.
func (r *Registry[S]) Register(name string, open func(ctx context.Context, dsn string) (S, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.drivers[name]; dup {
		panic(r.family + ": Register called twice for driver " + name)
	}
	r.drivers[name] = open
}

// Open opens a store with the named driver.
func (r *Registry[S]) Open(ctx context.Context, driver, dsn string) (S, error) {
	r.mu.RLock()
	open, ok := r.drivers[driver]
	r.mu.RUnlock()
	if !ok {
		var zero S
		return zero, fmt.Errorf("%s: unknown driver %q (have %v)", r.family, driver, r.Drivers())
	}
	return open(ctx, dsn)
}

// Drivers lists registered driver names, sorted.
func (r *Registry[S]) Drivers() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
