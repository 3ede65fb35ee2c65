package extproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// preparePolicy readies a namespace's policy inputs, PII schema and data key
// at config time, so that requests only evaluate and encrypt. A namespace
// without a PII schema, without access lists and without a named policy is
// left open: no policy evaluation, as before policies existed.
func (s *Server) preparePolicy(ctx context.Context, n *configv1.Namespace, ns *namespace) error {
	name := n.GetNamespace()
	a := n.GetAccess()
	ns.access = policies.Access{Owners: a.GetOwners(), Readers: a.GetReaders(), RequireIdentity: a.GetRequireIdentity()}
	fields := pii.FieldsOf(n.GetSchema())
	hasAccess := len(ns.access.Owners) > 0 || len(ns.access.Readers) > 0 || ns.access.RequireIdentity
	if len(fields) == 0 && !hasAccess && n.GetPolicy() == "" {
		return nil
	}
	switch n.GetAbstraction() {
	case configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES, configv1.Abstraction_GRAPH:
		// Each encrypts its PII (KV values, event data, node props).
	default:
		if len(fields) > 0 {
			// Fail closed: such a path would store PII in plaintext.
			return fmt.Errorf("namespace %s: a PII schema is not supported on %s namespaces", name, n.GetAbstraction())
		}
		return nil
	}
	if len(fields) > 0 {
		if s.keyring == nil {
			return fmt.Errorf("namespace %s: has a PII schema but extproc has no keyring: refusing to store PII in plaintext", name)
		}
		if s.audit == nil {
			return fmt.Errorf("namespace %s: has a PII schema but extproc has no audit log", name)
		}
		sch, err := pii.NewSchema(s.keyring, name, fields)
		if err != nil {
			return fmt.Errorf("namespace %s: schema: %w", name, err)
		}
		if _, err := s.keyring.Current(ctx, name); err != nil {
			return fmt.Errorf("namespace %s: data key: %w", name, err)
		}
		ns.pii = sch
		ns.fields = make([]policies.Field, len(fields))
		for i, f := range fields {
			ns.fields[i] = policies.Field{Path: f.Path, Class: string(f.Class)}
		}
	}
	eng, which, err := s.namespacePolicy(ctx, n)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	// A conflict can depend on the namespace's own inputs, which the
	// control plane's generic probes do not name: try them before the
	// policy answers real requests (unless they already passed with this
	// very engine: an Apply for an unrelated change should not re-evaluate
	// every namespace).
	if cur := s.state.Load().namespaces[name]; cur == nil || cur.policy != eng || !sameProbes(cur, ns) {
		probes := policies.ProbeInputs(name, ns.fields, ns.access, operationsOf(n.GetAbstraction()))
		if err := eng.Probe(ctx, probes); err != nil {
			return fmt.Errorf("namespace %s: policy %s: %w", name, which, err)
		}
	}
	ns.policy = eng
	return nil
}

// sameProbes reports whether two generations of a namespace have the same
// probe inputs.
func sameProbes(a, b *namespace) bool {
	return a.cfg.GetAbstraction() == b.cfg.GetAbstraction() &&
		slices.Equal(a.fields, b.fields) &&
		slices.Equal(a.access.Owners, b.access.Owners) &&
		slices.Equal(a.access.Readers, b.access.Readers) &&
		a.access.RequireIdentity == b.access.RequireIdentity
}

// policyEngine compiles the policy the first time a namespace needs it.
// Apply holds applyMu; requests reach the engine only through a namespace.
func (s *Server) policyEngine(ctx context.Context) (*policies.Engine, error) {
	if s.engine != nil {
		return s.engine, nil
	}
	eng, err := policies.Compile(ctx, s.policyModules)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	s.engine = eng
	return eng, nil
}

// access is the outcome of the policy for one request.
type access struct {
	d  policies.Decision
	in policies.Input
}

