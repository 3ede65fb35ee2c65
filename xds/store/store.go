// Package store persists the desired state of the control plane, so that a
// restart of `prism xds` loses nothing. SQLite is the default; Postgres is
// used when given a DSN, which also lets several control plane replicas share
// one state.
//
// Both are one implementation over database/sql with a small dialect: a table
// of resources (kind, name, protojson body, version) and a one-row table
// holding the state version. Update runs read-modify-write in one
// transaction that holds the database's write lock (BEGIN IMMEDIATE in
// SQLite, SELECT ... FOR UPDATE in Postgres), so validation inside it always
// sees the state it changes, even with several writers.
package store

import (
	"context"
	"errors"
	"strings"

	"github.com/prism-gw/prism/xds/desired"
)

// Store persists the desired state.
type Store interface {
	// Load returns the current state.
	Load(ctx context.Context) (*desired.State, error)
	// Update applies change to a copy of the current state and, when change
	// succeeds, the result validates and differs from the current state,
	// stores it under the next version. It returns the state now in force and
	// whether it changed. When change fails nothing is written and its error
	// is returned as is.
	Update(ctx context.Context, change func(*desired.State) error) (*desired.State, bool, error)
	// Close releases the database.
	Close() error
}

// ErrInvalid marks an Update whose resulting state failed validation.
var ErrInvalid = errors.New("invalid desired state")

// Open opens the store a DSN names: a postgres:// or postgresql:// URL (or
// a libpq key=value string) selects Postgres; anything else is the path of a
// SQLite file, created when missing.
func Open(ctx context.Context, dsn string) (Store, error) {
	if IsPostgres(dsn) {
		return OpenPostgres(ctx, dsn)
	}
	return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
}

// IsPostgres reports whether a DSN names a Postgres database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") ||
		strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname=")
}
