package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Values is control-plane bookkeeping kept next to the desired state but
// outside it: rows here never change the state version and never cause an
// xDS push (a migration's backfill checkpoint and phase history live here).
// Both store dialects implement it; callers find it with a type assertion.
type Values interface {
	// GetValue returns the value stored under name; ok is false when none is.
	GetValue(ctx context.Context, name string) (value []byte, ok bool, err error)
	// PutValue stores value under name, replacing any.
	PutValue(ctx context.Context, name string, value []byte) error
}

// valuesTable is in both dialects' schema.
const valuesTable = `CREATE TABLE IF NOT EXISTS prism_xds_values (name TEXT PRIMARY KEY, value TEXT NOT NULL)`

// GetValue implements Values.
func (s *sqlStore) GetValue(ctx context.Context, name string) ([]byte, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT value FROM prism_xds_values WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s store: read value %s: %w", s.d.name, name, err)
	}
	return []byte(v), true, nil
}

// PutValue implements Values.
func (s *sqlStore) PutValue(ctx context.Context, name string, value []byte) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO prism_xds_values (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`), name, string(value))
	if err != nil {
		return fmt.Errorf("%s store: write value %s: %w", s.d.name, name, err)
	}
	return nil
}
