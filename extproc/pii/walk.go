package pii

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// maxArrayDepth bounds how deeply arrays may nest on the way to a PII field:
// every level is a recursion, and a value too deep to walk must be refused
// rather than stored with its PII in plaintext.
const maxArrayDepth = 32

// node is one level of the schema's paths split at dots. A node is either a
// field (a leaf) or has children; NewSchema refuses paths that are prefixes
// of one another.
type node struct {
	children map[string]*node
	field    int // index into Schema.fields; -1 for inner nodes
}

// visitFunc is called with the raw JSON of every value found at a field's
// path. It returns the raw JSON to put in its place, or remove to drop the
// member from its object.
type visitFunc func(field int, raw []byte) (repl []byte, remove bool, err error)

// rewrite returns doc with visit applied to every value at a schema path.
// Paths descend through objects by key and through arrays into every
// element. Members and values off the paths are copied byte for byte; the
// objects and arrays on a path are written without insignificant
// whitespace. When visit changes nothing, doc itself is returned. doc must
// be valid JSON (json.Valid).
func rewrite(doc []byte, root *node, visit visitFunc) ([]byte, error) {
	w := walker{src: doc, visit: visit}
	w.out = make([]byte, 0, len(doc)+len(doc)/2+64)
	i := w.ws(0)
	end, err := w.value(i, root, 0)
	if err != nil {
		return nil, err
	}
	if w.ws(end) != len(doc) {
		return nil, fmt.Errorf("%w: trailing data after the value", ErrNotJSON)
	}
	if !w.changed {
		return doc, nil
	}
	return w.out, nil
}

// walker holds the state of one rewrite.
type walker struct {
	src     []byte
	out     []byte
	visit   visitFunc
	changed bool
}

// value copies or rewrites the value at src[i:] for schema node n and returns
// the index after it.
func (w *walker) value(i int, n *node, arrays int) (int, error) {
	if i >= len(w.src) {
		return i, fmt.Errorf("%w: unexpected end", ErrNotJSON)
	}
	switch w.src[i] {
	case '{':
		return w.object(i, n, arrays)
	case '[':
		if arrays >= maxArrayDepth {
			return i, fmt.Errorf("%w: arrays nest more than %d deep on the way to a PII field", ErrTooDeep, maxArrayDepth)
		}
		return w.array(i, n, arrays+1)
	}
	end, err := skip(w.src, i)
	if err != nil {
		return i, err
	}
	w.out = append(w.out, w.src[i:end]...)
	return end, nil
}

// object walks the object at src[i:] whose members may lead to fields.
func (w *walker) object(i int, n *node, arrays int) (int, error) {
	w.out = append(w.out, '{')
	i = w.ws(i + 1)
	first := true
	if i < len(w.src) && w.src[i] == '}' {
		w.out = append(w.out, '}')
		return i + 1, nil
	}
	for {
		if i >= len(w.src) || w.src[i] != '"' {
			return i, fmt.Errorf("%w: want a member name at offset %d", ErrNotJSON, i)
		}
		keyEnd, err := skipString(w.src, i)
		if err != nil {
			return i, err
		}
		rawKey := w.src[i:keyEnd]
		i = w.ws(keyEnd)
		if i >= len(w.src) || w.src[i] != ':' {
			return i, fmt.Errorf("%w: want ':' at offset %d", ErrNotJSON, i)
		}
		i = w.ws(i + 1)
		child := n.child(rawKey)
		switch {
		case child == nil:
			end, err := skip(w.src, i)
			if err != nil {
				return i, err
			}
			w.member(&first, rawKey, w.src[i:end])
			i = end
		case child.field >= 0:
			end, err := skip(w.src, i)
			if err != nil {
				return i, err
			}
			repl, remove, err := w.visit(child.field, w.src[i:end])
			if err != nil {
				return i, err
			}
			if remove {
				w.changed = true
			} else {
				if string(repl) != string(w.src[i:end]) {
					w.changed = true
				}
				w.member(&first, rawKey, repl)
			}
			i = end
		default:
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			w.out = append(w.out, rawKey...)
			w.out = append(w.out, ':')
			end, err := w.value(i, child, arrays)
			if err != nil {
				return i, err
			}
			i = end
		}
		i = w.ws(i)
		if i >= len(w.src) {
			return i, fmt.Errorf("%w: unterminated object", ErrNotJSON)
		}
		switch w.src[i] {
		case ',':
			i = w.ws(i + 1)
		case '}':
			w.out = append(w.out, '}')
			return i + 1, nil
		default:
			return i, fmt.Errorf("%w: want ',' or '}' at offset %d", ErrNotJSON, i)
		}
	}
}

// member appends "key":value with a separating comma when needed.
func (w *walker) member(first *bool, rawKey, value []byte) {
	if !*first {
		w.out = append(w.out, ',')
	}
	*first = false
	w.out = append(w.out, rawKey...)
	w.out = append(w.out, ':')
	w.out = append(w.out, value...)
}

// array walks every element of the array at src[i:] with the same node.
func (w *walker) array(i int, n *node, arrays int) (int, error) {
	w.out = append(w.out, '[')
	i = w.ws(i + 1)
	if i < len(w.src) && w.src[i] == ']' {
		w.out = append(w.out, ']')
		return i + 1, nil
	}
	for {
		end, err := w.value(i, n, arrays)
		if err != nil {
			return i, err
		}
		i = w.ws(end)
		if i >= len(w.src) {
			return i, fmt.Errorf("%w: unterminated array", ErrNotJSON)
		}
		switch w.src[i] {
		case ',':
			w.out = append(w.out, ',')
			i = w.ws(i + 1)
		case ']':
			w.out = append(w.out, ']')
			return i + 1, nil
		default:
			return i, fmt.Errorf("%w: want ',' or ']' at offset %d", ErrNotJSON, i)
		}
	}
}

// ws returns the index of the first non-whitespace byte at or after i.
func (w *walker) ws(i int) int {
	for i < len(w.src) {
		switch w.src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// child returns the node of the member named by the quoted rawKey, nil when
// the member is off every path. Escapes are decoded, so that "em\u0061il"
// cannot smuggle an email past the schema.
func (n *node) child(rawKey []byte) *node {
	inner := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return n.children[string(inner)] // no allocation
	}
	var name string
	if err := json.Unmarshal(rawKey, &name); err != nil {
		return nil // cannot happen after json.Valid
	}
	return n.children[name]
}

// skip returns the index just after the JSON value starting at src[i].
// Containers are skipped without recursion, so nesting depth costs nothing.
func skip(src []byte, i int) (int, error) {
	if i >= len(src) {
		return i, fmt.Errorf("%w: unexpected end", ErrNotJSON)
	}
	switch src[i] {
	case '"':
		return skipString(src, i)
	case '{', '[':
		depth := 0
		for i < len(src) {
			switch src[i] {
			case '"':
				end, err := skipString(src, i)
				if err != nil {
					return i, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return i, fmt.Errorf("%w: unterminated container", ErrNotJSON)
	}
	// A number or a literal runs to the next delimiter.
	start := i
	for i < len(src) {
		switch src[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == start {
				return i, fmt.Errorf("%w: want a value at offset %d", ErrNotJSON, i)
			}
			return i, nil
		}
		i++
	}
	return i, nil
}

// skipString returns the index just after the string starting at src[i].
func skipString(src []byte, i int) (int, error) {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return i, fmt.Errorf("%w: unterminated string", ErrNotJSON)
}
