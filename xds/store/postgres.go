package store

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

var postgresDialect = dialect{
	name: "postgres",
	schema: []string{
		`CREATE TABLE IF NOT EXISTS prism_xds_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)`,
		`INSERT INTO prism_xds_meta (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS prism_xds_resources (
			kind    TEXT NOT NULL,
			name    TEXT NOT NULL,
			body    TEXT NOT NULL,
			version BIGINT NOT NULL,
			PRIMARY KEY (kind, name))`,
		valuesTable,
	},
	// The row lock on the version serialises writers across replicas; under
	// READ COMMITTED the resources read after it include every earlier commit.
	lockVersion: `SELECT version FROM prism_xds_meta WHERE id = 1 FOR UPDATE`,
	numbered:    true,
	// CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin.
	prepareTx: `SELECT pg_advisory_xact_lock(7431001)`,
}

// OpenPostgres opens the state tables in the database (and search_path
// schema) a DSN names, creating them when missing.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres store: connect: %w", err)
	}
	s, err := newSQLStore(ctx, db, postgresDialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
