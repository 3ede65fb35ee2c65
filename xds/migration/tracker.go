package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
)

// Bounds of what the Tracker keeps in memory.
const (
	// SeriesInterval is the width of one point of the chart series.
	SeriesInterval = 5 * time.Second
	// SeriesPoints is how many points a series keeps (an hour).
	SeriesPoints = 720
	// maxSampleKeys bounds the mismatch and failed key samples, per node and
	// summed.
	maxSampleKeys = 100
)

// Values persists small records outside the desired state, so that writing
// them causes no xDS push (xds/store's Values).
type Values interface {
	GetValue(ctx context.Context, name string) (value []byte, ok bool, err error)
	PutValue(ctx context.Context, name string, value []byte) error
}

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	// State returns the desired state in force (the controller's State).
	State func() *desired.State
	// Values persists backfill progress and phase history; default memory
	// (lost on restart).
	Values Values
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Tracker keeps what the control plane knows about running migrations
// beyond the desired state: the counters extproc nodes report (in memory
// only: they are cumulative per node and resent), a chart series of them,
// and the backfill progress and phase history (persisted in Values).
// It is the report.Sink of the control plane.
type Tracker struct {
	opts TrackerOptions

	mu sync.Mutex
	// windows holds the counters of each namespace's current migration id
	// and compare epoch.
	windows map[string]*window
}

// window is one comparison window: a migration id and compare epoch.
type window struct {
	id     string
	epoch  uint64
	nodes  map[string]nodeReport
	series []Point
}

type nodeReport struct {
	c  *configv1.MigrationCounters
	at time.Time
}

// Point is one point of the chart series: the totals at a moment.
type Point struct {
	At                  time.Time `json:"at"`
	ReadsCompared       uint64    `json:"reads_compared"`
	Mismatches          uint64    `json:"mismatches"`
	ShadowWrites        uint64    `json:"shadow_writes"`
	ShadowWriteFailures uint64    `json:"shadow_write_failures"`
}

