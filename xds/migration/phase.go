// Package migration is the control-plane half of moving a live KeyValue or
// TimeSeries namespace from one backend to another with shadow traffic: the
// phase state machine (pure functions over the desired state), the promotion
// gate, and the Tracker that keeps what extproc nodes report and what the
// backfill job has copied.
//
// A migration goes SHADOW_WRITE → BACKFILL → SHADOW_READ → PROMOTED →
// DECOMMISSIONED, one step at a time, or to ABORTED from any phase before
// DECOMMISSIONED. The namespace's backend stays `from` until the step to
// DECOMMISSIONED, which points it at `to` in the same desired-state update, so
// that no extproc ever sees a state where the two disagree. ABORTED leaves it
// on `from`.
//
// A TimeSeries migration also hands the assignment of event positions from
// one store to the other when it is promoted (and back when it is
// aborted): see NeedsHandover. The handover itself does I/O on the
// backends, so it is the admin API's job, not this package's.
package migration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
)

// Defaults of a started migration.
const (
	DefaultReadPercent       = 10
	DefaultMismatchThreshold = 0.001
	DefaultMinSample         = 1000
)

// Phase names, shortened for readability.
const (
	ShadowWrite    = configv1.Migration_SHADOW_WRITE
	Backfill       = configv1.Migration_BACKFILL
	ShadowRead     = configv1.Migration_SHADOW_READ
	Promoted       = configv1.Migration_PROMOTED
	Decommissioned = configv1.Migration_DECOMMISSIONED
	Aborted        = configv1.Migration_ABORTED
)

// ErrorKind says how a refused step maps to the API.
type ErrorKind int

// The kinds of refusal.
const (
	// Invalid: the request itself is wrong (400).
	Invalid ErrorKind = iota + 1
	// NotFound: no such namespace or migration (404).
	NotFound
	// Refused: well-formed but not allowed in the current phase or state (409).
	Refused
)

