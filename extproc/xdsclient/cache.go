package xdsclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/prism-gw/prism/xds/resource"
)

// cacheFormat is the layout version of the cache file.
const cacheFormat = 1

// cacheFile is the last applied set on disk: readable JSON (resources in
// protojson) so that an operator can see what an extproc would start with.
// It holds backend DSNs, hence owner-only permissions.
type cacheFile struct {
	Format  int                         `json:"format"`
	Node    string                      `json:"node"`
	SavedAt time.Time                   `json:"saved_at"`
	Types   map[string][]cachedResource `json:"types"`
}

type cachedResource struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Resource json.RawMessage `json:"resource"`
}

// saveCache writes s to path atomically: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced, so a
// crash leaves either the old file or the new one, never a torn one.
func saveCache(path, node string, s set, now time.Time) error {
	f := cacheFile{Format: cacheFormat, Node: node, SavedAt: now.UTC(), Types: map[string][]cachedResource{}}
	for _, typeURL := range resource.PrismTypes() {
		list := []cachedResource{}
		for _, name := range slices.Sorted(maps.Keys(s[typeURL])) {
			e := s[typeURL][name]
			b, err := protojson.Marshal(e.msg)
			if err != nil {
				return fmt.Errorf("xds cache: %s %s: %w", typeURL, name, err)
			}
			list = append(list, cachedResource{Name: name, Version: e.version, Resource: b})
		}
		f.Types[typeURL] = list
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	return writeAtomic(path, append(data, '\n'))
}

func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("xds cache: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("xds cache: syncing %s: %w", dir, err)
	}
	return nil
}

// loadCache reads a cache file. A missing file is an error wrapping
// os.ErrNotExist. Types this build does not know are skipped.
func loadCache(path string) (set, cacheFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, cacheFile{}, fmt.Errorf("xds cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, cacheFile{}, fmt.Errorf("xds cache %s: %w", path, err)
	}
	if f.Format != cacheFormat {
		return nil, cacheFile{}, fmt.Errorf("xds cache %s: format %d, this build reads %d", path, f.Format, cacheFormat)
	}
	s := set{}
	var errs []error
	for typeURL, list := range f.Types {
		if !resource.IsPrismType(typeURL) {
			continue
		}
		m := map[string]entry{}
		for _, r := range list {
			if _, dup := m[r.Name]; dup || r.Name == "" {
				errs = append(errs, fmt.Errorf("%s: empty or repeated name %q", typeURL, r.Name))
				continue
			}
			msg, err := newMessage(typeURL)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := protojson.Unmarshal(r.Resource, msg); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", typeURL, r.Name, err))
				continue
			}
			m[r.Name] = entry{version: r.Version, msg: msg}
		}
		s[typeURL] = m
	}
	if err := errors.Join(errs...); err != nil {
		return nil, cacheFile{}, fmt.Errorf("xds cache %s: %w", path, err)
	}
	f.Types = nil
	return s, f, nil
}
