package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Bounds of a namespace's limits. They follow from the data path: a value
// travels in one ext_proc gRPC message (64 MiB at most), and Envoy's ext_proc
// filter lets a message take at most MaxMessageTimeout, which must cover the
// 30 s TimeSeries long poll.
const (
	MaxValueBytesLimit = 64 << 20
	MaxRequestTimeout  = 30 * time.Second
	MaxRPS             = 1_000_000
)

// AutoBackend is the backend name that asks the control plane to choose.
const AutoBackend = "auto"

// drivers maps each driver to the abstractions it can serve; a namespace on a
// backend that cannot serve its abstraction would fail on every request, so
// validation refuses it up front.
var drivers = map[string][]configv1.Abstraction{
	"sqlite":   {configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES, configv1.Abstraction_GRAPH},
	"postgres": {configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES, configv1.Abstraction_GRAPH},
	"nats":     {configv1.Abstraction_TIMESERIES},
	"kafka":    {configv1.Abstraction_TIMESERIES},
	"neptune":  {configv1.Abstraction_GRAPH},
	"redis":    nil, // a cache in front of other backends, never primary storage
}

// DriverName is the driver of a backend ("sqlite", "postgres", "nats",
// "kafka", "neptune", "redis"), or "" when none is configured.
func DriverName(b *configv1.Backend) string {
	switch b.GetDriver().(type) {
	case *configv1.Backend_Sqlite:
		return "sqlite"
	case *configv1.Backend_Postgres:
		return "postgres"
	case *configv1.Backend_Nats:
		return "nats"
	case *configv1.Backend_Kafka:
		return "kafka"
	case *configv1.Backend_Neptune:
		return "neptune"
	case *configv1.Backend_Redis:
		return "redis"
	}
	return ""
}

// Serves reports whether a backend's driver can serve an abstraction.
func Serves(b *configv1.Backend, a configv1.Abstraction) bool {
	for _, x := range drivers[DriverName(b)] {
		if x == a {
			return true
		}
	}
	return false
}

// servedBy lists the drivers that serve an abstraction, for error messages.
func servedBy(a configv1.Abstraction) string {
	var names []string
	for _, d := range []string{"sqlite", "postgres", "nats", "kafka", "neptune"} {
		for _, x := range drivers[d] {
			if x == a {
				names = append(names, d)
			}
		}
	}
	return strings.Join(names, ", ")
}

// AbstractionName is the lower-case name operators write (keyvalue,
// timeseries, graph).
func AbstractionName(a configv1.Abstraction) string {
	return strings.ToLower(a.String())
}

// Validate checks names, references and limits of a whole config and reports
// every problem at once.
func Validate(cfg *configv1.DevConfig) error {
	var errs []error
	backends := map[string]*configv1.Backend{}
	for i, b := range cfg.GetBackends() {
		if err := configv1.ValidateName(b.GetName()); err != nil {
			errs = append(errs, fmt.Errorf("backends[%d]: %w", i, err))
			continue
		}
		if _, dup := backends[b.GetName()]; dup {
			errs = append(errs, fmt.Errorf("backends[%d]: backend %s declared twice", i, b.GetName()))
		}
		errs = append(errs, ValidateBackend(b)...)
		backends[b.GetName()] = b
	}
	policies := map[string]bool{}
	for i, p := range cfg.GetPolicies() {
		if policies[p.GetName()] {
			errs = append(errs, fmt.Errorf("policies[%d]: policy %s declared twice", i, p.GetName()))
		}
		policies[p.GetName()] = true
		errs = append(errs, ValidatePolicy(p)...)
	}
	seen := map[string]bool{}
	for i, n := range cfg.GetNamespaces() {
		if err := configv1.ValidateName(n.GetNamespace()); err != nil {
			errs = append(errs, fmt.Errorf("namespaces[%d]: %w", i, err))
			continue
		}
		if seen[n.GetNamespace()] {
			errs = append(errs, fmt.Errorf("namespace %s declared twice", n.GetNamespace()))
		}
		seen[n.GetNamespace()] = true
		errs = append(errs, ValidateNamespace(n, backends)...)
		if p := n.GetPolicy(); p != "" && p != DefaultPolicy && !policies[p] {
			errs = append(errs, fmt.Errorf("namespace %s: unknown policy %q (declare it, or use %q, which is built in)", n.GetNamespace(), p, DefaultPolicy))
		}
	}
	return errors.Join(errs...)
}

// DefaultPolicy is the policy of a namespace that names none. It always
// exists: extproc falls back to its built-in policy until one of this name
// is pushed.
const DefaultPolicy = "default"

