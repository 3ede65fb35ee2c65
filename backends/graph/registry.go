package graph

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Opener opens a store from a driver-specific DSN (a file path for sqlite, a
// connection string for postgres, an endpoint URL for neptune).
type Opener func(ctx context.Context, dsn string) (Store, error)

var (
	mu      sync.RWMutex
	drivers = map[string]Opener{}
)

// Register makes a driver available by name. It is called from driver
// packages' init functions and panics on a duplicate name, like database/sql.
func Register(name string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := drivers[name]; dup {
		panic("graph: Register called twice for driver " + name)
	}
	drivers[name] = open
}

// Open opens a store with the named driver.
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	mu.RLock()
	open, ok := drivers[driver]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("graph: unknown driver %q (have %v)", driver, Drivers())
	}
	return open(ctx, dsn)
}

// Drivers lists registered driver names.
func Drivers() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
