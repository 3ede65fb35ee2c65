package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Lister lists the recent records of a namespace, newest first (for the
// admin UI). Both FileLog and SQLLog implement it.
type Lister interface {
	Recent(ctx context.Context, namespace string, limit int) ([]Record, error)
}

// Store is an opened audit log: append, verify, list and close.
type Store interface {
	Log
	Lister
	Close() error
}

// Open opens the audit log an --audit-log value names: a database
// (postgres://DSN, sqlite://PATH, or a PATH ending in .db, .sqlite or
// .sqlite3) or else a JSON-lines file (OpenFile), creating it if missing.
func Open(ctx context.Context, spec string) (Store, error) {
	if spec == "" {
		return nil, fmt.Errorf("audit: no log given")
	}
	if IsSQLSpec(spec) {
		return OpenSQL(ctx, spec)
	}
	if err := os.MkdirAll(filepath.Dir(spec), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return OpenFile(spec)
}

// VerifySpec checks the log spec names, as Open understands it, without
// opening it for appends: safe while a server appends to it.
func VerifySpec(ctx context.Context, spec string) (int, error) {
	if IsSQLSpec(spec) {
		return VerifySQL(ctx, spec)
	}
	return VerifyFile(ctx, spec)
}