// ValidateBackend checks one backend's driver options.
func ValidateBackend(b *configv1.Backend) []error {
	name := b.GetName()
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("backend %s: "+format, append([]any{name}, args...)...))
	}
	switch d := b.GetDriver().(type) {
	case nil:
		add("no driver (sqlite, postgres, ...) configured")
	case *configv1.Backend_Sqlite:
		if d.Sqlite.GetPath() == "" {
			add("sqlite.path is empty")
		}
	case *configv1.Backend_Postgres:
		if d.Postgres.GetDsn() == "" {
			add("postgres.dsn is empty")
		}
		if d.Postgres.GetMaxConns() < 0 {
			add("postgres.max_conns is negative")
		}
	case *configv1.Backend_Nats:
		if d.Nats.GetUrl() == "" {
			add("nats.url is empty")
		}
	case *configv1.Backend_Kafka:
		if len(d.Kafka.GetBrokers()) == 0 {
			add("kafka.brokers is empty")
		}
		for _, br := range d.Kafka.GetBrokers() {
			if _, _, err := net.SplitHostPort(br); err != nil {
				add("kafka broker %q is not host:port", br)
			}
		}
	case *configv1.Backend_Neptune:
		if d.Neptune.GetEndpoint() == "" {
			add("neptune.endpoint is empty")
		}
	case *configv1.Backend_Redis:
		if d.Redis.GetAddr() == "" {
			add("redis.addr is empty")
		}
	}
	return errs
}

// ValidateNamespace checks one namespace against the declared backends.
func ValidateNamespace(n *configv1.Namespace, backends map[string]*configv1.Backend) []error {
	name := n.GetNamespace()
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("namespace %s: "+format, append([]any{name}, args...)...))
	}
	a := n.GetAbstraction()
	switch a {
	case configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES, configv1.Abstraction_GRAPH:
	case configv1.Abstraction_ABSTRACTION_UNSPECIFIED:
		add("abstraction is required (keyvalue, timeseries or graph)")
	default:
		add("unknown abstraction %d (want keyvalue, timeseries or graph)", a)
	}
	switch b, ok := backends[n.GetBackend()]; {
	case n.GetBackend() == AutoBackend:
		add("backend %q must be resolved to a declared backend (prism xds does this when the namespace is applied)", AutoBackend)
	case !ok:
		add("unknown backend %q", n.GetBackend())
	case a != configv1.Abstraction_ABSTRACTION_UNSPECIFIED && !Serves(b, a):
		add("backend %s (%s) cannot serve %s; use a backend with one of: %s",
			b.GetName(), orNone(DriverName(b)), AbstractionName(a), servedBy(a))
	}
	for field, v := range map[string]float64{
		"estimated_read_rps":     n.GetEstimatedReadRps(),
		"estimated_write_rps":    n.GetEstimatedWriteRps(),
		"estimated_data_size_gb": n.GetEstimatedDataSizeGb(),
	} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			add("%s must be a finite number >= 0, got %v", field, v)
		}
	}
	if ttl := n.GetCache().GetTtl(); ttl != nil {
		if err := checkDuration(ttl); err != nil {
			add("cache.ttl: %v", err)
		}
	}
	errs = append(errs, validateLimits(name, n.GetLimits())...)
	errs = append(errs, validateAccess(name, n.GetAccess())...)
	errs = append(errs, validateSchema(name, n.GetSchema())...)
	return errs
}

func orNone(s string) string {
	if s == "" {
		return "no driver"
	}
	return s
}

// validateLimits refuses limits the data path cannot honour.
func validateLimits(ns string, l *configv1.Limits) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("namespace %s: limits."+format, append([]any{ns}, args...)...))
	}
	if l.GetRps() > MaxRPS {
		add("rps %d is over the maximum of %d", l.GetRps(), MaxRPS)
	}
	if l.GetMaxValueBytes() > MaxValueBytesLimit {
		add("max_value_bytes %d is over the maximum of %d (64 MiB)", l.GetMaxValueBytes(), MaxValueBytesLimit)
	}
	if d := l.GetRequestTimeout(); d != nil {
		if err := checkDuration(d); err != nil {
			add("request_timeout: %v", err)
		} else if d.AsDuration() > MaxRequestTimeout {
			add("request_timeout %s is over the maximum of %s", d.AsDuration(), MaxRequestTimeout)
		}
	}
	return errs
}

// checkDuration refuses malformed and negative durations.
func checkDuration(d *durationpb.Duration) error {
	if err := d.CheckValid(); err != nil {
		return err
	}
	if d.AsDuration() < 0 {
		return fmt.Errorf("is negative")
	}
	return nil
}

// validateAccess checks that identities are absolute URIs: Envoy's RBAC
// matches them exactly against the client certificate's URI SAN, so anything
// else could never match and would lock the namespace's clients out.
func validateAccess(ns string, a *configv1.Access) []error {
	var errs []error
	check := func(list string, ids []string) {
		for _, id := range ids {
			u, err := url.Parse(id)
			if err != nil || u.Scheme == "" || u.Host == "" || strings.ContainsAny(id, " \t\r\n") {
				errs = append(errs, fmt.Errorf("namespace %s: access.%s: %q is not an absolute URI such as spiffe://prism.local/svc", ns, list, id))
			}
		}
	}
	check("owners", a.GetOwners())
	check("readers", a.GetReaders())
	return errs
}

