// Package pgtest gives tests a private schema on a Postgres test server.
//
// It is a non-test file so the tests of any package in the module can import
// it; nothing outside tests should.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the test server; PRISM_TEST_POSTGRES overrides it.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerDSN returns PRISM_TEST_POSTGRES, or DefaultDSN when it is unset.
func ServerDSN() string {
	if dsn := os.Getenv("PRISM_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// Schema returns a DSN whose search_path is a fresh schema named prefix
// followed by random hex, dropped when t ends. An unreachable server fails
// the test unless PRISM_SKIP_POSTGRES=1, which skips it instead.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := ServerDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, WithParam(t, dsn, "connect_timeout", "5"))
	if err != nil {
		if os.Getenv("PRISM_SKIP_POSTGRES") == "1" {
			t.Skipf("Postgres unreachable and PRISM_SKIP_POSTGRES=1: %v", err)
		}
		t.Fatalf("Postgres unreachable (set PRISM_TEST_POSTGRES, or PRISM_SKIP_POSTGRES=1 to skip): %v", err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// Generous: dropping a schema full of graph tables can be slow.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithParam(t, dsn, "search_path", schema)
}

// WithParam sets a connection parameter in a URL or keyword/value DSN.
func WithParam(t testing.TB, dsn, name, value string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse DSN: %v", err)
		}
		q := u.Query()
		q.Set(name, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + name + "=" + value
}
