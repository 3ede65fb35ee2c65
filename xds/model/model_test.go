package model

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
)

func TestBuildDerivesTimeoutsAndBuffers(t *testing.T) {
	tests := []struct {
		name    string
		limits  *configv1.Limits
		timeout time.Duration
		buffer  uint32
	}{
		{"defaults", nil, DefaultMessageTimeout, DefaultBufferLimit},
		{"slow backend", &configv1.Limits{RequestTimeout: durationpb.New(12 * time.Second)}, 13 * time.Second, DefaultBufferLimit},
		{"slowest backend stays under the maximum", &configv1.Limits{RequestTimeout: durationpb.New(30 * time.Second)}, 31 * time.Second, DefaultBufferLimit},
		{"large values", &configv1.Limits{MaxValueBytes: 32 << 20}, DefaultMessageTimeout, 48 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := desired.New()
			st.Put(&configv1.Namespace{Namespace: "a", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "x", Limits: tt.limits})
			m, err := Build(st, Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Listener.MessageTimeout != tt.timeout || m.Listener.BufferLimit != tt.buffer {
				t.Fatalf("message timeout %s, buffer %d; want %s, %d", m.Listener.MessageTimeout, m.Listener.BufferLimit, tt.timeout, tt.buffer)
			}
			if m.Listener.MessageTimeout > m.Listener.MaxMessageTimeout {
				t.Fatalf("message timeout %s over the maximum %s", m.Listener.MessageTimeout, m.Listener.MaxMessageTimeout)
			}
		})
	}
}

func TestBuildPoolsAndPrincipals(t *testing.T) {
	st := desired.New()
	st.Put(&configv1.ExtprocPool{Name: "a", Weight: 3, Endpoints: []string{"known:9001", "10.0.0.1:9001", "unknown:9001"}})
	st.Put(&configv1.ExtprocPool{Name: "drained", Weight: 0, Endpoints: []string{"10.0.0.2:9001"}})
	st.Put(&configv1.ExtprocPool{Name: "dark", Weight: 1, Endpoints: []string{"unknown:9001"}})
	st.Put(&configv1.Namespace{Namespace: "g", Abstraction: configv1.Abstraction_GRAPH, Access: &configv1.Access{
		Owners: []string{"spiffe://d/b", "spiffe://d/a"}, Readers: []string{"spiffe://d/a"},
	}})
	m, err := Build(st, Options{}, func(host string) []netip.Addr {
		if host == "known" {
			return []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.9")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Extproc.Pools) != 1 {
		t.Fatalf("pools %+v: want only a (drained has weight 0, dark resolves to nothing)", m.Extproc.Pools)
	}
	var addrs []string
	for _, e := range m.Extproc.Pools[0].Endpoints {
		addrs = append(addrs, e.Addr.String()+"/"+e.Hostname)
	}
	if !slices.Equal(addrs, []string{"10.0.0.1:9001/", "10.0.0.9:9001/known"}) {
		t.Fatalf("endpoints %v", addrs)
	}
	ns := m.Namespaces[0]
	if ns.Prefix != "/v1/graph/g" || !slices.Equal(ns.Principals, []string{"spiffe://d/a", "spiffe://d/b"}) || !slices.Equal(ns.WrongPrefixes, []string{"/v1/kv/g", "/v1/ts/g"}) {
		t.Fatalf("namespace %+v", ns)
	}
}
