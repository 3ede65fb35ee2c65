package store_test

import (
	"path/filepath"
	"testing"

	"github.com/prism-gw/prism/xds/store"
	"github.com/prism-gw/prism/xds/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "state", "xds.db")
		return func(t *testing.T) store.Store {
			s, err := store.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open(%s): %v", path, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}
