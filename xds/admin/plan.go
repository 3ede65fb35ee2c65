package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/planner"
	"github.com/prism-gw/prism/xds/resource"
)

// prepare checks a resource about to replace its namesake in next, resolves
// what the control plane decides for the operator (backend: auto), and
// describes what applying it will do. It runs inside the store transaction,
// on the state the change applies to.
func prepare(next *desired.State, m proto.Message, force bool) (string, error) {
	switch m := m.(type) {
	case *configv1.Namespace:
		return prepareNamespace(next, m, force)
	case *configv1.Backend:
		return planBackend(next, m), nil
	case *configv1.ExtprocPool:
		return planPool(next, m), nil
	case *configv1.Policy:
		return planPolicy(next, m), nil
	}
	return "", invalid("resources of type %T cannot be changed here", m)
}

func prepareNamespace(next *desired.State, ns *configv1.Namespace, force bool) (string, error) {
	name := ns.GetNamespace()
	cur := next.Namespaces[name]
	var b strings.Builder
	auto := ""
	if ns.GetBackend() == config.AutoBackend {
		chosen, why, err := chooseBackend(next, cur, ns)
		if err != nil {
			return "", err
		}
		ns.Backend, auto = chosen, why
	}
	if cur != nil && cur.GetBackend() != ns.GetBackend() && !force {
		return "", conflict("namespace %s lives on backend %s; pointing it at %s would leave its data behind. "+
			"Move it with a migration, or repeat the PUT with ?force=true to switch without moving data",
			name, cur.GetBackend(), ns.GetBackend())
	}
	if cur != nil && cur.GetAbstraction() != ns.GetAbstraction() {
		return "", conflict("namespace %s serves %s; its abstraction cannot change (delete it and create a new namespace)",
			name, config.AbstractionName(cur.GetAbstraction()))
	}
	if cur == nil {
		fmt.Fprintf(&b, "namespace %s: create\n", name)
	} else {
		fmt.Fprintf(&b, "namespace %s: update\n", name)
		for _, line := range diffLines(cur, ns, nil) {
			fmt.Fprintf(&b, "  change %s\n", line)
		}
	}
	backend := next.Backends[ns.GetBackend()]
	fmt.Fprintf(&b, "  backend: %s (%s)", ns.GetBackend(), config.DriverName(backend))
	if auto != "" {
		fmt.Fprintf(&b, ", chosen for backend: auto: %s", auto)
	}
	b.WriteString("\n")
	seg := map[configv1.Abstraction]string{configv1.Abstraction_KEYVALUE: "kv", configv1.Abstraction_TIMESERIES: "ts", configv1.Abstraction_GRAPH: "graph"}[ns.GetAbstraction()]
	fmt.Fprintf(&b, "  envoy: route /v1/%s/%s (route metadata prism.namespace=%s)\n", seg, name, name)
	ids := len(ns.GetAccess().GetOwners()) + len(ns.GetAccess().GetReaders())
	if ids == 0 {
		b.WriteString("  envoy: RBAC allows any client with a certificate from the client CA\n")
	} else {
		fmt.Fprintf(&b, "  envoy: RBAC allows %d identities (owners %v, readers %v)\n", ids, ns.GetAccess().GetOwners(), ns.GetAccess().GetReaders())
	}
	if rps := ns.GetLimits().GetRps(); rps > 0 {
		fmt.Fprintf(&b, "  envoy: local rate limit %d requests/s per Envoy\n", rps)
	} else {
		b.WriteString("  envoy: no rate limit\n")
	}
	if pii := ns.GetSchema().GetPii(); len(pii) > 0 {
		var paths []string
		for _, f := range pii {
			paths = append(paths, f.GetPath())
		}
		fmt.Fprintf(&b, "  extproc: PII fields encrypted at rest: %s\n", strings.Join(paths, ", "))
	}
	policy := ns.GetPolicy()
	if policy == "" {
		policy = "default"
	}
	fmt.Fprintf(&b, "  extproc: requests decided by policy %s\n", policy)
	fmt.Fprintf(&b, "  extproc: %s resource pushed to nodes of cluster %s; the drivers create missing storage on first use\n", resource.NamespaceType, resource.ClusterExtproc)
	return b.String(), nil
}

// sqliteWriteLimit is the estimated write rate above which auto avoids
// SQLite: it has a single writer.
const sqliteWriteLimit = 1000

