// Package model is the intermediate representation between the desired state
// and xDS resources: what the data path must do, decided once, in plain
// values. Build is pure; the translator turns a Model into Envoy and Prism
// resources without making decisions of its own.
package model

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
)

// Defaults of Options.
const (
	DefaultListenerAddress = "0.0.0.0"
	DefaultListenerPort    = 8443
	DefaultCertDir         = "/etc/envoy/certs"
	// DefaultBufferLimit bounds a buffered request body in Envoy; it is also
	// the dev edge's limit (devedge.DefaultMaxBody).
	DefaultBufferLimit = 8 << 20
	// DefaultMessageTimeout is the floor of the ext_proc message timeout:
	// above the default 5 s backend timeout, so that extproc answers 503
	// before Envoy gives up with 504.
	DefaultMessageTimeout = 6 * time.Second
	// MaxMessageTimeout caps override_message_timeout: the 30 s TimeSeries
	// long poll plus headroom to answer.
	MaxMessageTimeout = 35 * time.Second
	// defaultRequestTimeout mirrors extproc's default backend timeout.
	defaultRequestTimeout = 5 * time.Second
)

// Options are deployment settings outside the desired state. The zero value
// selects the defaults.
type Options struct {
	// ListenerAddress and ListenerPort are where Envoy serves the data API.
	ListenerAddress string
	ListenerPort    uint32
	// CertDir is the directory on the Envoy host holding server.pem,
	// server-key.pem and ca.pem (as written by envoy/certs). Only paths
	// travel over xDS, never key material.
	CertDir string
	// BufferLimit bounds a request body Envoy buffers for ext_proc.
	BufferLimit uint32
}

func (o Options) withDefaults() Options {
	if o.ListenerAddress == "" {
		o.ListenerAddress = DefaultListenerAddress
	}
	if o.ListenerPort == 0 {
		o.ListenerPort = DefaultListenerPort
	}
	if o.CertDir == "" {
		o.CertDir = DefaultCertDir
	}
	if o.BufferLimit == 0 {
		o.BufferLimit = DefaultBufferLimit
	}
	return o
}

// Model is everything the translator needs.
type Model struct {
	// Version is the desired state's version.
	Version    int64
	Listener   Listener
	Namespaces []Namespace
	Extproc    Extproc
	Prism      Prism
}

// Listener is Envoy's HTTPS listener of the data API.
type Listener struct {
	Address string
	Port    uint32
	// Files on the Envoy host, served as SDS secrets by reference.
	CertDir, CertFile, KeyFile, CAFile string
	// BufferLimit is the per-connection buffer limit, which bounds buffered
	// bodies.
	BufferLimit uint32
	// MessageTimeout is the ext_proc per-message timeout; MaxMessageTimeout
	// bounds what extproc may ask for in override_message_timeout.
	MessageTimeout, MaxMessageTimeout time.Duration
}

// Namespace is the data path of one namespace.
type Namespace struct {
	Name string
	// Abstraction is the operator's name (keyvalue, timeseries, graph).
	Abstraction string
	// Prefix is the path the namespace serves, e.g. /v1/kv/orders.
	Prefix string
	// WrongPrefixes are the paths of the other abstractions under the same
	// name; they answer 404 with a hint to Prefix.
	WrongPrefixes []string
	// Principals are the client identities (URI SANs) allowed; empty allows
	// any authenticated client.
	Principals []string
	// RPS is the local rate limit; 0 is unlimited.
	RPS uint32
}

// Extproc is the extproc cluster: weighted pools of endpoints.
type Extproc struct {
	Pools []Pool
}

// Pool is one weighted group of extproc endpoints (a locality in EDS).
type Pool struct {
	Name      string
	Weight    uint32
	Endpoints []Endpoint
}

// Endpoint is one extproc listener: its resolved address and the host name
// it was declared with (empty for an IP literal).
type Endpoint struct {
	Hostname string
	Addr     netip.AddrPort
}

// Prism holds the resources extproc nodes get, each sorted by name.
type Prism struct {
	Backends   []*configv1.Backend
	Policies   []*configv1.Policy
	Namespaces []*configv1.Namespace
	Migrations []*configv1.Migration
}

// Resolver maps a declared endpoint host to its addresses. Resolution is I/O
// and happens before Build (see the xds server), which keeps Build pure.
type Resolver func(host string) []netip.Addr

// pathSegments maps abstractions to their path segment in the data API.
var pathSegments = map[configv1.Abstraction]string{
	configv1.Abstraction_KEYVALUE:   "kv",
	configv1.Abstraction_TIMESERIES: "ts",
	configv1.Abstraction_GRAPH:      "graph",
}

