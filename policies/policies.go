// Package policies compiles Prism's Rego policies once and evaluates them per
// request: prism.authz decides whether a subject may perform an operation on a
// namespace, prism.pii what happens to each PII field and whether the access
// is audited. Input and output are documented in README.md next to the
// default policies, which are embedded (see Default).
package policies

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Operation names of the data API, as the policy sees them in input.operation.
const (
	OpGet        = "get"         // KeyValue: read one key
	OpPut        = "put"         // KeyValue: write one key
	OpDelete     = "delete"      // KeyValue: delete one key
	OpScan       = "scan"        // KeyValue: read a key range
	OpMultiGet   = "mget"        // KeyValue: read many keys
	OpBatch      = "batch"       // KeyValue: write and delete many keys
	OpAppend     = "append"      // TimeSeries: append events
	OpQuery      = "query"       // TimeSeries: read events by time
	OpTail       = "tail"        // TimeSeries: long-poll new events
	OpGetNode    = "get_node"    // Graph: read one node
	OpPutNode    = "put_node"    // Graph: write one node
	OpDeleteNode = "delete_node" // Graph: delete a node and its edges
	OpPutEdge    = "put_edge"    // Graph: write an edge
	OpDeleteEdge = "delete_edge" // Graph: delete an edge
	OpGetEdges   = "get_edges"   // Graph: read a node's edges
	OpTraverse   = "traverse"    // Graph: breadth-first traversal
)

// Operations lists every operation name above, for tests that check a policy
// classifies each of them.
var Operations = []string{
	OpGet, OpPut, OpDelete, OpScan, OpMultiGet, OpBatch,
	OpAppend, OpQuery, OpTail,
	OpGetNode, OpPutNode, OpDeleteNode, OpPutEdge, OpDeleteEdge, OpGetEdges, OpTraverse,
}

// Action is what happens to one PII field.
type Action string

// The actions a policy may return for a field.
const (
	// Plain returns the decrypted value (on a write: the field is accepted
	// and stored encrypted).
	Plain Action = "plain"
	// Mask returns a class-aware masked value, e.g. j***@example.com.
	Mask Action = "mask"
	// Redact removes the field from the returned value.
	Redact Action = "redact"
	// Deny refuses the whole request (403).
	Deny Action = "deny"
)

// valid reports whether a is one of the four actions.
func (a Action) valid() bool {
	switch a {
	case Plain, Mask, Redact, Deny:
		return true
	}
	return false
}

// Input is the policy input: input.* in Rego. See README.md.
type Input struct {
	// Subject is the client identity (SPIFFE URI SAN); empty when the
	// caller presented none.
	Subject string `json:"subject"`
	// Namespace is the namespace the request addresses.
	Namespace string `json:"namespace"`
	// Operation is one of the Op* names.
	Operation string `json:"operation"`
	// Key is the key, series or node id the request addresses, when it
	// has exactly one; empty for scans and queries.
	Key string `json:"key,omitempty"`
	// Fields are the PII fields of the namespace schema the operation
	// touches. Paths must be unique.
	Fields []Field `json:"fields"`
	// Purpose is the caller's x-prism-purpose header, empty when absent.
	Purpose string `json:"purpose"`
	// RequestID is the request's x-request-id.
	RequestID string `json:"request_id"`
	// Access is the namespace's access block.
	Access Access `json:"access"`
}

// Field is one PII field of a namespace schema.
type Field struct {
	// Path is the dot-separated JSON path, e.g. "address.street".
	Path string `json:"path"`
	// Class is the PII class in lower case: email, name, phone, ssn,
	// address, ip_address, credit_card.
	Class string `json:"class"`
}

// Access is a namespace's access lists.
type Access struct {
	// Owners may do every operation and read plaintext (default policy).
	Owners []string `json:"owners"`
	// Readers may read and get masked PII (default policy).
	Readers []string `json:"readers"`
	// RequireIdentity rejects callers without an identity.
	RequireIdentity bool `json:"require_identity"`
}

// Decision is the combined answer of prism.authz and prism.pii.
type Decision struct {
	// Allow is true when authz allows the operation and no field is Deny.
	Allow bool
	// Role is the subject's role from authz (owner, reader, open, none).
	Role string
	// Reason explains the authz answer; it is safe to return to clients.
	Reason string
	// Fields maps every input field path to its action. A path the policy
	// left out is Deny.
	Fields map[string]Action
	// Audit is true when the access must be written to the audit log
	// before any data is returned.
	Audit bool
}

