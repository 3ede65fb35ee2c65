package server

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// LookupFunc resolves a host name, like net.Resolver.LookupNetIP.
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// dnsCache resolves the host names of extproc endpoints. EDS carries only
// addresses, so names such as compose's "extproc" are resolved here, outside
// the pure translation, and re-resolved periodically. A name that fails to
// resolve keeps its last addresses: a stale address is better than dropping
// a pool on a DNS hiccup.
type dnsCache struct {
	lookup  LookupFunc
	timeout time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	addrs map[string][]netip.Addr
}

func newDNSCache(lookup LookupFunc, log *slog.Logger) *dnsCache {
	return &dnsCache{lookup: lookup, timeout: 2 * time.Second, log: log, addrs: map[string][]netip.Addr{}}
}

// resolve returns the cached addresses of a host; it is a model.Resolver.
func (d *dnsCache) resolve(host string) []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs[host]
}

// refresh resolves hosts, forgets hosts no longer asked for and reports
// whether any address changed.
func (d *dnsCache) refresh(ctx context.Context, hosts []string) bool {
	found := map[string][]netip.Addr{}
	for _, h := range hosts {
		if _, err := netip.ParseAddr(h); err == nil {
			continue
		}
		if _, done := found[h]; done {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, d.timeout)
		addrs, err := d.lookup(lctx, h)
		cancel()
		if err != nil || len(addrs) == 0 {
			d.log.Warn("extproc endpoint does not resolve; keeping its last addresses", "host", h, "err", err)
			found[h] = d.resolve(h)
			continue
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		found[h] = addrs
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := len(found) != len(d.addrs)
	for h, a := range found {
		if !slices.Equal(a, d.addrs[h]) {
			changed = true
		}
	}
	d.addrs = found
	return changed
}
