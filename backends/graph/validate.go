package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidateID checks a node ID: 1..MaxIDBytes bytes of UTF-8 without NUL.
// NUL is excluded because PostgreSQL text cannot hold it, and an ID must
// mean the same on every backend.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty node id", ErrInvalid)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%w: node id of %d bytes, max %d", ErrInvalid, len(id), MaxIDBytes)
	}
	return validText("node id", id)
}

// ValidateEdgeLabel checks an edge label: 1..MaxLabelBytes bytes of UTF-8
// without NUL.
func ValidateEdgeLabel(label string) error {
	if label == "" {
		return fmt.Errorf("%w: empty edge label", ErrInvalid)
	}
	return validLabel("edge label", label)
}

// validLabel checks the length and encoding of a label.
func validLabel(what, label string) error {
	if len(label) > MaxLabelBytes {
		return fmt.Errorf("%w: %s of %d bytes, max %d", ErrInvalid, what, len(label), MaxLabelBytes)
	}
	return validText(what, label)
}

func validText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s contains NUL", ErrInvalid, what)
	}
	return nil
}

// validProps accepts empty props or a JSON object.
func validProps(what string, props json.RawMessage) error {
	if len(props) == 0 {
		return nil
	}
	if trimmed := bytes.TrimLeft(props, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: %s props are not a JSON object", ErrInvalid, what)
	}
	if !json.Valid(props) {
		return fmt.Errorf("%w: %s props are not valid JSON", ErrInvalid, what)
	}
	return nil
}

// Validate checks a node for PutNode.
func (n Node) Validate() error {
	if err := ValidateID(n.ID); err != nil {
		return err
	}
	if err := validLabel("node label", n.Label); err != nil {
		return err
	}
	return validProps("node", n.Props)
}

// Validate checks an edge for PutEdge.
func (e Edge) Validate() error {
	if err := ValidateEdgeKey(e.From, e.To, e.Label); err != nil {
		return err
	}
	return validProps("edge", e.Props)
}

// ValidateEdgeKey checks what identifies an edge.
func ValidateEdgeKey(from, to, label string) error {
	if err := ValidateID(from); err != nil {
		return fmt.Errorf("edge from: %w", err)
	}
	if err := ValidateID(to); err != nil {
		return fmt.Errorf("edge to: %w", err)
	}
	return ValidateEdgeLabel(label)
}

// Validate checks that d is Out, In or Both.
func (d Direction) Validate() error {
	switch d {
	case Out, In, Both:
		return nil
	}
	return fmt.Errorf("%w: direction must be out, in or both", ErrInvalid)
}

// ValidateEdgesQuery checks the arguments of Store.Edges.
func ValidateEdgesQuery(id string, dir Direction, label string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := dir.Validate(); err != nil {
		return err
	}
	if label == "" {
		return nil
	}
	return ValidateEdgeLabel(label)
}

// Validate checks a traversal's arguments.
func (a TraverseArgs) Validate() error {
	if err := ValidateID(a.Start); err != nil {
		return fmt.Errorf("traversal start: %w", err)
	}
	if err := a.Direction.Validate(); err != nil {
		return err
	}
	if a.MaxDepth < 1 || a.MaxDepth > MaxDepth {
		return fmt.Errorf("%w: max depth %d outside 1..%d", ErrInvalid, a.MaxDepth, MaxDepth)
	}
	if a.Limit < 1 || a.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d outside 1..%d", ErrInvalid, a.Limit, MaxLimit)
	}
	if len(a.Labels) > MaxLabels {
		return fmt.Errorf("%w: %d labels in the filter, max %d", ErrInvalid, len(a.Labels), MaxLabels)
	}
	for _, l := range a.Labels {
		if err := ValidateEdgeLabel(l); err != nil {
			return fmt.Errorf("label filter: %w", err)
		}
	}
	return nil
}

// ValidateLoad checks the arguments of Loader.Load.
func ValidateLoad(nodes []Node, edges []Edge) error {
	for i, n := range nodes {
		if err := n.Validate(); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	for i, e := range edges {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("edge %d: %w", i, err)
		}
	}
	return nil
}