// NewTracker makes a Tracker.
func NewTracker(opts TrackerOptions) *Tracker {
	if opts.Values == nil {
		opts.Values = NewMemoryValues()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.State == nil {
		opts.State = desired.New
	}
	return &Tracker{opts: opts, windows: map[string]*window{}}
}

// Report implements report.Sink: it keeps the node's latest counters of
// each migration that matches the current id and compare epoch, and drops
// counters of earlier (or not yet known) ones.
func (t *Tracker) Report(ctx context.Context, r *configv1.MigrationReport) error {
	node := r.GetNode()
	if node == "" || len(node) > 256 {
		return status.Error(codes.InvalidArgument, "a migration report needs the node id (1..256 bytes)")
	}
	st := t.opts.State()
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range r.GetMigrations() {
		m, ok := st.Migrations[c.GetNamespace()]
		if !ok || m.GetId() != c.GetMigrationId() || m.GetCompareEpoch() != c.GetCompareEpoch() {
			t.opts.Logger.Debug("stale migration counters ignored", "node", node, "namespace", c.GetNamespace(),
				"migration_id", c.GetMigrationId(), "compare_epoch", c.GetCompareEpoch())
			continue
		}
		c = proto.Clone(c).(*configv1.MigrationCounters)
		c.MismatchKeys = capKeys(c.MismatchKeys)
		c.FailedKeys = capKeys(c.FailedKeys)
		w := t.window(m)
		w.nodes[node] = nodeReport{c: c, at: now}
		w.addPoint(now)
	}
	return nil
}

// window returns the window of m's id and epoch, starting a new one when
// they changed; t.mu is held.
func (t *Tracker) window(m *configv1.Migration) *window {
	w := t.windows[m.GetNamespace()]
	if w == nil || w.id != m.GetId() || w.epoch != m.GetCompareEpoch() {
		w = &window{id: m.GetId(), epoch: m.GetCompareEpoch(), nodes: map[string]nodeReport{}}
		t.windows[m.GetNamespace()] = w
	}
	return w
}

func (w *window) totals() Totals {
	var s Totals
	for _, n := range w.nodes {
		s.ShadowWrites += n.c.GetShadowWrites()
		s.ShadowWriteFailures += n.c.GetShadowWriteFailures()
		s.ReadsCompared += n.c.GetReadsCompared()
		s.Mismatches += n.c.GetMismatches()
	}
	return s
}

// addPoint records the totals at now, one point per SeriesInterval (a later
// report within the interval replaces the point).
func (w *window) addPoint(now time.Time) {
	s := w.totals()
	p := Point{At: now.Truncate(SeriesInterval).UTC(), ReadsCompared: s.ReadsCompared, Mismatches: s.Mismatches,
		ShadowWrites: s.ShadowWrites, ShadowWriteFailures: s.ShadowWriteFailures}
	if n := len(w.series); n > 0 && w.series[n-1].At.Equal(p.At) {
		w.series[n-1] = p
		return
	}
	w.series = append(w.series, p)
	if len(w.series) > SeriesPoints {
		w.series = slices.Delete(w.series, 0, len(w.series)-SeriesPoints)
	}
}

func capKeys(keys []string) []string {
	if len(keys) > maxSampleKeys {
		return keys[:maxSampleKeys]
	}
	return keys
}

// Stats are the counters of a migration's current window.
type Stats struct {
	Totals
	MismatchRate float64              `json:"mismatch_rate"`
	MismatchKeys []string             `json:"mismatch_keys"`
	FailedKeys   []string             `json:"failed_keys"`
	Nodes        map[string]NodeStats `json:"nodes"`
}

// NodeStats is one node's latest report.
type NodeStats struct {
	ShadowWrites        uint64    `json:"shadow_writes"`
	ShadowWriteFailures uint64    `json:"shadow_write_failures"`
	ReadsCompared       uint64    `json:"reads_compared"`
	Mismatches          uint64    `json:"mismatches"`
	MismatchKeys        []string  `json:"mismatch_keys"`
	FailedKeys          []string  `json:"failed_keys"`
	Phase               string    `json:"phase"`
	ReportedAt          time.Time `json:"reported_at"`
}

// stats returns the counters and series of m's current window.
func (t *Tracker) stats(m *configv1.Migration) (Stats, []Point) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{MismatchKeys: []string{}, FailedKeys: []string{}, Nodes: map[string]NodeStats{}}
	w := t.windows[m.GetNamespace()]
	if w == nil || w.id != m.GetId() || w.epoch != m.GetCompareEpoch() {
		return s, []Point{}
	}
	s.Totals = w.totals()
	s.MismatchRate = s.Totals.MismatchRate()
	for node, r := range w.nodes {
		c := r.c
		s.Nodes[node] = NodeStats{
			ShadowWrites: c.GetShadowWrites(), ShadowWriteFailures: c.GetShadowWriteFailures(),
			ReadsCompared: c.GetReadsCompared(), Mismatches: c.GetMismatches(),
			MismatchKeys: nonNil(c.GetMismatchKeys()), FailedKeys: nonNil(c.GetFailedKeys()),
			Phase: PhaseName(c.GetPhase()), ReportedAt: r.at.UTC(),
		}
		s.MismatchKeys = append(s.MismatchKeys, c.GetMismatchKeys()...)
		s.FailedKeys = append(s.FailedKeys, c.GetFailedKeys()...)
	}
	s.MismatchKeys = sampleKeys(s.MismatchKeys)
	s.FailedKeys = sampleKeys(s.FailedKeys)
	return s, slices.Clone(w.series)
}

