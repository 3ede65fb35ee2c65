package planner

import (
	"fmt"
	"slices"
	"strings"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

// Preference orders the drivers auto considers for ns, with the reason for
// the order (see the package doc).
func Preference(ns *configv1.Namespace, o Options) ([]string, string) {
	var prefs []string
	var why string
	switch ns.GetAbstraction() {
	case configv1.Abstraction_KEYVALUE:
		prefs, why = []string{"postgres", "sqlite"}, "keyvalue prefers postgres"
	case configv1.Abstraction_TIMESERIES:
		switch ns.GetAccessPattern() {
		case configv1.AccessPattern_READ_HEAVY, configv1.AccessPattern_BALANCED:
			prefs, why = []string{"nats", "kafka", "postgres", "sqlite"}, "read-heavy timeseries prefers JetStream's per-series reads"
		default:
			prefs, why = []string{"kafka", "nats", "postgres", "sqlite"}, "append- and write-heavy timeseries prefers a partitioned log"
		}
	case configv1.Abstraction_GRAPH:
		prefs, why = []string{"neptune", "postgres", "sqlite"}, "graph prefers a graph database"
	default:
		return nil, ""
	}
	if ns.GetEstimatedWriteRps() > o.SQLiteMaxWriteRPS || ns.GetEstimatedDataSizeGb() > o.SQLiteMaxDataGB {
		prefs = slices.DeleteFunc(prefs, func(d string) bool { return d == "sqlite" })
		why += fmt.Sprintf("; sqlite skipped above %g writes/s or %g GB", o.SQLiteMaxWriteRPS, o.SQLiteMaxDataGB)
	}
	return prefs, why
}

// ChooseBackend resolves backend: auto for a new namespace: the first
// declared backend (in the order given) of the most preferred driver that
// serves the abstraction. serves reports whether a backend can.
func ChooseBackend(ns *configv1.Namespace, backends []*configv1.Backend, serves func(*configv1.Backend, configv1.Abstraction) bool, o Options) (string, string, error) {
	prefs, why := Preference(ns, o)
	if prefs == nil {
		return "", "", fieldErr(ns.GetNamespace(), "abstraction", "is required (keyvalue, timeseries or graph) to choose a backend")
	}
	for _, driver := range prefs {
		for _, b := range backends {
			if config.DriverName(b) == driver && serves(b, ns.GetAbstraction()) {
				return b.GetName(), fmt.Sprintf("first declared %s backend; %s (%s)", driver, why, strings.Join(prefs, " > ")), nil
			}
		}
	}
	return "", "", fieldErr(ns.GetNamespace(), "backend", "auto found no declared backend for %s (want one of: %s; %s)",
		strings.ToLower(ns.GetAbstraction().String()), strings.Join(prefs, ", "), why)
}
