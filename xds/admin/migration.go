package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

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
	st, _, err := h.ctl.Update(ctx, func(next *desired.State) error {
		var err error
		m, err = step(next)
		return err
	})
	if err != nil {
		return migrationError(err)
	}
	if err := h.opts.Migrations.RecordStep(ctx, m, req.Action); err != nil {
		// The step is in force; only its history entry is missing.
		h.opts.Logger.Warn("migration step not recorded in its history", "namespace", ns, "err", err)
	}
	h.opts.Logger.Info("migration step", "namespace", ns, "action", req.Action, "force", req.Force, "migration_id", m.GetId(),
		"phase", m.GetPhase().String(), "compare_epoch", m.GetCompareEpoch(), "state_version", st.Version)
	s, err := h.opts.Migrations.Status(ctx, st, ns)
	if err != nil {
		return migrationError(err)
	}
	writeJSON(w, http.StatusOK, s)
	return nil
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