// sampleKeys sorts and deduplicates a key sample and bounds it.
func sampleKeys(keys []string) []string {
	slices.Sort(keys)
	return capKeys(slices.Compact(keys))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// HistoryEntry is one accepted step of a migration.
type HistoryEntry struct {
	Phase string    `json:"phase"`
	At    time.Time `json:"at"`
	// Action is the step that led here: start, advance, promote, abort or
	// reset_compare.
	Action       string `json:"action"`
	CompareEpoch uint64 `json:"compare_epoch"`
}

// BackfillStatus is the progress of the backfill job as it last reported.
type BackfillStatus struct {
	// State is idle (no report yet), running or done.
	State        string `json:"state"`
	Checkpoint   string `json:"checkpoint"`
	KeysDone     uint64 `json:"keys_done"`
	KeysTotal    uint64 `json:"keys_total"`
	Copied       uint64 `json:"copied"`
	SkippedNewer uint64 `json:"skipped_newer"`
	// Moved counts TimeSeries events the target could not store at their
	// source position (ts.Replica.Copy); cursors naming them do not carry
	// over exactly.
	Moved uint64  `json:"moved"`
	Rate  float64 `json:"rate"` // keys (events) per second between the last two reports
	// UpdatedAt is when the job last reported; nil while idle.
	UpdatedAt *time.Time `json:"updated_at"`
	// Job names the job that last reported (host/pid/random), if it
	// named itself; it holds the backfill for JobLease after each report.
	Job string `json:"job,omitempty"`
}

// JobLease is how long a backfill job's report keeps another job of the
// same migration from reporting: two jobs copying at once would interleave
// their checkpoints. Jobs report every second; a job killed without a
// word lets another take over this long after its last report.
const JobLease = 5 * time.Second

// BackfillUpdate is what the backfill job reports. For a TimeSeries
// namespace the keys are events, the checkpoint is the export position and
// SkippedNewer counts events the target already had.
type BackfillUpdate struct {
	// MigrationID, when set, must be the current migration's: a job of an
	// earlier migration must not report into a new one.
	MigrationID  string `json:"migration_id"`
	Checkpoint   string `json:"checkpoint"`
	KeysDone     uint64 `json:"keys_done"`
	KeysTotal    uint64 `json:"keys_total"`
	Copied       uint64 `json:"copied"`
	SkippedNewer uint64 `json:"skipped_newer"`
	Moved        uint64 `json:"moved,omitempty"`
	Done         bool   `json:"done"`
	// Job names the reporting job; a report of another job while the last
	// reporter's lease runs is refused. Empty: no lease (older clients).
	Job string `json:"job,omitempty"`
}

// record is what Values holds per namespace: the bookkeeping of its
// current (or last) migration.
type record struct {
	ID       string         `json:"id"`
	History  []HistoryEntry `json:"history"`
	Backfill BackfillStatus `json:"backfill"`
}

func recordName(ns string) string { return "migration/" + ns }

// load reads the record of m's id, or an empty one.
func (t *Tracker) load(ctx context.Context, m *configv1.Migration) (record, error) {
	empty := record{ID: m.GetId(), History: []HistoryEntry{}, Backfill: BackfillStatus{State: "idle"}}
	b, ok, err := t.opts.Values.GetValue(ctx, recordName(m.GetNamespace()))
	if err != nil {
		return record{}, fmt.Errorf("migration of %s: %w", m.GetNamespace(), err)
	}
	if !ok {
		return empty, nil
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("migration of %s: stored record: %w", m.GetNamespace(), err)
	}
	if r.ID != m.GetId() {
		return empty, nil
	}
	if r.History == nil {
		r.History = []HistoryEntry{}
	}
	return r, nil
}

func (t *Tracker) save(ctx context.Context, ns string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("migration of %s: encode record: %w", ns, err)
	}
	if err := t.opts.Values.PutValue(ctx, recordName(ns), b); err != nil {
		return fmt.Errorf("migration of %s: %w", ns, err)
	}
	return nil
}

// RecordStep appends an accepted step of m to its history. A new id
// replaces the record of the namespace's previous migration.
func (t *Tracker) RecordStep(ctx context.Context, m *configv1.Migration, action string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.load(ctx, m)
	if err != nil {
		return err
	}
	r.History = append(r.History, HistoryEntry{Phase: PhaseName(m.GetPhase()), At: t.opts.Now().UTC(), Action: action, CompareEpoch: m.GetCompareEpoch()})
	return t.save(ctx, m.GetNamespace(), r)
}

// Backfill returns the backfill progress of m.
func (t *Tracker) Backfill(ctx context.Context, m *configv1.Migration) (BackfillStatus, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.load(ctx, m)
	return r.Backfill, err
}

