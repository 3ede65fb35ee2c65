package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var sqliteDialect = dialect{
	name: "sqlite",
	schema: []string{
		`CREATE TABLE IF NOT EXISTS prism_xds_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`,
		`INSERT INTO prism_xds_meta (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS prism_xds_resources (
			kind    TEXT NOT NULL,
			name    TEXT NOT NULL,
			body    TEXT NOT NULL,
			version INTEGER NOT NULL,
			PRIMARY KEY (kind, name))`,
		valuesTable,
	},
	// BEGIN IMMEDIATE (see sqliteDSN) already holds the write lock.
	lockVersion: `SELECT version FROM prism_xds_meta WHERE id = 1`,
}

// OpenSQLite opens (creating if needed) the state database at path, and its
// directory.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite store: empty path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	// Admin writes are rare; one connection makes every transaction strictly
	// serial in this process, and busy_timeout covers other processes.
	db.SetMaxOpenConns(1)
	s, err := newSQLStore(ctx, db, sqliteDialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// sqliteDSN asks for durable commits (synchronous=FULL in WAL mode) and
// IMMEDIATE transactions, so Update takes the write lock before it reads.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}
