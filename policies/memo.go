package policies

import (
	"maps"
	"sort"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A compiled policy is a pure function of the input parts it reads, unless it
// calls a non-deterministic builtin. Evaluating the default policy costs tens
// of microseconds, looking a decision up well under one; so an Engine
// remembers decisions keyed by exactly the input parts the policy reads,
// found by walking the compiled modules. A policy that reads the request id
// (unique per request), reads input as a whole, or calls a non-deterministic
// builtin is evaluated every time.

// memoEntries bounds the memo; when it is full it starts over, so a caller
// varying a header (purpose) cannot grow it without bound.
const memoEntries = 8192

// Input parts a memo key can depend on, as bits.
const (
	partSubject = 1 << iota
	partNamespace
	partOperation
	partKey
	partFields
	partPurpose
	partAccess
)

// partNames maps input keys to their bits; request_id is missing on purpose.
var partNames = map[string]int{
	"subject":   partSubject,
	"namespace": partNamespace,
	"operation": partOperation,
	"key":       partKey,
	"fields":    partFields,
	"purpose":   partPurpose,
	"access":    partAccess,
}

// timeDependent lists deterministic-looking builtins whose answer depends on
// the evaluation time.
var timeDependent = map[string]bool{
	"io.jwt.decode_verify": true,
}

// memo remembers decisions of one Engine. It is safe for concurrent use.
type memo struct {
	parts int // input parts the key holds
	max   int // entries before the memo starts over

	mu sync.RWMutex
	m  map[string]Decision
}

// newMemo returns the memo for a compiled policy, or nil when its decisions
// cannot be remembered.
func newMemo(c *ast.Compiler) *memo {
	if c.Required != nil {
		for _, b := range c.Required.Builtins {
			if def, ok := ast.BuiltinMap[b.Name]; (ok && def.Nondeterministic) || timeDependent[b.Name] {
				return nil
			}
		}
	}
	parts, ok := inputParts(c)
	if !ok {
		return nil
	}
	return &memo{parts: parts, max: memoEntries, m: make(map[string]Decision)}
}

// inputParts returns the bits of the input parts the modules read, and false
// when they read a part that defeats memoization.
func inputParts(c *ast.Compiler) (int, bool) {
	parts, ok := 0, true
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		if !ok {
			return true
		}
		t, isTerm := x.(*ast.Term)
		if !isTerm {
			return false
		}
		switch v := t.Value.(type) {
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) {
				ok = false // input as a whole
			}
		case ast.Ref:
			if !v.HasPrefix(ast.InputRootRef) {
				return false
			}
			if len(v) < 2 {
				ok = false
				return true
			}
			name, isString := v[1].Value.(ast.String)
			if !isString {
				ok = false // input[x]
				return true
			}
			if name == "request_id" {
				ok = false // unique per request
				return true
			}
			parts |= partNames[string(name)] // an unknown key is always undefined: no bit
			for _, sub := range v[2:] {
				vis.Walk(sub)
			}
			return true
		}
		return false
	})
	for _, m := range c.Modules {
		vis.Walk(m)
	}
	return parts, ok
}

// inputs names the input parts in the key, sorted.
func (m *memo) inputs() []string {
	var names []string
	for name, bit := range partNames {
		if m.parts&bit != 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// key appends the memo key of in to b: the parts the policy reads, each
// length-prefixed so that no two inputs share a key.
func (m *memo) key(b []byte, in *Input) []byte {
	str := func(s string) {
		b = appendLen(b, len(s))
		b = append(b, s...)
	}
	list := func(ss []string) {
		b = appendLen(b, len(ss))
		for _, s := range ss {
			str(s)
		}
	}
	if m.parts&partSubject != 0 {
		str(in.Subject)
	}
	if m.parts&partNamespace != 0 {
		str(in.Namespace)
	}
	if m.parts&partOperation != 0 {
		str(in.Operation)
	}
	if m.parts&partKey != 0 {
		str(in.Key)
	}
	if m.parts&partPurpose != 0 {
		str(in.Purpose)
	}
	if m.parts&partFields != 0 {
		b = appendLen(b, len(in.Fields))
		for _, f := range in.Fields {
			str(f.Path)
			str(f.Class)
		}
	}
	if m.parts&partAccess != 0 {
		list(in.Access.Owners)
		list(in.Access.Readers)
		if in.Access.RequireIdentity {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// appendLen appends n as a uvarint.
func appendLen(b []byte, n int) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// get returns a copy of the decision remembered under key.
func (m *memo) get(key []byte) (Decision, bool) {
	m.mu.RLock()
	d, ok := m.m[string(key)]
	m.mu.RUnlock()
	if ok {
		d.Fields = maps.Clone(d.Fields) // callers own what Decide returns
	}
	return d, ok
}

// put remembers a copy of d under key.
func (m *memo) put(key []byte, d Decision) {
	d.Fields = maps.Clone(d.Fields)
	m.mu.Lock()
	if len(m.m) >= m.max {
		clear(m.m)
	}
	m.m[string(key)] = d
	m.mu.Unlock()
}
