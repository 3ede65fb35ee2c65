package policies

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestMemoizedInputs(t *testing.T) {
	authz := Default()["authz.rego"]
	tests := []struct {
		name string
		pii  string
		want []string // nil: not memoized
	}{
		{"default policy", Default()["pii.rego"], []string{"access", "fields", "namespace", "operation", "subject"}},
		{"reads purpose and key", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": input.purpose == input.key}\n",
			[]string{"access", "key", "namespace", "operation", "purpose", "subject"}},
		{"reads request id", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": input.request_id != \"\"}\n", nil},
		{"reads input whole", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": count(input) > 0}\n", nil},
		{"reads input by variable key", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": true} if input[k] == \"x\"\n", nil},
		{"request id nested in another ref", "package prism.pii\n\nm := {}\n\ndecision := {\"fields\": {}, \"audit\": true} if m[input.request_id]\n", nil},
		{"calls time.now_ns", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": time.now_ns() > 0}\n", nil},
		{"calls rand.intn", "package prism.pii\n\ndecision := {\"fields\": {}, \"audit\": rand.intn(\"x\", 2) == 1}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(context.Background(), map[string]string{"authz.rego": authz, "pii.rego": tt.pii})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, ok := e.Memoized()
			if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
				t.Fatalf("Memoized() = %v, %v; want %v, %v", got, ok, tt.want, tt.want != nil)
			}
		})
	}
}

// TestMemoAgreesWithEvaluation checks that a remembered decision is the one
// evaluating would give: every combination of a small input space, in random
// order, so that inputs differing in one part follow each other.
func TestMemoAgreesWithEvaluation(t *testing.T) {
	// A variant of the default whose decisions depend on purpose and key too.
	pii := strings.Replace(Default()["pii.rego"], "class_overrides := {}", `class_overrides := {"reader": {"ssn": "redact"}} if {
	input.purpose == "support"
	input.key == "k1"
} else := {}`, 1)
	e, err := Compile(context.Background(), map[string]string{"authz.rego": Default()["authz.rego"], "pii.rego": pii})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if parts, _ := e.Memoized(); !slices.Equal(parts, []string{"access", "fields", "key", "namespace", "operation", "purpose", "subject"}) {
		t.Fatalf("Memoized() = %v, want every part but request_id", parts)
	}
	var inputs []Input
	for _, subject := range []string{owner, reader, stranger, ""} {
		for _, ns := range []string{"a", "b"} {
			for _, op := range []string{OpGet, OpPut, OpTraverse} {
				for _, key := range []string{"k1", "k2"} {
					for _, fields := range [][]Field{nil, piiFields} {
						for _, purpose := range []string{"", "support"} {
							for _, access := range []Access{
								{Owners: []string{owner}, Readers: []string{reader}},
								{Owners: []string{reader}, RequireIdentity: true},
								{},
							} {
								inputs = append(inputs, Input{Subject: subject, Namespace: ns, Operation: op, Key: key,
									Fields: fields, Purpose: purpose, Access: access})
							}
						}
					}
				}
			}
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(inputs), func(i, j int) { inputs[i], inputs[j] = inputs[j], inputs[i] })
	for i, in := range inputs {
		want, err := e.eval(context.Background(), &in)
		if err != nil {
			t.Fatalf("input %+v: eval: %v", in, err)
		}
		// The first Decide may evaluate; the second, for another request
		// id, is a memo hit.
		for _, id := range []string{fmt.Sprint(i), fmt.Sprint(i) + "-again"} {
			in.RequestID = id
			got, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatalf("input %+v: Decide: %v", in, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("input %+v:\nDecide (memo) = %+v\nevaluation    = %+v", in, got, want)
			}
		}
	}
}

func TestMemoCallerOwnsDecision(t *testing.T) {
	e := defaultEngine(t)
	in := input(owner, OpGet)
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	d.Fields["email"] = Deny
	d, err = e.Decide(context.Background(), in)
	if err != nil || d.Fields["email"] != Plain {
		t.Fatalf("after the caller changed a returned decision, Decide gives email %q (err %v), want plain", d.Fields["email"], err)
	}
}

func TestMemoIsBounded(t *testing.T) {
	e := defaultEngine(t)
	e.memo.max = 50
	for i := range 120 {
		in := input(fmt.Sprintf("spiffe://prism.local/s%d", i), OpGet)
		if _, err := e.Decide(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.memo.m); n > e.memo.max || n == 0 {
		t.Fatalf("memo holds %d decisions, want 1..%d", n, e.memo.max)
	}
}

func TestMemoKeysDiffer(t *testing.T) {
	m := &memo{parts: partSubject | partNamespace | partFields | partAccess}
	// Inputs that concatenate to the same bytes without length prefixes.
	a := Input{Subject: "ab", Namespace: "c"}
	b := Input{Subject: "a", Namespace: "bc"}
	c := Input{Access: Access{Owners: []string{"x", "y"}}}
	d := Input{Access: Access{Owners: []string{"x"}, Readers: []string{"y"}}}
	f := Input{Fields: []Field{{Path: "a", Class: "b"}}}
	g := Input{Fields: []Field{{Path: "ab", Class: ""}}}
	keys := map[string]bool{}
	for _, in := range []Input{a, b, c, d, f, g} {
		keys[string(m.key(nil, &in))] = true
	}
	if len(keys) != 6 {
		t.Fatalf("6 different inputs gave %d different memo keys", len(keys))
	}
}