// authorize decides a request on a namespace with a policy. A nil *access
// with a nil error means the namespace has no policy: go ahead unchanged.
func (s *Server) authorize(ctx context.Context, c *call, op, key string) (*access, error) {
	ns := c.ns
	if ns.policy == nil {
		return nil, nil
	}
	if ns.access.RequireIdentity && c.req.subject == "" {
		return nil, &apiError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "namespace requires a client identity"}
	}
	a := &access{in: policies.Input{
		Subject:   c.req.subject,
		Namespace: ns.cfg.GetNamespace(),
		Operation: op,
		Key:       key,
		Fields:    ns.fields,
		Purpose:   c.req.purpose,
		RequestID: c.req.requestID,
		Access:    ns.access,
	}}
	if a.in.Fields == nil {
		a.in.Fields = []policies.Field{}
	}
	d, err := s.decide(ctx, ns.policy, a.in)
	if err != nil {
		s.log.WarnContext(ctx, "policy evaluation failed; denying", "request_id", c.req.requestID, "namespace", a.in.Namespace, "err", err)
		d = policies.Decision{Reason: "denied by policy", Audit: len(ns.fields) > 0}
	}
	a.d = d
	if !d.Allow {
		if d.Audit {
			if err := s.record(ctx, c, a, nil, "deny"); err != nil {
				return nil, err
			}
		}
		reason := d.Reason
		if reason == "" || reason == "allowed" {
			reason = "denied by policy"
		}
		return nil, &apiError{Status: http.StatusForbidden, Code: CodePermissionDenied, Message: reason}
	}
	return a, nil
}

// audit writes the access's audit record when the policy asks for one. It
// must succeed before the access is performed or answered.
func (s *Server) auditAccess(ctx context.Context, c *call, a *access, touched []string) error {
	if a == nil || !a.d.Audit {
		return nil
	}
	return s.record(ctx, c, a, touched, decisionString(a.d.Fields))
}

func (s *Server) record(ctx context.Context, c *call, a *access, touched []string, decision string) error {
	if s.audit == nil {
		s.log.ErrorContext(ctx, "policy asks for an audit record but there is no audit log", "request_id", c.req.requestID, "namespace", a.in.Namespace)
		return errAuditUnavailable
	}
	if touched == nil {
		touched = []string{}
	}
	err := s.appendAudit(ctx, audit.Record{
		Subject:   a.in.Subject,
		Namespace: a.in.Namespace,
		Key:       a.in.Key,
		Operation: a.in.Operation,
		Fields:    touched,
		Decision:  decision,
		RequestID: a.in.RequestID,
	})
	if err != nil {
		s.log.ErrorContext(ctx, "audit append failed; refusing the access", "request_id", c.req.requestID, "namespace", a.in.Namespace, "err", err)
		return errAuditUnavailable
	}
	return nil
}

var errAuditUnavailable = errors.New("extproc: audit log unavailable")

// decisionString renders field actions for the audit record, e.g.
// "email=mask,name=plain" (sorted by path).
func decisionString(fields map[string]policies.Action) string {
	if len(fields) == 0 {
		return "allow"
	}
	parts := make([]string, 0, len(fields))
	for p, act := range fields {
		parts = append(parts, p+"="+string(act))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// piiActions converts the decision's field actions for pii.Schema.Apply.
func (a *access) piiActions() map[string]pii.Action {
	out := make(map[string]pii.Action, len(a.d.Fields))
	for p, act := range a.d.Fields {
		out[p] = pii.Action(act)
	}
	return out
}

// mergeTouched adds paths to a set kept in order of first appearance.
func mergeTouched(dst []string, seen map[string]bool, paths []string) []string {
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			dst = append(dst, p)
		}
	}
	return dst
}

// sealDoc encrypts the PII fields of one JSON document (a TimeSeries event's
// data, a node's props) bound to its record key (series, node id). Empty
// documents stay empty.
func (c *call) sealDoc(ctx context.Context, key string, doc []byte, touched []string, seen map[string]bool) ([]byte, []string, error) {
	if c.ns.pii == nil || len(doc) == 0 {
		return doc, touched, nil
	}
	enc, t, err := c.ns.pii.Encrypt(ctx, key, doc)
	if err != nil {
		return nil, nil, err
	}
	return enc, mergeTouched(touched, seen, t), nil
}

// openDoc carries out the policy's field actions on one stored JSON document
// of a namespace with a PII schema, bound to its record key.
func (c *call) openDoc(ctx context.Context, a *access, key string, doc []byte, touched []string, seen map[string]bool) ([]byte, []string, error) {
	if c.ns.pii == nil || len(doc) == 0 {
		return doc, touched, nil
	}
	if a == nil {
		// A PII schema always comes with a policy; never return ciphertext
		// or plaintext undecided.
		return nil, nil, errors.New("extproc: PII namespace without a policy decision")
	}
	out, t, err := c.ns.pii.Apply(ctx, key, doc, a.piiActions())
	if errors.Is(err, pii.ErrNotJSON) || errors.Is(err, pii.ErrTooDeep) {
		// Writes refuse such values; one in the store predates the schema.
		return nil, nil, fmt.Errorf("stored document of %q: %v", key, err) // 500, not the caller's fault
	}
	if err != nil {
		return nil, nil, err
	}
	return out, mergeTouched(touched, seen, t), nil
}
