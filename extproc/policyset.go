package extproc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// defaultPolicy is the policy of a namespace that names none. Until a policy
// of this name is pushed, it is the built-in one (Options.Policy).
const defaultPolicy = "default"

// compiledPolicy is one version of a pushed policy, compiled and prepared.
type compiledPolicy struct {
	name string
	// version is the content hash of the modules (policies.Version): the
	// control plane stamps the same hash, and a policy from a config file
	// has none, so extproc computes it rather than trusting the field.
	version string
	engine  *policies.Engine
}

// policySet holds the pushed policies of one config by name.
type policySet map[string]*compiledPolicy

// preparePolicies compiles the policies of a config. A policy whose name
// and content are unchanged keeps its engine (and the decisions it
// remembers): Rego is compiled once per policy version, at config time,
// never on the request path. A policy that does not compile, lacks an
// entrypoint, or fails on the generic probe inputs refuses the config, so
// the xDS client NACKs it and the policies in force keep answering.
func (s *Server) preparePolicies(ctx context.Context, pols []*configv1.Policy) (policySet, error) {
	set := make(policySet, len(pols))
	var errs []error
	for _, p := range pols {
		name := p.GetName()
		if err := configv1.ValidateName(name); err != nil {
			errs = append(errs, fmt.Errorf("policy: %w", err))
			continue
		}
		if _, dup := set[name]; dup {
			errs = append(errs, fmt.Errorf("policy %s declared twice", name))
			continue
		}
		version := policies.Version(p.GetModules())
		if cur, ok := s.policies[name]; ok && cur.version == version {
			set[name] = cur
			continue
		}
		start := time.Now()
		eng, err := policies.Compile(ctx, p.GetModules())
		if err == nil {
			err = eng.Probe(ctx, policies.GenericProbes())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("policy %s (version %s): %w", name, version, err))
			continue
		}
		inputs, memoized := eng.Memoized()
		s.log.InfoContext(ctx, "policy compiled", "policy", name, "version", version,
			"pushed_version", p.GetVersion(), "took", time.Since(start), "memoized", memoized, "memo_inputs", inputs)
		set[name] = &compiledPolicy{name: name, version: version, engine: eng}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// namespacePolicy returns the engine that decides a namespace's requests
// and the policy's name@version for messages: the pushed policy the
// namespace names, or for "default" (and no name) the built-in policy while
// none of that name was pushed.
func (s *Server) namespacePolicy(ctx context.Context, n *configv1.Namespace) (*policies.Engine, string, error) {
	name := n.GetPolicy()
	if name == "" {
		name = defaultPolicy
	}
	if p, ok := s.applying[name]; ok {
		return p.engine, name + "@" + p.version, nil
	}
	if name != defaultPolicy {
		return nil, "", fmt.Errorf("policy %q does not exist (pushed policies: %v)", name, s.applying.names())
	}
	eng, err := s.policyEngine(ctx)
	if err != nil {
		return nil, "", err
	}
	return eng, "built-in", nil
}

// names lists the set's policy names, for error messages.
func (ps policySet) names() []string {
	return slices.Sorted(maps.Keys(ps))
}

// operationsOf are the operations a namespace of an abstraction serves: the
// ones its probe inputs need.
func operationsOf(a configv1.Abstraction) []string {
	switch a {
	case configv1.Abstraction_KEYVALUE:
		return []string{policies.OpGet, policies.OpPut, policies.OpDelete, policies.OpScan, policies.OpMultiGet, policies.OpBatch}
	case configv1.Abstraction_TIMESERIES:
		return []string{policies.OpAppend, policies.OpQuery, policies.OpTail}
	case configv1.Abstraction_GRAPH:
		return []string{policies.OpGetNode, policies.OpPutNode, policies.OpDeleteNode, policies.OpPutEdge, policies.OpDeleteEdge, policies.OpGetEdges, policies.OpTraverse}
	}
	return nil
}
