package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A policy is distributed by the control plane and applied by every extproc
// node. A policy that cannot work must be refused before it replaces the one
// in force, at both ends: the control plane runs Check before it accepts a
// policy (syntax, compilation, entrypoints, the policy's own Rego tests, and
// probe evaluations that find runtime conflicts), and extproc probes each
// namespace's policy with that namespace's real inputs before it swaps its
// config in (a conflict may depend on a namespace the control plane's
// generic probes do not name).

// CheckError is a policy refused by Check: what failed, and one line per
// compiler message, failing test or probe error, for the operator.
type CheckError struct {
	// Reason says which check failed, e.g. "2 of 12 Rego tests failed".
	Reason string
	// Details are the compiler messages (file:line: message), failing
	// tests as `opa test` prints them, or probe errors.
	Details []string
}

// Error implements error.
func (e *CheckError) Error() string {
	if len(e.Details) == 0 {
		return "policies: " + e.Reason
	}
	return "policies: " + e.Reason + ": " + strings.Join(e.Details, "; ")
}

// Checked is a policy that passed Check.
type Checked struct {
	// Engine is the compiled policy, ready to Decide.
	Engine *Engine
	// Version is the content hash of the modules (see Version).
	Version string
	// Tests are the results of the policy's Rego tests, all passed or
	// skipped.
	Tests []TestResult
}

// Check does everything the control plane requires of a policy before it
// accepts it: every module (tests included) parses, the policy compiles and
// defines both decisions, every Rego test passes, and the probe inputs (see
// GenericProbes) evaluate without error. A refused policy gets a
// *CheckError.
func Check(ctx context.Context, modules map[string]string) (*Checked, error) {
	if _, err := parse(modules, true); err != nil {
		return nil, refusal("the policy does not parse", err)
	}
	eng, err := Compile(ctx, modules)
	if err != nil {
		return nil, refusal("the policy does not compile", err)
	}
	results, err := RunTests(ctx, modules)
	if err != nil {
		return nil, refusal("the policy's tests do not compile", err)
	}
	var failed []string
	for _, r := range results {
		if r.Failed() {
			failed = append(failed, r.String())
		}
	}
	if len(failed) > 0 {
		return nil, &CheckError{Reason: fmt.Sprintf("%d of %d Rego tests failed", len(failed), len(results)), Details: failed}
	}
	if err := eng.Probe(ctx, GenericProbes()); err != nil {
		return nil, err
	}
	return &Checked{Engine: eng, Version: Version(modules), Tests: results}, nil
}

// refusal turns a parse or compile error into a CheckError with one detail
// per compiler message.
func refusal(reason string, err error) *CheckError {
	var astErrs ast.Errors
	if errors.As(err, &astErrs) {
		details := make([]string, len(astErrs))
		for i, e := range astErrs {
			details[i] = e.Error()
		}
		return &CheckError{Reason: reason, Details: details}
	}
	return &CheckError{Reason: reason, Details: []string{strings.TrimPrefix(err.Error(), "policies: ")}}
}

// Version is the content hash of a module set: the same modules always get
// the same version, any edit a new one. The control plane stamps it on every
// accepted policy; extproc keys its compiled policies by it.
func Version(modules map[string]string) string {
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		// Length-prefixed, so that moving text between files changes the hash.
		fmt.Fprintf(h, "%d:%s%d:", len(name), name, len(modules[name]))
		h.Write([]byte(modules[name]))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Probe subjects that no real namespace lists.
const (
	probeOwner    = "spiffe://prism.invalid/probe-owner"
	probeReader   = "spiffe://prism.invalid/probe-reader"
	probeStranger = "spiffe://prism.invalid/probe-stranger"
)

// ProbeInputs are the inputs a namespace's requests can take, one per
// subject role (an owner, a reader, a stranger, no identity) and operation,
// with the namespace's real fields and access lists. Key, purpose and request
// id are fixed placeholders.
func ProbeInputs(namespace string, fields []Field, access Access, ops []string) []Input {
	if fields == nil {
		fields = []Field{}
	}
	subjects := []string{probeStranger, ""}
	if len(access.Owners) > 0 {
		subjects = append(subjects, access.Owners[0])
	}
	if len(access.Readers) > 0 {
		subjects = append(subjects, access.Readers[0])
	}
	inputs := make([]Input, 0, len(subjects)*len(ops))
	for _, sub := range subjects {
		for _, op := range ops {
			inputs = append(inputs, Input{
				Subject: sub, Namespace: namespace, Operation: op, Key: "probe-key",
				Fields: fields, RequestID: "probe", Access: access,
			})
		}
	}
	return inputs
}

// piiClasses are the PII classes of the config schema, as the policy sees
// them.
var piiClasses = []string{"email", "name", "phone", "ssn", "address", "ip_address", "credit_card"}

// GenericProbes are the probe inputs of the control plane's Check: every
// operation by every role, on a namespace with access lists and a field of
// every PII class, and on an open namespace without PII.
func GenericProbes() []Input {
	fields := make([]Field, len(piiClasses))
	for i, c := range piiClasses {
		fields[i] = Field{Path: "probe_" + c, Class: c}
	}
	listed := Access{Owners: []string{probeOwner}, Readers: []string{probeReader}, RequireIdentity: true}
	return append(ProbeInputs("probe", fields, listed, Operations), ProbeInputs("probe-open", nil, Access{}, Operations)...)
}

// Probe evaluates the policy for each input, bypassing the memo, and returns
// a *CheckError listing the distinct evaluation errors — a runtime conflict
// (a complete rule with two values), a builtin error, a malformed decision.
// An undefined decision is no error: Prism denies it, as the policy may
// intend.
func (e *Engine) Probe(ctx context.Context, inputs []Input) error {
	var details []string
	seen := map[string]bool{}
	for i := range inputs {
		in := &inputs[i]
		if _, err := e.eval(ctx, in); err != nil && !errors.Is(err, ErrUndefined) {
			if ctx.Err() != nil {
				return fmt.Errorf("policies: probe: %w", ctx.Err())
			}
			msg := strings.TrimPrefix(err.Error(), "policies: ")
			if seen[msg] {
				continue
			}
			seen[msg] = true
			details = append(details, fmt.Sprintf("subject %q, operation %s on namespace %s: %s", in.Subject, in.Operation, in.Namespace, msg))
		}
	}
	if len(details) > 0 {
		return &CheckError{Reason: "the policy fails at runtime on probe inputs", Details: details}
	}
	return nil
}