// Build derives the model from a desired state that has passed validation.
// resolve maps endpoint host names to addresses; IP literals need none.
func Build(st *desired.State, opts Options, resolve Resolver) (*Model, error) {
	opts = opts.withDefaults()
	m := &Model{
		Version: st.Version,
		Listener: Listener{
			Address:           opts.ListenerAddress,
			Port:              opts.ListenerPort,
			CertDir:           opts.CertDir,
			CertFile:          path.Join(opts.CertDir, "server.pem"),
			KeyFile:           path.Join(opts.CertDir, "server-key.pem"),
			CAFile:            path.Join(opts.CertDir, "ca.pem"),
			BufferLimit:       opts.BufferLimit,
			MessageTimeout:    DefaultMessageTimeout,
			MaxMessageTimeout: MaxMessageTimeout,
		},
	}
	for _, name := range st.SortedNames(desired.Namespace) {
		n := st.Namespaces[name]
		ns, err := buildNamespace(n)
		if err != nil {
			return nil, err
		}
		m.Namespaces = append(m.Namespaces, ns)
		m.Listener.MessageTimeout = max(m.Listener.MessageTimeout, requestTimeout(n)+time.Second)
		if v := n.GetLimits().GetMaxValueBytes(); v > 0 {
			// Room for a batch's JSON around the largest value.
			m.Listener.BufferLimit = max(m.Listener.BufferLimit, v+v/2)
		}
	}
	m.Listener.MessageTimeout = min(m.Listener.MessageTimeout, m.Listener.MaxMessageTimeout)
	for _, name := range st.SortedNames(desired.Pool) {
		p := st.Pools[name]
		if p.GetWeight() == 0 {
			continue // drained: not in EDS at all
		}
		pool := Pool{Name: name, Weight: p.GetWeight()}
		for _, e := range p.GetEndpoints() {
			ep, err := config.SplitEndpoint(e)
			if err != nil {
				return nil, fmt.Errorf("extproc pool %s: %w", name, err)
			}
			hostname := ep.Host
			if _, err := netip.ParseAddr(ep.Host); err == nil {
				hostname = "" // nothing to tell beyond the address
			}
			for _, a := range addrs(ep.Host, resolve) {
				pool.Endpoints = append(pool.Endpoints, Endpoint{Hostname: hostname, Addr: netip.AddrPortFrom(a, uint16(ep.Port))})
			}
		}
		slices.SortFunc(pool.Endpoints, func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) })
		pool.Endpoints = slices.CompactFunc(pool.Endpoints, func(a, b Endpoint) bool { return a.Addr == b.Addr })
		if len(pool.Endpoints) > 0 {
			m.Extproc.Pools = append(m.Extproc.Pools, pool)
		}
	}
	m.Prism = Prism{
		Backends:   sorted(st, desired.Backend, st.Backends),
		Policies:   sorted(st, desired.Policy, st.Policies),
		Namespaces: sorted(st, desired.Namespace, st.Namespaces),
		Migrations: sorted(st, desired.Migration, st.Migrations),
	}
	return m, nil
}

func buildNamespace(n *configv1.Namespace) (Namespace, error) {
	seg, ok := pathSegments[n.GetAbstraction()]
	if !ok {
		return Namespace{}, fmt.Errorf("namespace %s: no data API path for abstraction %s", n.GetNamespace(), n.GetAbstraction())
	}
	ns := Namespace{
		Name:        n.GetNamespace(),
		Abstraction: config.AbstractionName(n.GetAbstraction()),
		Prefix:      "/v1/" + seg + "/" + n.GetNamespace(),
		RPS:         n.GetLimits().GetRps(),
	}
	for _, other := range []string{"kv", "ts", "graph"} {
		if other != seg {
			ns.WrongPrefixes = append(ns.WrongPrefixes, "/v1/"+other+"/"+n.GetNamespace())
		}
	}
	ns.Principals = append(ns.Principals, n.GetAccess().GetOwners()...)
	ns.Principals = append(ns.Principals, n.GetAccess().GetReaders()...)
	slices.Sort(ns.Principals)
	ns.Principals = slices.Compact(ns.Principals)
	return ns, nil
}

func requestTimeout(n *configv1.Namespace) time.Duration {
	if d := n.GetLimits().GetRequestTimeout(); d != nil && d.AsDuration() > 0 {
		return d.AsDuration()
	}
	return defaultRequestTimeout
}

// addrs resolves a host: an IP literal is itself, a name goes to resolve.
func addrs(host string, resolve Resolver) []netip.Addr {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	if resolve == nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range resolve(host) {
		out = append(out, a.Unmap())
	}
	return out
}

// sorted returns clones of the messages of one kind in name order; clones,
// so that a Model never aliases the state it came from.
func sorted[M proto.Message](st *desired.State, k desired.Kind, m map[string]M) []M {
	var out []M
	for _, name := range st.SortedNames(k) {
		out = append(out, proto.Clone(m[name]).(M))
	}
	return out
}
