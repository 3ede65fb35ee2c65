package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/migration"
)

// Migrations is what the migration routes need of a migration.Tracker.
type Migrations interface {
	Status(ctx context.Context, st *desired.State, ns string) (migration.Status, error)
	List(ctx context.Context, st *desired.State) ([]migration.Status, error)
	RecordStep(ctx context.Context, m *configv1.Migration, action string) error
	Backfill(ctx context.Context, m *configv1.Migration) (migration.BackfillStatus, error)
	SaveBackfill(ctx context.Context, m *configv1.Migration, u migration.BackfillUpdate) (migration.BackfillStatus, error)
	Gate(m *configv1.Migration, bf migration.BackfillStatus) migration.Gate
}

// registerMigrations adds the migration routes: status and phase steps of a
// namespace's migration, and the progress reports of its backfill job.
func (h *Handler) registerMigrations() {
	if h.opts.Migrations == nil {
		h.opts.Migrations = migration.NewTracker(migration.TrackerOptions{State: h.ctl.State, Logger: h.opts.Logger})
	}
	h.mux.Handle("/v1/admin/migrations", h.handle(map[string]handlerFunc{http.MethodGet: h.listMigrations}))
	h.mux.Handle("/v1/admin/namespaces/{name}/migration", h.handle(map[string]handlerFunc{
		http.MethodGet:    h.getMigration,
		http.MethodPost:   h.stepMigration,
		http.MethodDelete: h.deleteMigration,
	}))
	h.mux.Handle("/v1/admin/namespaces/{name}/migration/backfill", h.handle(map[string]handlerFunc{
		http.MethodPut: h.putBackfill,
	}))
}

func (h *Handler) listMigrations(w http.ResponseWriter, r *http.Request) error {
	st := h.ctl.State()
	list, err := h.opts.Migrations.List(r.Context(), st)
	if err != nil {
		return migrationError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"migrations": list, "state_version": st.Version})
	return nil
}