// validateSchema checks PII fields; a PII field stored in plaintext would
// break an invariant of Prism, so encrypt_at_rest: false is refused.
func validateSchema(ns string, s *configv1.Schema) []error {
	var errs []error
	seen := map[string]bool{}
	for i, f := range s.GetPii() {
		switch {
		case f.GetPath() == "":
			errs = append(errs, fmt.Errorf("namespace %s: schema.pii[%d]: path is empty", ns, i))
		case seen[f.GetPath()]:
			errs = append(errs, fmt.Errorf("namespace %s: schema.pii[%d]: path %s listed twice", ns, i, f.GetPath()))
		}
		seen[f.GetPath()] = true
		if f.GetClass() == configv1.PiiClass_PII_CLASS_UNSPECIFIED {
			errs = append(errs, fmt.Errorf("namespace %s: schema.pii[%d]: class is required", ns, i))
		}
		if f.EncryptAtRest != nil && !f.GetEncryptAtRest() {
			errs = append(errs, fmt.Errorf("namespace %s: schema.pii[%d]: encrypt_at_rest: false is not allowed; PII is always encrypted at rest", ns, i))
		}
	}
	return errs
}

// ValidateMigration checks a migration against the namespaces and backends
// it names.
func ValidateMigration(m *configv1.Migration, namespaces map[string]*configv1.Namespace, backends map[string]*configv1.Backend) []error {
	name := m.GetNamespace()
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("migration of %s: "+format, append([]any{name}, args...)...))
	}
	n, ok := namespaces[name]
	if !ok {
		add("unknown namespace")
		return errs
	}
	from, fromOK := backends[m.GetFrom()]
	to, toOK := backends[m.GetTo()]
	switch {
	case !fromOK:
		add("unknown backend %q in from", m.GetFrom())
	case !toOK:
		add("unknown backend %q in to", m.GetTo())
	case from.GetName() == to.GetName():
		add("from and to are the same backend %s", from.GetName())
	case !Serves(to, n.GetAbstraction()):
		add("backend %s cannot serve %s", to.GetName(), AbstractionName(n.GetAbstraction()))
	}
	if p := m.GetReadPercent(); p < 0 || p > 100 || math.IsNaN(p) {
		add("read_percent %v is not within 0..100", p)
	}
	if t := m.GetMismatchThreshold(); t < 0 || t > 1 || math.IsNaN(t) {
		add("mismatch_threshold %v is not within 0..1", t)
	}
	if _, ok := configv1.Migration_Phase_name[int32(m.GetPhase())]; !ok {
		add("unknown phase %d", m.GetPhase())
	}
	return errs
}

// ValidatePolicy checks the form of a policy; compiling its Rego is the
// policy engine's job.
func ValidatePolicy(p *configv1.Policy) []error {
	var errs []error
	if err := configv1.ValidateName(p.GetName()); err != nil {
		return []error{fmt.Errorf("policy: %w", err)}
	}
	if len(p.GetModules()) == 0 {
		errs = append(errs, fmt.Errorf("policy %s: no modules", p.GetName()))
	}
	for file, src := range p.GetModules() {
		if !strings.HasSuffix(file, ".rego") || strings.ContainsAny(file, "/\\") {
			errs = append(errs, fmt.Errorf("policy %s: module name %q must be a plain file name ending in .rego", p.GetName(), file))
		}
		if strings.TrimSpace(src) == "" {
			errs = append(errs, fmt.Errorf("policy %s: module %s is empty", p.GetName(), file))
		}
	}
	return errs
}

// ValidatePool checks an extproc pool: endpoints must be host:port so that
// they translate into Envoy socket addresses.
func ValidatePool(p *configv1.ExtprocPool) []error {
	if err := configv1.ValidateName(p.GetName()); err != nil {
		return []error{fmt.Errorf("extproc pool: %w", err)}
	}
	var errs []error
	if len(p.GetEndpoints()) == 0 {
		errs = append(errs, fmt.Errorf("extproc pool %s: no endpoints", p.GetName()))
	}
	seen := map[string]bool{}
	for _, e := range p.GetEndpoints() {
		if _, err := SplitEndpoint(e); err != nil {
			errs = append(errs, fmt.Errorf("extproc pool %s: %w", p.GetName(), err))
		}
		if seen[e] {
			errs = append(errs, fmt.Errorf("extproc pool %s: endpoint %s listed twice", p.GetName(), e))
		}
		seen[e] = true
	}
	return errs
}

// Endpoint is a host and port of an extproc listener.
type Endpoint struct {
	Host string
	Port uint32
}

// SplitEndpoint parses "host:port" with a port in 1..65535.
func SplitEndpoint(s string) (Endpoint, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q is not host:port", s)
	}
	var p uint32
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p == 0 || p > 65535 || fmt.Sprint(p) != port {
		return Endpoint{}, fmt.Errorf("endpoint %q: port must be 1..65535", s)
	}
	return Endpoint{Host: host, Port: p}, nil
}
