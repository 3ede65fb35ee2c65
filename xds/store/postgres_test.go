package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-gw/prism/xds/store"
	"github.com/prism-gw/prism/xds/store/storetest"
)

// defaultDSN is the test server; PRISM_TEST_POSTGRES overrides it.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDSN returns a DSN whose search_path is a fresh schema, dropped when t
// ends. An unreachable server fails the test unless PRISM_SKIP_POSTGRES=1.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("PRISM_TEST_POSTGRES")
	if dsn == "" {
		dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("PRISM_SKIP_POSTGRES") == "1" {
			t.Skipf("Postgres unreachable and PRISM_SKIP_POSTGRES=1: %v", err)
		}
		t.Fatalf("Postgres unreachable (set PRISM_TEST_POSTGRES, or PRISM_SKIP_POSTGRES=1 to skip): %v", err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	schema := "prism_xds_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func(t *testing.T) store.Store {
		dsn := testDSN(t)
		return func(t *testing.T) store.Store {
			if !store.IsPostgres(dsn) {
				t.Fatalf("IsPostgres(%s) = false", dsn)
			}
			s, err := store.Open(t.Context(), dsn)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}