func (h *Handler) getMigration(w http.ResponseWriter, r *http.Request) error {
	s, err := h.opts.Migrations.Status(r.Context(), h.ctl.State(), r.PathValue("name"))
	if err != nil {
		return migrationError(err)
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// migrationStep is the body of POST .../migration.
type migrationStep struct {
	// Action is start, advance, promote, abort or reset_compare.
	Action            string   `json:"action"`
	To                string   `json:"to"`
	ReadPercent       *float64 `json:"read_percent"`
	MismatchThreshold *float64 `json:"mismatch_threshold"`
	MinSample         *uint64  `json:"min_sample"`
	Force             bool     `json:"force"`
}

// stepMigration applies one step of the state machine in one desired-state
// update, then records it in the migration's history.
func (h *Handler) stepMigration(w http.ResponseWriter, r *http.Request) error {
	ns := r.PathValue("name")
	var req migrationStep
	if err := decodeStrict(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	var step func(next *desired.State) (*configv1.Migration, error)
	switch req.Action {
	case "start":
		opts := migration.StartOptions{To: req.To, ReadPercent: req.ReadPercent, MismatchThreshold: req.MismatchThreshold, MinSample: req.MinSample, ID: migration.NewID()}
		step = func(next *desired.State) (*configv1.Migration, error) { return migration.Start(next, ns, opts) }
	case "advance":
		step = func(next *desired.State) (*configv1.Migration, error) { return migration.Advance(next, ns) }
	case "abort":
		step = func(next *desired.State) (*configv1.Migration, error) { return migration.Abort(next, ns) }
	case "reset_compare":
		step = func(next *desired.State) (*configv1.Migration, error) { return migration.ResetCompare(next, ns) }
	case "promote":
		// The backfill progress is read before the store transaction (the
		// SQLite store has one connection, held by the transaction); the
		// gate is then checked against the migration the transaction sees.
		var bf migration.BackfillStatus
		if cur, ok := h.ctl.State().Migrations[ns]; ok {
			var err error
			if bf, err = h.opts.Migrations.Backfill(ctx, cur); err != nil {
				return migrationError(err)
			}
		}
		step = func(next *desired.State) (*configv1.Migration, error) {
			var g migration.Gate
			if m, ok := next.Migrations[ns]; ok {
				g = h.opts.Migrations.Gate(m, bf)
			}
			return migration.Promote(next, ns, g, req.Force)
		}
	case "":
		return invalid(`the body needs "action": start, advance, promote, abort or reset_compare`)
	default:
		return invalid("unknown action %q: want start, advance, promote, abort or reset_compare", req.Action)
	}
	if req.Action != "start" && (req.To != "" || req.ReadPercent != nil || req.MismatchThreshold != nil || req.MinSample != nil) {
		return invalid("to, read_percent, mismatch_threshold and min_sample go with action start only")
	}
	if req.Force && req.Action != "promote" {
		return invalid("force goes with action promote only")
	}
	var m *configv1.Migration
	var ran *handover
	st, _, err := h.ctl.Update(ctx, func(next *desired.State) error {
		prev := next.Migrations[ns]
		var err error
		if m, err = step(next); err != nil {
			return err
		}
		m, ran, err = h.handOver(ctx, next, req.Action, prev, m)
		return err
	})
	if err != nil {
		if ran != nil && st == nil {
			// Not stored: extproc nodes still act on the phase before the
			// step, so the store that assigns positions must be the one
			// it had.
			return h.undoHandover(ctx, ran, req.Action, err)
		}
		return migrationError(err)
	}
	if err := h.opts.Migrations.RecordStep(ctx, m, req.Action); err != nil {
		// The step is in force; only its history entry is missing.
		h.opts.Logger.Warn("migration step not recorded in its history", "namespace", ns, "err", err)
	}
	h.opts.Logger.Info("migration step", "namespace", ns, "action", req.Action, "force", req.Force, "migration_id", m.GetId(),
		"phase", m.GetPhase().String(), "compare_epoch", m.GetCompareEpoch(), "handover_floor", m.GetHandoverFloor(), "state_version", st.Version)
	s, err := h.opts.Migrations.Status(ctx, st, ns)
	if err != nil {
		return migrationError(err)
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// Handover hands the assignment of event positions of a TimeSeries
// migration's namespace from one of its stores to the other (m.From and
// m.To, given as their backend configs): forward (reverse false) it seals
// from and unseals to above the floor from reports, reverse the other way
// round. It returns that floor. Running it twice in a row returns the
// same floor, since sealing a sealed store does.
type Handover func(ctx context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (floor int64, err error)

// handoverTimeout bounds one handover. It runs detached from the request,
// so that a client going away cannot stop it between the seal and the
// unseal.
const handoverTimeout = 30 * time.Second

// handover is a handover that ran inside a step's desired-state update,
// kept to undo it when the update is not stored.
type handover struct {
	m        *configv1.Migration
	from, to *configv1.Backend
	reverse  bool
}

// ends names the store the handover seals and the one it unseals.
func (ho *handover) ends() (sealed, unsealed string) {
	if ho.reverse {
		return ho.to.GetName(), ho.from.GetName()
	}
	return ho.from.GetName(), ho.to.GetName()
}

// handOver runs the handover a step needs, if any, and returns m with its
// floor recorded in next: promoting a TimeSeries migration hands position
// assignment from `from` to `to`, aborting it (in any phase) hands it back
// to `from`. It runs inside the update, after the step (and so the gate)
// allowed it, so that the store's lock keeps other steps of the migration
// from interleaving; Controller.Update calls its change function once (and
// a repeated handover would only return the same floor).
func (h *Handler) handOver(ctx context.Context, next *desired.State, action string, prev, m *configv1.Migration) (*configv1.Migration, *handover, error) {
	reverse := false
	switch {
	case !migration.NeedsHandover(next, m):
		return m, nil, nil
	case prev.GetPhase() == migration.ShadowRead && m.GetPhase() == migration.Promoted:
	case m.GetPhase() == migration.Aborted:
		// After promotion this hands positions back; before it, it only
		// makes sure `from` assigns them, even after a handover whose undo
		// failed (sealing `to`, which takes no appends then, costs nothing).
		reverse = true
	default:
		return m, nil, nil
	}
	ns := m.GetNamespace()
	if h.opts.Handover == nil {
		return nil, nil, &apiError{http.StatusInternalServerError, CodeInternal, fmt.Sprintf(
			"cannot %s the timeseries migration of %s: this control plane has no handover hook to seal and unseal the two stores "+
				"(it must be built with backfill.Handover in admin.Options); nothing changed", action, ns)}
	}
	ho := &handover{m: m, from: next.Backends[m.GetFrom()], to: next.Backends[m.GetTo()], reverse: reverse}
	floor, err := h.runHandover(ctx, ho)
	if err != nil {
		sealed, unsealed := ho.ends()
		return nil, nil, &apiError{http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf(
			"handing the event positions of %s over from %s to %s failed, so the migration stays in %s; retry the %s: %v",
			ns, sealed, unsealed, migration.PhaseName(prev.GetPhase()), action, err)}
	}
	if prev.GetPhase() != migration.Promoted && m.GetPhase() == migration.Aborted {
		// `to` never assigned positions: there is no floor for tails to
		// mind (a floor in an ABORTED migration tells extproc nodes that
		// `to` holds events up to it, which only holds after promotion).
		return m, ho, nil
	}
	m, err = migration.WithHandoverFloor(next, m, floor)
	return m, ho, err
}

// forcedSwitch hands event positions over when a PUT with ?force=true
// moves a timeseries namespace between two SQL backends without a
// migration: the new backend may still be sealed by a migration that
// ended (the target of an abort), and would refuse every append, and the
// old one must not assign positions the new one also gives. Other
// switches need nothing.
// It returns the handover it ran, to undo when the PUT is not stored.
func (h *Handler) forcedSwitch(ctx context.Context, next *desired.State, n *configv1.Namespace) (*handover, error) {
	cur := next.Namespaces[n.GetNamespace()]
	if cur == nil || cur.GetBackend() == n.GetBackend() || n.GetAbstraction() != configv1.Abstraction_TIMESERIES {
		return nil, nil
	}
	from, to := next.Backends[cur.GetBackend()], next.Backends[n.GetBackend()]
	if !migration.ReplicaDriver(from) || !migration.ReplicaDriver(to) || h.opts.Handover == nil {
		return nil, nil
	}
	ho := &handover{m: &configv1.Migration{Namespace: n.GetNamespace(), From: from.GetName(), To: to.GetName(), Id: "forced-switch"}, from: from, to: to}
	if _, err := h.runHandover(ctx, ho); err != nil {
		return nil, &apiError{http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf(
			"switching timeseries namespace %s from %s to %s needs %s sealed and %s unsealed, which failed; nothing changed: %v",
			n.GetNamespace(), from.GetName(), to.GetName(), from.GetName(), to.GetName(), err)}
	}
	return ho, nil
}

// runHandover calls the hook for ho, detached from the request, and logs
// the floor and how long the stores took.
func (h *Handler) runHandover(ctx context.Context, ho *handover) (int64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverTimeout)
	defer cancel()
	sealed, unsealed := ho.ends()
	began := time.Now()
	floor, err := h.opts.Handover(ctx, ho.m, ho.from, ho.to, ho.reverse)
	took := time.Since(began)
	if err != nil {
		h.opts.Logger.Error("timeseries handover failed", "namespace", ho.m.GetNamespace(), "migration_id", ho.m.GetId(),
			"seal", sealed, "unseal", unsealed, "took", took, "err", err)
		return 0, err
	}
	h.opts.Logger.Info("timeseries handover", "namespace", ho.m.GetNamespace(), "migration_id", ho.m.GetId(),
		"sealed", sealed, "unsealed", unsealed, "floor", floor, "took", took)
	return floor, nil
}

// undoHandover runs ho the other way round after the step that ran it was
// not stored (cause), and returns the error to answer with.
func (h *Handler) undoHandover(ctx context.Context, ho *handover, action string, cause error) error {
	undo := *ho
	undo.reverse = !ho.reverse
	ns := ho.m.GetNamespace()
	if _, err := h.runHandover(ctx, &undo); err != nil {
		sealed, unsealed := ho.ends()
		return &apiError{http.StatusInternalServerError, CodeInternal, fmt.Sprintf(
			"the %s of %s was not stored (%s), and undoing its handover failed: %s stays sealed and %s takes the appends; "+
				"retry the %s (see the prism xds log): %v", action, ns, toAPIError(migrationError(cause)).Message, sealed, unsealed, action, err)}
	}
	h.opts.Logger.Warn("timeseries handover undone: the step was not stored", "namespace", ns, "action", action, "err", cause)
	return migrationError(cause)
}

// deleteMigration forgets an ended migration. Until then it stays visible,
// and it keeps its backends in use (a backend cannot be deleted while a
// migration names it).
func (h *Handler) deleteMigration(w http.ResponseWriter, r *http.Request) error {
	ns := r.PathValue("name")
	st, _, err := h.ctl.Update(r.Context(), func(next *desired.State) error {
		m, ok := next.Migrations[ns]
		switch {
		case !ok:
			return notFound("namespace %s has no migration", ns)
		case !migration.Terminal(m.GetPhase()):
			return conflict("migration %s of %s is in %s; abort it or finish it before deleting it", m.GetId(), ns, m.GetPhase())
		}
		next.Delete(desired.Migration, ns)
		return nil
	})
	if err != nil {
		return err
	}
	h.opts.Logger.Info("migration deleted", "namespace", ns, "state_version", st.Version)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": "migration of " + ns, "state_version": st.Version})
	return nil
}

// putBackfill stores the progress of the backfill job; it never changes
// the desired state, so it causes no xDS push.
func (h *Handler) putBackfill(w http.ResponseWriter, r *http.Request) error {
	ns := r.PathValue("name")
	var u migration.BackfillUpdate
	if err := decodeStrict(r, &u); err != nil {
		return err
	}
	st := h.ctl.State()
	m, ok := st.Migrations[ns]
	if !ok {
		return notFound("namespace %s has no migration", ns)
	}
	if _, err := h.opts.Migrations.SaveBackfill(r.Context(), m, u); err != nil {
		return migrationError(err)
	}
	s, err := h.opts.Migrations.Status(r.Context(), st, ns)
	if err != nil {
		return migrationError(err)
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// decodeStrict reads a JSON body, refusing unknown fields and trailing data.
func decodeStrict(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}
		}
		return invalid("reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("request body: %v", err)
	}
	if dec.More() {
		return invalid("request body: data after the JSON object")
	}
	return nil
}

// migrationError maps the state machine's refusals to API errors; other
// errors pass to toAPIError as they are.
func migrationError(err error) error {
	var me *migration.Error
	if !errors.As(err, &me) {
		return err
	}
	switch me.Kind {
	case migration.Invalid:
		return invalid("%s", me.Msg)
	case migration.NotFound:
		return notFound("%s", me.Msg)
	}
	return conflict("%s", me.Msg)
}