// SaveBackfill stores the progress the backfill job of m reports. The job
// runs in BACKFILL (and may finish in SHADOW_READ); reports for another
// migration id are refused.
func (t *Tracker) SaveBackfill(ctx context.Context, m *configv1.Migration, u BackfillUpdate) (BackfillStatus, error) {
	ns := m.GetNamespace()
	if u.MigrationID != "" && u.MigrationID != m.GetId() {
		return BackfillStatus{}, errorf(Refused, "backfill progress is for migration %s but %s is migrating under id %s", u.MigrationID, ns, m.GetId())
	}
	if p := m.GetPhase(); p != Backfill && p != ShadowRead {
		return BackfillStatus{}, errorf(Refused, "migration of %s is in %s; backfill runs in BACKFILL or SHADOW_READ", ns, PhaseName(p))
	}
	if u.KeysTotal > 0 && u.KeysDone > u.KeysTotal {
		u.KeysTotal = u.KeysDone // keys written since the counting scan
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.load(ctx, m)
	if err != nil {
		return BackfillStatus{}, err
	}
	now := t.opts.Now().UTC()
	prev := r.Backfill
	if held := prev.Job != "" && prev.State == "running" && prev.UpdatedAt != nil; held && u.Job != "" && u.Job != prev.Job {
		if age := now.Sub(*prev.UpdatedAt); age < JobLease {
			return BackfillStatus{}, errorf(Refused, "backfill job %s is copying %s (it reported %s ago); a second job would interleave its progress: "+
				"wait for it to end, or stop it (its lease lapses %s after its last report)", prev.Job, ns, age.Round(time.Millisecond), JobLease)
		}
	}
	b := BackfillStatus{State: "running", Checkpoint: u.Checkpoint, KeysDone: u.KeysDone, KeysTotal: u.KeysTotal,
		Copied: u.Copied, SkippedNewer: u.SkippedNewer, Moved: u.Moved, UpdatedAt: &now, Job: u.Job}
	if u.Done {
		b.State = "done"
	}
	if prev.UpdatedAt != nil && u.KeysDone >= prev.KeysDone {
		if dt := now.Sub(*prev.UpdatedAt).Seconds(); dt > 0 {
			b.Rate = float64(u.KeysDone-prev.KeysDone) / dt
		}
	}
	r.Backfill = b
	if err := t.save(ctx, ns, r); err != nil {
		return BackfillStatus{}, err
	}
	return b, nil
}

// Gate decides the promotion of m from the counters in memory and the
// backfill progress bf (read with Backfill before a store transaction).
func (t *Tracker) Gate(m *configv1.Migration, bf BackfillStatus) Gate {
	s, _ := t.stats(m)
	return CheckGate(m, s.Totals, bf.State == "done")
}

// Status is everything an operator sees about one migration.
type Status struct {
	// Migration is the desired-state resource as proto JSON (field names
	// as operators write them).
	Migration json.RawMessage `json:"migration"`
	// Abstraction is the namespace's (keyvalue, timeseries), which says
	// whether the backfill counts keys or events.
	Abstraction  string         `json:"abstraction"`
	Stats        Stats          `json:"stats"`
	Series       []Point        `json:"series"`
	Backfill     BackfillStatus `json:"backfill"`
	Gate         Gate           `json:"gate"`
	History      []HistoryEntry `json:"history"`
	StateVersion int64          `json:"state_version"`
}

var migrationJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// Status reports the migration of ns in st.
func (t *Tracker) Status(ctx context.Context, st *desired.State, ns string) (Status, error) {
	m, ok := st.Migrations[ns]
	if !ok {
		return Status{}, errorf(NotFound, "namespace %s has no migration", ns)
	}
	t.mu.Lock()
	r, err := t.load(ctx, m)
	t.mu.Unlock()
	if err != nil {
		return Status{}, err
	}
	body, err := migrationJSON.Marshal(m)
	if err != nil {
		return Status{}, fmt.Errorf("migration of %s: encode: %w", ns, err)
	}
	s, series := t.stats(m)
	return Status{
		Migration:    body,
		Abstraction:  config.AbstractionName(st.Namespaces[ns].GetAbstraction()),
		Stats:        s,
		Series:       series,
		Backfill:     r.Backfill,
		Gate:         CheckGate(m, s.Totals, r.Backfill.State == "done"),
		History:      r.History,
		StateVersion: st.Version,
	}, nil
}

// List reports every migration in st, in namespace order.
func (t *Tracker) List(ctx context.Context, st *desired.State) ([]Status, error) {
	out := []Status{}
	for _, ns := range st.SortedNames(desired.Migration) {
		s, err := t.Status(ctx, st, ns)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// MemoryValues is Values in memory, for tests and a control plane without a
// persistent store.
type MemoryValues struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryValues returns empty MemoryValues.
func NewMemoryValues() *MemoryValues { return &MemoryValues{m: map[string][]byte{}} }

// GetValue implements Values.
func (v *MemoryValues) GetValue(_ context.Context, name string) ([]byte, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, ok := v.m[name]
	return slices.Clone(b), ok, nil
}

// PutValue implements Values.
func (v *MemoryValues) PutValue(_ context.Context, name string, value []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m[name] = slices.Clone(value)
	return nil
}
