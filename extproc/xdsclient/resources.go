package xdsclient

import (
	"fmt"
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/resource"
)

// entry is one resource as the control plane sent it. Entries are never
// modified once made, so sets share them.
type entry struct {
	version string
	msg     proto.Message
}

// set holds resources by type URL, then by resource name.
type set map[string]map[string]entry

// clone copies the maps of s; the entries are shared.
func (s set) clone() set {
	out := make(set, len(s))
	for typeURL, m := range s {
		out[typeURL] = maps.Clone(m)
	}
	return out
}

// versions lists the resource versions of one type, as delta xDS's
// initial_resource_versions wants them.
func (s set) versions(typeURL string) map[string]string {
	out := make(map[string]string, len(s[typeURL]))
	for name, e := range s[typeURL] {
		out[name] = e.version
	}
	return out
}

// sameVersions reports whether a and b hold the same names at the same
// versions, for every type.
func sameVersions(a, b set) bool {
	for _, typeURL := range resource.PrismTypes() {
		if !maps.EqualFunc(a[typeURL], b[typeURL], func(x, y entry) bool { return x.version == y.version }) {
			return false
		}
	}
	return true
}

// newMessage makes an empty message of a Prism type URL.
func newMessage(typeURL string) (proto.Message, error) {
	switch typeURL {
	case resource.BackendType:
		return &configv1.Backend{}, nil
	case resource.PolicyType:
		return &configv1.Policy{}, nil
	case resource.NamespaceType:
		return &configv1.Namespace{}, nil
	case resource.MigrationType:
		return &configv1.Migration{}, nil
	}
	return nil, fmt.Errorf("%s is not a Prism type", typeURL)
}

// merge returns the resources of one type after a delta response: cur with
// the response's upserts and removals. cur is not modified. A resource that
// does not decode fails the whole response.
func merge(cur map[string]entry, resp *discoveryv3.DeltaDiscoveryResponse) (map[string]entry, error) {
	typeURL := resp.GetTypeUrl()
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]entry{}
	}
	for _, r := range resp.GetResources() {
		if r.GetName() == "" {
			return nil, fmt.Errorf("%s: a resource has no name", typeURL)
		}
		if got := r.GetResource().GetTypeUrl(); got != typeURL {
			return nil, fmt.Errorf("%s %s: resource of type %q in a response of that type", typeURL, r.GetName(), got)
		}
		msg, err := newMessage(typeURL)
		if err != nil {
			return nil, err
		}
		if err := proto.Unmarshal(r.GetResource().GetValue(), msg); err != nil {
			return nil, fmt.Errorf("%s %s: %w", typeURL, r.GetName(), err)
		}
		next[r.GetName()] = entry{version: r.GetVersion(), msg: msg}
	}
	for _, name := range resp.GetRemovedResources() {
		delete(next, name)
	}
	return next, nil
}

// config is what the Applier gets, built from a set.
type config struct {
	*configv1.DevConfig
	// heldOut names the namespaces left out because their backend has not
	// arrived yet: a gap the server's ordering closes, not an error.
	heldOut []string
}

// build makes the config of a set, sorted by name so that two builds of
// the same set are equal.
func build(s set) config {
	c := config{DevConfig: &configv1.DevConfig{}}
	have := make(map[string]bool, len(s[resource.BackendType]))
	for _, name := range slices.Sorted(maps.Keys(s[resource.BackendType])) {
		if b, ok := s[resource.BackendType][name].msg.(*configv1.Backend); ok {
			c.Backends = append(c.Backends, b)
			have[b.GetName()] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s[resource.NamespaceType])) {
		n, ok := s[resource.NamespaceType][name].msg.(*configv1.Namespace)
		if !ok {
			continue
		}
		if !have[n.GetBackend()] {
			c.heldOut = append(c.heldOut, n.GetNamespace())
			continue
		}
		c.Namespaces = append(c.Namespaces, n)
	}
	for _, name := range slices.Sorted(maps.Keys(s[resource.PolicyType])) {
		if p, ok := s[resource.PolicyType][name].msg.(*configv1.Policy); ok {
			c.Policies = append(c.Policies, p)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s[resource.MigrationType])) {
		if m, ok := s[resource.MigrationType][name].msg.(*configv1.Migration); ok {
			c.Migrations = append(c.Migrations, m)
		}
	}
	return c
}

// equal reports whether c and o would apply the same config.
func (c config) equal(o config) bool {
	return proto.Equal(c.DevConfig, o.DevConfig)
}
