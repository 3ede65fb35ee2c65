package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/planner"
)

// Provisioner makes a namespace's storage real on its backend (package
// provision). Plan reads the backend and says what Apply would do; a
// *planner.FieldError from Plan refuses the namespace.
type Provisioner interface {
	Plan(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, o planner.DiffOptions) ([]planner.Step, planner.Storage, error)
	Apply(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, apply planner.Storage) error
}

// storagePlan is the storage part of a PUT: the steps, as text for the plan
// and as data for clients (`prism ns diff`), and whether the request only
// asked for the plan (?dry_run=true).
type storagePlan struct {
	dryRun bool
	// plan is prepare's plan of the change, for a dry run.
	plan  string
	text  string
	steps []planner.Step
}

// provisionStorage runs before the store transaction, because it talks to
// backends: it checks the resource against the current state, plans its
// storage against what the backend has and, unless this is a dry run,
// creates it. So a refused namespace provisions nothing, and an accepted
// one has its storage before any extproc hears of it. A change that loses
// a race to another in the transaction has provisioned storage without
// data, which the next apply finds in place (Apply is idempotent).
func (h *Handler) provisionStorage(r *http.Request, m proto.Message, force bool) (storagePlan, error) {
	sp := storagePlan{dryRun: r.URL.Query().Get("dry_run") == "true"}
	_, isNS := m.(*configv1.Namespace)
	if !sp.dryRun && (!isNS || h.opts.Provisioner == nil) {
		return sp, nil
	}
	next := h.ctl.State().Clone()
	m = proto.Clone(m)
	var err error
	if sp.plan, err = prepare(next, m, force); err != nil {
		return sp, err
	}
	if err := next.Put(m); err != nil {
		return sp, invalid("%v", err)
	}
	if err := next.Validate(); err != nil {
		return sp, invalid("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if !isNS || h.opts.Provisioner == nil {
		return sp, nil
	}
	ns := m.(*configv1.Namespace) // backend: auto resolved by prepare
	b := next.Backends[ns.GetBackend()]
	steps, apply, err := h.opts.Provisioner.Plan(r.Context(), ns, b, planner.DiffOptions{Repartition: r.URL.Query().Get("repartition") == "true"})
	var fe *planner.FieldError
	switch {
	case errors.As(err, &fe):
		return sp, invalid("%s", fe.Error())
	case err != nil:
		return sp, &apiError{http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf("backend %s (%s) could not be read to plan namespace %s's storage: %v", b.GetName(), config.DriverName(b), ns.GetNamespace(), err)}
	}
	sp.steps = steps
	var t strings.Builder
	if len(steps) > 0 || len(apply.Notes) > 0 {
		fmt.Fprintf(&t, "  storage on %s (%s):\n", b.GetName(), apply.Driver)
	}
	for _, s := range steps {
		fmt.Fprintf(&t, "    %s\n", s)
	}
	for _, n := range apply.Notes {
		fmt.Fprintf(&t, "    note: %s\n", n)
	}
	sp.text = t.String()
	if sp.dryRun {
		return sp, nil
	}
	if err := h.opts.Provisioner.Apply(r.Context(), ns, b, apply); err != nil {
		return sp, &apiError{http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf("provisioning namespace %s: %v (the namespace was not changed; retry)", ns.GetNamespace(), err)}
	}
	return sp, nil
}

// dryRunResponse answers ?dry_run=true: the plan, nothing changed.
func (h *Handler) dryRunResponse(sp storagePlan) map[string]any {
	return map[string]any{"dry_run": true, "plan": sp.plan + sp.text, "storage": nonNil(sp.steps), "state_version": h.ctl.State().Version}
}
