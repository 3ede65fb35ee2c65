package xdsclient

import (
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/prism-gw/prism/xds/resource"
)

func names(c config) (backends, namespaces []string) {
	for _, b := range c.Backends {
		backends = append(backends, b.GetName())
	}
	for _, n := range c.Namespaces {
		namespaces = append(namespaces, n.GetNamespace())
	}
	return backends, namespaces
}

// TestBuildHoldsOutNamespacesWithoutTheirBackend: a namespace whose backend
// has not arrived is a gap in delivery, left out of the config rather than
// failing it.
func TestBuildHoldsOutNamespacesWithoutTheirBackend(t *testing.T) {
	tests := []struct {
		name                 string
		set                  set
		backends, namespaces []string
		heldOut              []string
	}{
		{"empty", set{}, nil, nil, nil},
		{"complete", set{
			resource.BackendType:   {"b": {msg: sqliteBackend("b", "/x")}},
			resource.NamespaceType: {"n2": {msg: kvNamespace("n2", "b")}, "n1": {msg: kvNamespace("n1", "b")}},
		}, []string{"b"}, []string{"n1", "n2"}, nil},
		{"backend not yet received", set{
			resource.BackendType:   {"b": {msg: sqliteBackend("b", "/x")}},
			resource.NamespaceType: {"n1": {msg: kvNamespace("n1", "b")}, "n2": {msg: kvNamespace("n2", "later")}},
		}, []string{"b"}, []string{"n1"}, []string{"n2"}},
		{"namespaces before any backend", set{
			resource.NamespaceType: {"n1": {msg: kvNamespace("n1", "b")}},
		}, nil, nil, []string{"n1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := build(tt.set)
			b, n := names(c)
			if !slices.Equal(b, tt.backends) || !slices.Equal(n, tt.namespaces) || !slices.Equal(c.heldOut, tt.heldOut) {
				t.Fatalf("build = backends %v namespaces %v held out %v; want %v %v %v", b, n, c.heldOut, tt.backends, tt.namespaces, tt.heldOut)
			}
		})
	}
}

func deltaResource(t *testing.T, name, version string, m proto.Message) *discoveryv3.Resource {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Version: version, Resource: a}
}

// TestMergeAppliesUpsertsAndRemovals and leaves the current map alone, so
// a rejected response never changes the set in force.
func TestMergeAppliesUpsertsAndRemovals(t *testing.T) {
	cur := map[string]entry{
		"a": {version: "1", msg: kvNamespace("a", "b")},
		"b": {version: "1", msg: kvNamespace("b", "b")},
	}
	resp := &discoveryv3.DeltaDiscoveryResponse{
		TypeUrl:          resource.NamespaceType,
		Resources:        []*discoveryv3.Resource{deltaResource(t, "a", "2", kvNamespace("a", "other")), deltaResource(t, "c", "1", kvNamespace("c", "b"))},
		RemovedResources: []string{"b", "never-had"},
	}
	next, err := merge(cur, resp)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for name, e := range next {
		got[name] = e.version
	}
	if len(got) != 2 || got["a"] != "2" || got["c"] != "1" {
		t.Fatalf("merged versions = %v, want a:2 c:1", got)
	}
	if len(cur) != 2 || cur["a"].version != "1" {
		t.Fatalf("merge changed the current map: %v", cur)
	}
}

func TestMergeRefusesMismatchedResources(t *testing.T) {
	tests := []struct {
		name string
		res  *discoveryv3.Resource
	}{
		{"another type", deltaResource(t, "lite", "1", sqliteBackend("lite", "/x"))},
		{"no name", deltaResource(t, "", "1", kvNamespace("a", "b"))},
		{"bad bytes", &discoveryv3.Resource{Name: "a", Resource: &anypb.Any{TypeUrl: resource.NamespaceType, Value: []byte{0xff, 0xff}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resource.NamespaceType, Resources: []*discoveryv3.Resource{tt.res}}
			if _, err := merge(nil, resp); err == nil {
				t.Fatal("merge accepted it")
			}
		})
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			if d := backoff(lo, hi, n); d < want/2 || d > want {
				t.Fatalf("backoff(attempt %d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}