// The queries prepared once per Engine; Decide reads their two bindings.
const (
	authzRef = "data.prism.authz.decision"
	piiRef   = "data.prism.pii.decision"
	query    = "authz = " + authzRef + "; pii = " + piiRef
)

// ErrUndefined is returned by Decide when a policy leaves its decision
// undefined for an input; Prism treats it as a denial.
var ErrUndefined = errors.New("policies: the decision is undefined for this input")

// Engine evaluates a compiled policy. It is safe for concurrent use; build
// one per policy version with Compile and share it.
type Engine struct {
	pq   rego.PreparedEvalQuery
	memo *memo // nil when decisions cannot be remembered
}

// Compile parses, compiles and prepares the modules (file name → Rego
// source, rego.v1 syntax) once. Files named *_test.rego are left out; run them
// with RunTests. The error of a policy that does not compile lists every
// compiler error with its file and line.
func Compile(ctx context.Context, modules map[string]string) (*Engine, error) {
	parsed, err := parse(modules, false)
	if err != nil {
		return nil, err
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(parsed); c.Failed() {
		return nil, fmt.Errorf("policies: compile: %w", c.Errors)
	}
	for _, ref := range []string{authzRef, piiRef} {
		if len(c.GetRulesExact(ast.MustParseRef(ref))) == 0 {
			return nil, fmt.Errorf("policies: the modules define no rule %s", strings.TrimPrefix(ref, "data."))
		}
	}
	pq, err := rego.New(rego.Compiler(c), rego.Query(query)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policies: prepare: %w", err)
	}
	return &Engine{pq: pq, memo: newMemo(c)}, nil
}

// Decide evaluates the policy for one request. It never compiles, and
// evaluates only the first time it sees the input parts the policy reads (see
// Memoized). An error (evaluation error, undefined decision, malformed
// output) means deny. The caller owns the returned Decision.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	if e.memo == nil {
		return e.eval(ctx, &in)
	}
	var buf [256]byte
	key := e.memo.key(buf[:0], &in)
	if d, ok := e.memo.get(key); ok {
		return d, nil
	}
	d, err := e.eval(ctx, &in)
	if err == nil {
		e.memo.put(key, d)
	}
	return d, err
}

// Memoized reports whether Decide remembers decisions, and the input parts
// (input keys) they are remembered by. It does not when the policy reads
// input.request_id or input as a whole, or calls a non-deterministic builtin
// such as time.now_ns or http.send.
func (e *Engine) Memoized() (inputs []string, ok bool) {
	if e.memo == nil {
		return nil, false
	}
	return e.memo.inputs(), true
}

// eval evaluates the prepared query for in.
func (e *Engine) eval(ctx context.Context, in *Input) (Decision, error) {
	rs, err := e.pq.Eval(ctx, rego.EvalParsedInput(in.value()))
	if err != nil {
		return Decision{}, fmt.Errorf("policies: evaluate: %w", err)
	}
	if len(rs) == 0 {
		return Decision{}, ErrUndefined
	}
	return decode(rs[0].Bindings, in.Fields)
}

// decode turns the two decision documents into a Decision, checking their
// shape: a policy that answers nonsense denies.
func decode(b rego.Vars, fields []Field) (Decision, error) {
	authz, ok := b["authz"].(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("policies: %s is %T, want an object", authzRef, b["authz"])
	}
	pii, ok := b["pii"].(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("policies: %s is %T, want an object", piiRef, b["pii"])
	}
	var d Decision
	if d.Allow, ok = authz["allow"].(bool); !ok {
		return Decision{}, fmt.Errorf("policies: %s.allow is %T, want a boolean", authzRef, authz["allow"])
	}
	d.Role, _ = authz["role"].(string)
	d.Reason, _ = authz["reason"].(string)
	if a, present := pii["audit"]; present {
		if d.Audit, ok = a.(bool); !ok {
			return Decision{}, fmt.Errorf("policies: %s.audit is %T, want a boolean", piiRef, a)
		}
	}
	actions, _ := pii["fields"].(map[string]any)
	d.Fields = make(map[string]Action, len(fields))
	for _, f := range fields {
		a := Deny
		if v, present := actions[f.Path]; present {
			s, _ := v.(string)
			a = Action(s)
			if !a.valid() {
				return Decision{}, fmt.Errorf("policies: %s.fields[%q] is %v, want plain, mask, redact or deny", piiRef, f.Path, v)
			}
		}
		if a == Deny && d.Allow {
			d.Allow = false
			d.Reason = fmt.Sprintf("policy denies field %s", f.Path)
		}
		d.Fields[f.Path] = a
	}
	return d, nil
}

