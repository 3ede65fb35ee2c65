package xdsclient

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/resource"
)

func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "xds-cache.json")
	want := set{
		resource.BackendType:   {"pg": {version: "h1", msg: &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "postgres://u:secret@h/db"}}}}},
		resource.PolicyType:    {"default": {version: "h2", msg: &configv1.Policy{Name: "default", Modules: map[string]string{"a.rego": "package a"}}}},
		resource.NamespaceType: {"orders": {version: "h3", msg: kvNamespace("orders", "pg")}},
	}
	saved := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := saveCache(path, "ep-1", want, saved); err != nil {
		t.Fatal(err)
	}
	// Saving again replaces the file in place and leaves no temporary file.
	if err := saveCache(path, "ep-1", want, saved); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("cache directory holds %d files, want only the cache", len(entries))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode = %v (%v); it holds DSNs, want 0600", fi.Mode().Perm(), err)
	}
	got, info, err := loadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Node != "ep-1" || !info.SavedAt.Equal(saved) {
		t.Fatalf("cache info = %+v", info)
	}
	if !sameVersions(got, want) {
		t.Fatalf("loaded versions differ: %v", got)
	}
	for typeURL, m := range want {
		for name, e := range m {
			if !proto.Equal(got[typeURL][name].msg, e.msg) {
				t.Errorf("%s %s: loaded %v, want %v", typeURL, name, got[typeURL][name].msg, e.msg)
			}
		}
	}
}

func TestLoadCacheErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := loadCache(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	tests := []struct{ name, body string }{
		{"not json", "{"},
		{"other format", `{"format": 99}`},
		{"bad resource", `{"format": 1, "types": {"` + resource.NamespaceType + `": [{"name": "a", "resource": {"nope": 1}}]}}`},
		{"repeated name", `{"format": 1, "types": {"` + resource.NamespaceType + `": [{"name": "a", "resource": {}}, {"name": "a", "resource": {}}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := loadCache(path); err == nil {
				t.Fatal("loadCache accepted it")
			}
		})
	}
	t.Run("unknown type is skipped", func(t *testing.T) {
		path := filepath.Join(dir, "future.json")
		body := `{"format": 1, "types": {"type.googleapis.com/prism.config.v1.Future": [{"name": "x", "resource": {"z": 1}}]}}`
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, _, err := loadCache(path); err != nil || len(s) != 0 {
			t.Fatalf("loadCache = %v, %v; want an empty set", s, err)
		}
	})
}
