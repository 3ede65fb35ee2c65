package graph

import (
	"context"

	"github.com/prism-gw/prism/backends/internal/registry"
)

// Opener opens a store from a driver-specific DSN (a file path for sqlite, a
// connection string for postgres, an endpoint URL for neptune).
type Opener func(ctx context.Context, dsn string) (Store, error)

var drivers = registry.New[Store]("graph")

// Register makes a driver available by name. It is called from driver
// packages' init functions and panics on a duplicate name, like database/sql.
func Register(name string, open Opener) {
	drivers.Register(name, open)
}

// Open opens a store with the named driver.
func Open(ctx context.Context, driver, dsn string) (Store, error) {
	return drivers.Open(ctx, driver, dsn)
}

// Drivers lists registered driver names.
func Drivers() []string {
	return drivers.Drivers()
}
