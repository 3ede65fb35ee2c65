package store_test

import (
	"path/filepath"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/store"
)

// TestValues: a value survives a reopen, is replaced by a later put, and
// never changes the state version (so it never causes an xDS push).
func TestValues(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "xds.db") },
		"postgres": testDSN,
	} {
		t.Run(name, func(t *testing.T) {
			dsn := dsn(t)
			open := func() store.Values {
				s, err := store.Open(t.Context(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				v, ok := s.(store.Values)
				if !ok {
					t.Fatalf("%T does not implement store.Values", s)
				}
				return v
			}
			v := open()
			if _, ok, err := v.GetValue(t.Context(), "migration/orders"); ok || err != nil {
				t.Fatalf("GetValue of a missing name = %v, %v", ok, err)
			}
			for _, body := range []string{`{"id":"a"}`, `{"id":"b"}`} {
				if err := v.PutValue(t.Context(), "migration/orders", []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
			v = open()
			got, ok, err := v.GetValue(t.Context(), "migration/orders")
			if err != nil || !ok || string(got) != `{"id":"b"}` {
				t.Errorf("after reopen: %q %v %v, want the last put", got, ok, err)
			}
			st, err := v.(store.Store).Load(t.Context())
			if err != nil || st.Version != 0 {
				t.Errorf("values changed the state version to %d (%v)", st.GetVersion(), err)
			}
			// A desired-state update leaves values alone.
			if _, _, err := v.(store.Store).Update(t.Context(), func(s *desired.State) error {
				return s.Put(&configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "x.db"}}})
			}); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := v.GetValue(t.Context(), "migration/orders"); string(got) != `{"id":"b"}` {
				t.Errorf("after an update: %q", got)
			}
		})
	}
}
