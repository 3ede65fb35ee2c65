package graph

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidation(t *testing.T) {
	longest := strings.Repeat("x", MaxIDBytes)
	maxMulti := strings.Repeat("é", MaxIDBytes/2)
	okArgs := TraverseArgs{Start: "a", Direction: Out, MaxDepth: 1, Limit: 1}
	with := func(mod func(*TraverseArgs)) TraverseArgs { a := okArgs; mod(&a); return a }
	for _, tc := range []struct {
		name  string
		err   error
		valid bool
	}{
		{"IDOfMaxBytes", ValidateID(longest), true},
		{"MultibyteIDOfMaxBytes", ValidateID(maxMulti), true},
		{"IDOverMaxBytes", ValidateID(longest + "x"), false},
		{"MultibyteIDOverMaxBytes", ValidateID(maxMulti + "é"), false},
		{"EmptyID", ValidateID(""), false},
		{"InvalidUTF8ID", ValidateID("a\xc3"), false},
		{"NULInID", ValidateID("a\x00"), false},
		{"NodeWithoutLabelOrProps", Node{ID: "a"}.Validate(), true},
		{"NodePropsObjectWithSpace", Node{ID: "a", Props: json.RawMessage(" \n{}")}.Validate(), true},
		{"NodePropsNull", Node{ID: "a", Props: json.RawMessage("null")}.Validate(), false},
		{"NodePropsTrailingGarbage", Node{ID: "a", Props: json.RawMessage("{} x")}.Validate(), false},
		{"NodeLabelOfMaxBytes", Node{ID: "a", Label: strings.Repeat("l", MaxLabelBytes)}.Validate(), true},
		{"NodeLabelOverMaxBytes", Node{ID: "a", Label: strings.Repeat("l", MaxLabelBytes+1)}.Validate(), false},
		{"Edge", Edge{From: "a", To: "a", Label: "self"}.Validate(), true},
		{"EdgeWithoutLabel", Edge{From: "a", To: "b"}.Validate(), false},
		{"EdgeNULLabel", Edge{From: "a", To: "b", Label: "\x00"}.Validate(), false},
		{"EdgesQueryWithoutLabel", ValidateEdgesQuery("a", Both, ""), true},
		{"EdgesQueryBadDirection", ValidateEdgesQuery("a", "any", ""), false},
		{"TraverseMinimal", okArgs.Validate(), true},
		{"TraverseMaxima", with(func(a *TraverseArgs) {
			a.MaxDepth, a.Limit, a.Labels = MaxDepth, MaxLimit, make([]string, MaxLabels)
			for i := range a.Labels {
				a.Labels[i] = "l"
			}
		}).Validate(), true},
		{"TraverseDepthOverMax", with(func(a *TraverseArgs) { a.MaxDepth = MaxDepth + 1 }).Validate(), false},
		{"TraverseLimitOverMax", with(func(a *TraverseArgs) { a.Limit = MaxLimit + 1 }).Validate(), false},
		{"TraverseNegativeLimit", with(func(a *TraverseArgs) { a.Limit = -1 }).Validate(), false},
		{"LoadBadEdge", ValidateLoad([]Node{{ID: "a"}}, []Edge{{From: "a", To: "a"}}), false},
	} {
		if got := tc.err == nil; got != tc.valid {
			t.Errorf("%s: error %v, want valid = %v", tc.name, tc.err, tc.valid)
		}
		if tc.err != nil && !errors.Is(tc.err, ErrInvalid) {
			t.Errorf("%s: error %v does not match ErrInvalid", tc.name, tc.err)
		}
	}
}

// Validation messages must not quote what they reject: IDs and labels may
// be personal data.
func TestValidationMessagesDoNotQuoteInput(t *testing.T) {
	secret := "jane.doe@example.com"
	for _, err := range []error{
		ValidateID(strings.Repeat(secret, 40)),
		ValidateID(secret + "\x00"),
		Edge{From: secret, To: secret}.Validate(),
		Node{ID: secret, Props: json.RawMessage(`["` + secret + `"]`)}.Validate(),
	} {
		if err == nil || strings.Contains(err.Error(), "jane") {
			t.Errorf("error %v quotes the input", err)
		}
	}
}