// Object keys of the input, built once: terms are immutable during
// evaluation, so every request can share them.
var (
	keySubject         = ast.StringTerm("subject")
	keyNamespace       = ast.StringTerm("namespace")
	keyOperation       = ast.StringTerm("operation")
	keyKey             = ast.StringTerm("key")
	keyFields          = ast.StringTerm("fields")
	keyPurpose         = ast.StringTerm("purpose")
	keyRequestID       = ast.StringTerm("request_id")
	keyAccess          = ast.StringTerm("access")
	keyOwners          = ast.StringTerm("owners")
	keyReaders         = ast.StringTerm("readers")
	keyRequireIdentity = ast.StringTerm("require_identity")
	keyPath            = ast.StringTerm("path")
	keyClass           = ast.StringTerm("class")
)

// value builds the input as an AST value directly: handing OPA the struct
// would make it round-trip through encoding/json on every request.
func (in *Input) value() ast.Value {
	fields := make([]*ast.Term, len(in.Fields))
	for i, f := range in.Fields {
		fields[i] = ast.ObjectTerm(
			ast.Item(keyPath, ast.StringTerm(f.Path)),
			ast.Item(keyClass, ast.StringTerm(f.Class)),
		)
	}
	access := ast.ObjectTerm(
		ast.Item(keyOwners, strings2array(in.Access.Owners)),
		ast.Item(keyReaders, strings2array(in.Access.Readers)),
		ast.Item(keyRequireIdentity, ast.InternedTerm(in.Access.RequireIdentity)),
	)
	return ast.NewObject(
		ast.Item(keySubject, ast.StringTerm(in.Subject)),
		ast.Item(keyNamespace, ast.StringTerm(in.Namespace)),
		ast.Item(keyOperation, ast.StringTerm(in.Operation)),
		ast.Item(keyKey, ast.StringTerm(in.Key)),
		ast.Item(keyPurpose, ast.StringTerm(in.Purpose)),
		ast.Item(keyRequestID, ast.StringTerm(in.RequestID)),
		ast.Item(keyAccess, access),
		ast.Item(keyFields, ast.ArrayTerm(fields...)),
	)
}

// strings2array converts a string slice to a Rego array term.
func strings2array(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

// parse parses the modules in file name order, with or without tests.
func parse(modules map[string]string, withTests bool) (map[string]*ast.Module, error) {
	if len(modules) == 0 {
		return nil, errors.New("policies: no Rego modules")
	}
	names := make([]string, 0, len(modules))
	for name := range modules {
		if withTests || !isTest(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	parsed := make(map[string]*ast.Module, len(names))
	var errs ast.Errors
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			var astErrs ast.Errors
			if errors.As(err, &astErrs) {
				errs = append(errs, astErrs...)
				continue
			}
			return nil, fmt.Errorf("policies: parse %s: %w", name, err)
		}
		parsed[name] = m
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("policies: parse: %w", errs)
	}
	return parsed, nil
}

// isTest reports whether a module file holds Rego unit tests.
func isTest(name string) bool {
	return strings.HasSuffix(name, "_test.rego")
}

//go:embed *.rego
var defaults embed.FS

// Default returns the default policy shipped with Prism, tests included
// (file name → Rego source). Compile leaves the tests out.
func Default() map[string]string {
	modules, err := readFS(defaults, ".")
	if err != nil {
		panic("policies: embedded defaults: " + err.Error()) // the embed pattern guarantees the files
	}
	return modules
}

// LoadDir reads every .rego file under dir (file name relative to dir →
// source), for `prism policy test DIR` and operators' policy directories.
func LoadDir(dir string) (map[string]string, error) {
	return readFS(os.DirFS(dir), ".")
}

// readFS reads the .rego files of fsys under root.
func readFS(fsys fs.FS, root string) (map[string]string, error) {
	modules := map[string]string{}
	err := fs.WalkDir(fsys, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".rego" {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		modules[path] = string(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policies: read modules: %w", err)
	}
	return modules, nil
}
