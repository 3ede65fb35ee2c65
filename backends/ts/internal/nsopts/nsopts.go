// Package nsopts keeps the namespaces a store was told about with
// EnsureNamespace, and their options.
package nsopts

import (
	"fmt"
	"sync"

	"github.com/prism-gw/prism/backends/ts"
)

// Registry maps namespaces to their options. The zero value is ready to
// use; it is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]ts.NamespaceOptions
}

// Get returns the options of ns, or ts.ErrNotFound.
func (r *Registry) Get(ns string) (ts.NamespaceOptions, error) {
	r.mu.RLock()
	opts, ok := r.m[ns]
	r.mu.RUnlock()
	if !ok {
		return opts, fmt.Errorf("%w: %q (not provisioned in this store)", ts.ErrNotFound, ns)
	}
	return opts, nil
}

// Set records ns with opts.
func (r *Registry) Set(ns string, opts ts.NamespaceOptions) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]ts.NamespaceOptions)
	}
	r.m[ns] = opts
}

// Delete forgets ns.
func (r *Registry) Delete(ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, ns)
}

// All returns a copy of the registry.
func (r *Registry) All() map[string]ts.NamespaceOptions {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]ts.NamespaceOptions, len(r.m))
	for ns, o := range r.m {
		out[ns] = o
	}
	return out
}

// Check validates a namespace name and options for EnsureNamespace.
func Check(ns string, opts ts.NamespaceOptions) error {
	if err := ts.ValidateNamespace(ns); err != nil {
		return err
	}
	return opts.Validate()
}
