package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/resource"
)

// check runs the checks of a resource that need no desired state, before
// the store transaction: for a policy, compiling it, running its Rego tests
// and probing it (policies.Check) take tens of milliseconds that must not
// hold the store. It returns extra fields for the PUT response.
func (h *Handler) check(ctx context.Context, m proto.Message) (map[string]any, error) {
	p, ok := m.(*configv1.Policy)
	if !ok {
		return nil, nil
	}
	if errs := config.ValidatePolicy(p); len(errs) > 0 {
		return nil, invalid("%v", strings.ReplaceAll(errors.Join(errs...).Error(), "\n", "; "))
	}
	checked, err := policies.Check(ctx, p.GetModules())
	if err != nil {
		var ce *policies.CheckError
		if !errors.As(err, &ce) {
			return nil, fmt.Errorf("checking policy %s: %w", p.GetName(), err)
		}
		return nil, &detailedError{
			apiError: invalid("policy %s is refused: %s; the policy in force is unchanged", p.GetName(), ce.Reason),
			details:  ce.Details,
		}
	}
	// The version is the content hash: the same modules always have the
	// same version, so re-pushing them changes nothing.
	p.Version = checked.Version
	passed, skipped := 0, 0
	for _, r := range checked.Tests {
		if r.Skip {
			skipped++
		} else {
			passed++
		}
	}
	h.opts.Logger.Info("policy checked", "policy", p.GetName(), "version", p.GetVersion(), "tests_passed", passed, "tests_skipped", skipped)
	return map[string]any{"tests": map[string]int{"passed": passed, "skipped": skipped}}, nil
}

// policyUsers lists, in name order, the namespaces a policy decides: those
// naming it, and for "default" those naming none.
func policyUsers(st *desired.State, policy string) []string {
	var users []string
	for _, name := range st.SortedNames(desired.Namespace) {
		p := st.Namespaces[name].GetPolicy()
		if p == policy || (p == "" && policy == config.DefaultPolicy) {
			users = append(users, "namespace "+name)
		}
	}
	return users
}

// planPolicy describes a policy change.
func planPolicy(st *desired.State, p *configv1.Policy) string {
	var b strings.Builder
	name := p.GetName()
	cur := st.Policies[name]
	if cur == nil {
		fmt.Fprintf(&b, "policy %s: create (version %s)\n", name, p.GetVersion())
	} else {
		fmt.Fprintf(&b, "policy %s: update (version %s → %s)\n", name, cur.GetVersion(), p.GetVersion())
	}
	var added, changed, removed []string
	for _, file := range slices.Sorted(maps.Keys(p.GetModules())) {
		old, ok := cur.GetModules()[file]
		switch {
		case !ok:
			added = append(added, file)
		case old != p.GetModules()[file]:
			changed = append(changed, file)
		}
	}
	for _, file := range slices.Sorted(maps.Keys(cur.GetModules())) {
		if _, ok := p.GetModules()[file]; !ok {
			removed = append(removed, file)
		}
	}
	for _, l := range []struct {
		what  string
		files []string
	}{{"add", added}, {"change", changed}, {"remove", removed}} {
		if len(l.files) > 0 {
			fmt.Fprintf(&b, "  %s modules: %s\n", l.what, strings.Join(l.files, ", "))
		}
	}
	if users := policyUsers(st, name); len(users) > 0 {
		fmt.Fprintf(&b, "  extproc: decides %s\n", strings.Join(users, ", "))
	} else {
		b.WriteString("  extproc: no namespace uses it yet (set a namespace's policy field)\n")
	}
	fmt.Fprintf(&b, "  extproc: %s resource pushed to nodes of cluster %s; each compiles it once and NACKs it if it cannot, keeping the policy in force\n", resource.PolicyType, resource.ClusterExtproc)
	return b.String()
}

// prepareDeletePolicy refuses to delete a policy that decides a namespace:
// the namespace would lose its policy (or, for "default", silently go back
// to the built-in one).
func prepareDeletePolicy(st *desired.State, name string) (string, error) {
	if users := policyUsers(st, name); len(users) > 0 {
		hint := "point them at another policy first"
		if name == config.DefaultPolicy {
			hint = "to go back to the built-in policy, push it: prism policy push - --name default"
		}
		return "", &apiError{http.StatusConflict, CodeFailedPrecondition,
			fmt.Sprintf("policy %s decides %s; %s", name, strings.Join(users, ", "), hint)}
	}
	return fmt.Sprintf("policy %s: delete\n  extproc: nodes drop its compiled version\n", name), nil
}
