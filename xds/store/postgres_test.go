package store_test

import (
	"testing"

	"github.com/prism-gw/prism/internal/pgtest"
	"github.com/prism-gw/prism/xds/store"
	"github.com/prism-gw/prism/xds/store/storetest"
)

// testDSN returns a DSN whose search_path is a fresh schema, dropped when t
// ends. An unreachable server fails the test unless PRISM_SKIP_POSTGRES=1.
func testDSN(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, "prism_xds_test_")
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