// chooseBackend resolves backend: auto. An existing namespace keeps its
// backend: moving data is a migration, never a side effect of a PUT.
func chooseBackend(st *desired.State, cur, ns *configv1.Namespace) (string, string, error) {
	if cur != nil {
		return cur.GetBackend(), "an existing namespace stays on its backend", nil
	}
	a := ns.GetAbstraction()
	// The order follows the access pattern and size (package planner).
	prefs, _ := planner.Preference(ns, planner.DefaultOptions())
	if prefs == nil {
		return "", "", invalid("namespace %s: abstraction is required (keyvalue, timeseries or graph) to choose a backend", ns.GetNamespace())
	}
	for _, driver := range prefs {
		for _, name := range st.SortedNames(desired.Backend) {
			if config.DriverName(st.Backends[name]) == driver && config.Serves(st.Backends[name], a) {
				return name, fmt.Sprintf("first declared %s backend; preference for %s is %s", driver, config.AbstractionName(a), strings.Join(prefs, " > ")), nil
			}
		}
	}
	note := ""
	if ns.GetEstimatedWriteRps() > sqliteWriteLimit || ns.GetEstimatedDataSizeGb() > planner.DefaultOptions().SQLiteMaxDataGB {
		note = fmt.Sprintf("; sqlite is skipped above %d estimated writes/s or %g GB", sqliteWriteLimit, planner.DefaultOptions().SQLiteMaxDataGB)
	}
	return "", "", invalid("namespace %s: backend auto found no declared backend for %s (want one of: %s%s)",
		ns.GetNamespace(), config.AbstractionName(a), strings.Join(prefs, ", "), note)
}

func planBackend(st *desired.State, b *configv1.Backend) string {
	var s strings.Builder
	cur := st.Backends[b.GetName()]
	if cur == nil {
		fmt.Fprintf(&s, "backend %s: create (%s)\n", b.GetName(), config.DriverName(b))
		s.WriteString("  extproc: opened on the first namespace that uses it\n")
		return s.String()
	}
	fmt.Fprintf(&s, "backend %s: update (%s)\n", b.GetName(), config.DriverName(b))
	// Connection strings may hold passwords: name the field, never the value.
	for _, line := range diffLines(cur, b, map[string]bool{"postgres": true, "neptune": true, "redis": true, "nats": true, "kafka": true, "sqlite": true}) {
		fmt.Fprintf(&s, "  change %s\n", line)
	}
	if users := st.Users(b.GetName()); len(users) > 0 {
		fmt.Fprintf(&s, "  extproc: reopens the backend for %s\n", strings.Join(users, ", "))
	}
	return s.String()
}

func planPool(st *desired.State, p *configv1.ExtprocPool) string {
	var s strings.Builder
	if cur := st.Pools[p.GetName()]; cur == nil {
		fmt.Fprintf(&s, "extproc pool %s: create\n", p.GetName())
	} else {
		fmt.Fprintf(&s, "extproc pool %s: update\n", p.GetName())
		for _, line := range diffLines(cur, p, nil) {
			fmt.Fprintf(&s, "  change %s\n", line)
		}
	}
	total := uint64(p.GetWeight())
	for name, q := range st.Pools {
		if name != p.GetName() {
			total += uint64(q.GetWeight())
		}
	}
	share := 0.0
	if total > 0 {
		share = 100 * float64(p.GetWeight()) / float64(total)
	}
	fmt.Fprintf(&s, "  envoy: EDS locality %s with weight %d (%.1f%% of extproc traffic), %d endpoints\n", p.GetName(), p.GetWeight(), share, len(p.GetEndpoints()))
	return s.String()
}

// prepareDelete refuses deletes that would break what still depends on the
// resource, and describes the rest.
func prepareDelete(st *desired.State, k kind, name string) (string, error) {
	if _, ok := st.Get(k.kind, name); !ok {
		return "", notFound("%s %s does not exist", k.singular, name)
	}
	switch k.kind {
	case desired.Backend:
		if users := st.Users(name); len(users) > 0 {
			return "", conflict("backend %s is in use by %s; delete or migrate them first", name, strings.Join(users, ", "))
		}
		return fmt.Sprintf("backend %s: delete\n  its data is left in place\n", name), nil
	case desired.Namespace:
		if _, ok := st.Migrations[name]; ok {
			return "", conflict("namespace %s has a migration; finish or abort it first", name)
		}
		ns := st.Namespaces[name]
		return fmt.Sprintf("namespace %s: delete\n  envoy: its route goes; requests get 404 NOT_FOUND\n  its data is left in backend %s\n", name, ns.GetBackend()), nil
	case desired.Pool:
		var others uint64
		for n, p := range st.Pools {
			if n != name {
				others += uint64(p.GetWeight())
			}
		}
		if others == 0 {
			return "", conflict("extproc pool %s is the last pool with weight; Envoy would have no extproc to send requests to", name)
		}
		return fmt.Sprintf("extproc pool %s: delete\n  envoy: its endpoints leave EDS; traffic shifts to the other pools\n", name), nil
	case desired.Policy:
		return prepareDeletePolicy(st, name)
	}
	return "", invalid("%s cannot be deleted here", k.singular)
}

// diffLines lists changed top-level fields as "field: old → new", values as
// JSON; fields in secret are named without their values.
func diffLines(cur, next proto.Message, secret map[string]bool) []string {
	a, b := fields(cur), fields(next)
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		x, y := a[k], b[k]
		if reflect.DeepEqual(x, y) {
			continue
		}
		if secret[k] {
			out = append(out, k+" (value not shown)")
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s → %s", k, show(x), show(y)))
	}
	return out
}

func fields(m proto.Message) map[string]any {
	var out map[string]any
	b, err := messageJSON.Marshal(m)
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

func show(v any) string {
	if v == nil {
		return "(unset)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