// Error is a step the state machine refuses, with a message for the operator.
type Error struct {
	Kind ErrorKind
	Msg  string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

func errorf(k ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Terminal reports whether a phase ends a migration: nothing moves after it
// and a new start may replace it.
func Terminal(p configv1.Migration_Phase) bool { return p == Decommissioned || p == Aborted }

// Next is the phase `advance` moves to, and whether advance may move there:
// SHADOW_READ only leaves through the promotion gate, terminal phases never.
func Next(p configv1.Migration_Phase) (configv1.Migration_Phase, bool) {
	switch p {
	case ShadowWrite:
		return Backfill, true
	case Backfill:
		return ShadowRead, true
	case Promoted:
		return Decommissioned, true
	}
	return p, false
}

// PhaseName is a phase as operators write it.
func PhaseName(p configv1.Migration_Phase) string { return p.String() }

// NewID returns a fresh migration id: the counters of an earlier migration
// of the same namespace never count towards a new one.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StartOptions are the operator's choices for a new migration. Nil fields
// take the defaults.
type StartOptions struct {
	To                string
	ReadPercent       *float64
	MismatchThreshold *float64
	MinSample         *uint64
	// ID identifies the migration (NewID); the caller supplies it so that
	// Start stays a pure function.
	ID string
}

// replicaDrivers can be an end of a migration: they implement kv.Replica
// and ts.Replica.
var replicaDrivers = map[string]bool{"sqlite": true, "postgres": true}

// ReplicaDriver reports whether a backend's driver can be an end of a
// migration (and of a timeseries handover).
func ReplicaDriver(b *configv1.Backend) bool { return b != nil && replicaDrivers[config.DriverName(b)] }

// Start records a new migration of namespace ns in st, in phase
// SHADOW_WRITE, from the namespace's current backend to o.To.
func Start(st *desired.State, ns string, o StartOptions) (*configv1.Migration, error) {
	n, ok := st.Namespaces[ns]
	if !ok {
		return nil, errorf(NotFound, "namespace %s does not exist", ns)
	}
	a := n.GetAbstraction()
	if a != configv1.Abstraction_KEYVALUE && a != configv1.Abstraction_TIMESERIES {
		return nil, errorf(Invalid, "namespace %s serves %s; only keyvalue and timeseries namespaces can be migrated", ns, config.AbstractionName(a))
	}
	if cur, ok := st.Migrations[ns]; ok && !Terminal(cur.GetPhase()) {
		return nil, errorf(Refused, "namespace %s already has migration %s to %s in phase %s; abort it or finish it first",
			ns, cur.GetId(), cur.GetTo(), PhaseName(cur.GetPhase()))
	}
	if o.To == "" {
		return nil, errorf(Invalid, "start needs the target backend in \"to\"")
	}
	from := n.GetBackend()
	to, ok := st.Backends[o.To]
	switch {
	case !ok:
		return nil, errorf(Invalid, "backend %s does not exist", o.To)
	case o.To == from:
		return nil, errorf(Invalid, "namespace %s is already on backend %s", ns, from)
	case !replicaDrivers[config.DriverName(to)] || !config.Serves(to, a):
		return nil, errorf(Invalid, "backend %s (%s) cannot be a migration target; use a sqlite or postgres backend", o.To, config.DriverName(to))
	}
	if a == configv1.Abstraction_TIMESERIES {
		if err := checkTimeSeriesEnds(ns, st.Backends[from], to); err != nil {
			return nil, err
		}
	}
	if o.ID == "" {
		return nil, errorf(Invalid, "a migration needs an id")
	}
	m := &configv1.Migration{
		Namespace:         ns,
		From:              from,
		To:                o.To,
		Phase:             ShadowWrite,
		ReadPercent:       orDefault(o.ReadPercent, DefaultReadPercent),
		MismatchThreshold: orDefault(o.MismatchThreshold, DefaultMismatchThreshold),
		MinSample:         orDefault(o.MinSample, DefaultMinSample),
		Id:                o.ID,
	}
	if p := m.GetReadPercent(); !(p >= 0 && p <= 100) {
		return nil, errorf(Invalid, "read_percent %v is not within 0..100", p)
	}
	if t := m.GetMismatchThreshold(); !(t >= 0 && t <= 1) || math.IsNaN(t) {
		return nil, errorf(Invalid, "mismatch_threshold %v is not within 0..1", t)
	}
	return m, st.Put(m)
}

// checkTimeSeriesEnds refuses the TimeSeries migrations whose copy cannot
// keep the source's event positions, on which cursors held by clients
// depend.
func checkTimeSeriesEnds(ns string, from, to *configv1.Backend) error {
	src, dst := config.DriverName(from), config.DriverName(to)
	switch {
	case !replicaDrivers[src]:
		return errorf(Invalid, "namespace %s is on backend %s (%s); a timeseries migration needs sqlite or postgres at both ends: only their events have positions a copy can keep",
			ns, from.GetName(), src)
	case dst == "sqlite":
		return errorf(Invalid, "timeseries namespace %s cannot move to sqlite (%s): SQLite numbers events across the whole database file, "+
			"so a copy into it could not keep the positions the clients' cursors name; migrate to a postgres backend instead", ns, to.GetName())
	}
	return nil
}

// NeedsHandover reports whether a migration's promotion, and its abort
// after promotion, must hand over event positions between its stores:
// those of a TimeSeries namespace, where exactly one store may assign
// positions at a time.
func NeedsHandover(st *desired.State, m *configv1.Migration) bool {
	return st.Namespaces[m.GetNamespace()].GetAbstraction() == configv1.Abstraction_TIMESERIES
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// active returns the namespace's migration, refusing a missing or ended one.
func active(st *desired.State, ns, action string) (*configv1.Migration, error) {
	m, ok := st.Migrations[ns]
	if !ok {
		return nil, errorf(NotFound, "namespace %s has no migration", ns)
	}
	if Terminal(m.GetPhase()) {
		return nil, errorf(Refused, "cannot %s: migration %s of %s has ended (%s); start a new one", action, m.GetId(), ns, PhaseName(m.GetPhase()))
	}
	return m, nil
}

// Advance moves the migration of ns one phase forward. Reaching
// DECOMMISSIONED points the namespace at `to` in the same update.
func Advance(st *desired.State, ns string) (*configv1.Migration, error) {
	cur, err := active(st, ns, "advance")
	if err != nil {
		return nil, err
	}
	next, ok := Next(cur.GetPhase())
	if !ok {
		return nil, errorf(Refused, "migration of %s is in %s; it leaves that phase only by promote (which checks the mismatch rate)", ns, PhaseName(cur.GetPhase()))
	}
	m := proto.Clone(cur).(*configv1.Migration)
	m.Phase = next
	if next == Decommissioned {
		n, ok := st.Namespaces[ns]
		if !ok {
			return nil, errorf(NotFound, "namespace %s does not exist", ns)
		}
		n = proto.Clone(n).(*configv1.Namespace)
		n.Backend = m.GetTo()
		if err := st.Put(n); err != nil {
			return nil, err
		}
	}
	return m, st.Put(m)
}

// Promote moves the migration of ns from SHADOW_READ to PROMOTED when the
// gate allows it, or when forced. g must be the gate of this migration's id
// and compare epoch (a gate computed for an earlier window is refused).
func Promote(st *desired.State, ns string, g Gate, force bool) (*configv1.Migration, error) {
	cur, err := active(st, ns, "promote")
	if err != nil {
		return nil, err
	}
	if cur.GetPhase() != ShadowRead {
		return nil, errorf(Refused, "promote needs phase SHADOW_READ; migration of %s is in %s", ns, PhaseName(cur.GetPhase()))
	}
	if g.ID != cur.GetId() || g.Epoch != cur.GetCompareEpoch() {
		return nil, errorf(Refused, "the migration of %s changed while promoting; retry", ns)
	}
	if !g.CanPromote && !force {
		return nil, errorf(Refused, "promotion refused: %s (repeat with force to promote anyway)", g.Reason)
	}
	m := proto.Clone(cur).(*configv1.Migration)
	m.Phase = Promoted
	return m, st.Put(m)
}

// WithHandoverFloor records in st the floor of a handover that was run for
// m (its promotion, or its abort after promotion): extproc nodes read it to
// know which store holds a tail cursor's position.
func WithHandoverFloor(st *desired.State, m *configv1.Migration, floor int64) (*configv1.Migration, error) {
	m = proto.Clone(m).(*configv1.Migration)
	m.HandoverFloor = floor
	return m, st.Put(m)
}

// Abort ends the migration of ns; the namespace stays on `from` (its
// backend never changed before DECOMMISSIONED).
func Abort(st *desired.State, ns string) (*configv1.Migration, error) {
	cur, err := active(st, ns, "abort")
	if err != nil {
		return nil, err
	}
	m := proto.Clone(cur).(*configv1.Migration)
	m.Phase = Aborted
	return m, st.Put(m)
}

// ResetCompare starts a new shadow-read comparison window, after a repair
// has fixed the keys that mismatched: counters of the old window no longer
// count towards promotion.
func ResetCompare(st *desired.State, ns string) (*configv1.Migration, error) {
	cur, err := active(st, ns, "reset the comparison of")
	if err != nil {
		return nil, err
	}
	m := proto.Clone(cur).(*configv1.Migration)
	m.CompareEpoch++
	return m, st.Put(m)
}
