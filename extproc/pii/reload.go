package pii

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Reload makes the keyring pick up data keys another process added (`prism
// keys rotate` against the same key store): for every namespace it has
// used, the store's newest key becomes the one new values are sealed with.
// Reads never need it, since an envelope naming an unknown key id sends the
// keyring to the store anyway. It returns the namespaces whose key changed.
func (r *Keyring) Reload(ctx context.Context) ([]string, error) {
	r.mu.RLock()
	names := make([]string, 0, len(r.current))
	for ns := range r.current {
		names = append(names, ns)
	}
	r.mu.RUnlock()
	var changed []string
	for _, ns := range names {
		keys, err := r.store.Keys(ctx, ns)
		if err != nil {
			return changed, fmt.Errorf("pii: reload data keys of %s: %w", ns, err)
		}
		if len(keys) == 0 {
			continue
		}
		newest := keys[len(keys)-1]
		r.mu.RLock()
		cur := r.current[ns]
		r.mu.RUnlock()
		if cur != nil && cur.kid == newest.ID {
			continue
		}
		if err := r.adopt(ctx, ns, newest); err != nil {
			return changed, err
		}
		changed = append(changed, ns)
	}
	return changed, nil
}

// adopt makes k the namespace's newest key.
func (r *Keyring) adopt(ctx context.Context, namespace string, k WrappedKey) error {
	r.load.Lock()
	defer r.load.Unlock()
	r.mu.RLock()
	d := r.deks[dekID{namespace, k.ID}]
	r.mu.RUnlock()
	if d == nil {
		var err error
		if d, err = r.unwrap(ctx, namespace, k); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.current[namespace] = d
	r.mu.Unlock()
	return nil
}

// Watch calls Reload every interval until ctx ends, so that a running
// extproc starts sealing with a rotated key within one interval. Errors are
// logged; the keyring keeps its keys.
func (r *Keyring) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.Reload(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("reloading PII data keys failed; keeping the current ones", "err", err)
		}
		for _, ns := range changed {
			log.Info("PII data key rotated; new values use the new key", "namespace", ns)
		}
	}
}
