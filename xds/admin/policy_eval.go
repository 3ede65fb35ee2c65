package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/prism-gw/prism/extproc/pii"
	"github.com/prism-gw/prism/policies"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// defaultPolicy is the policy a namespace without one uses; extproc runs
// the built-in one until a policy of this name is pushed.
const defaultPolicy = "default"

// evaluateRequest is the body of POST /v1/admin/policies/{name}/evaluate.
// Input is policies.Input; when it names a namespace that exists and omits
// fields or access, they are taken from that namespace's config, which is
// what extproc would send.
type evaluateRequest struct {
	Input json.RawMessage `json:"input"`
}

// evaluateResult is policies.Decision with JSON names.
type evaluateResult struct {
	Allow  bool                       `json:"allow"`
	Role   string                     `json:"role"`
	Reason string                     `json:"reason"`
	Fields map[string]policies.Action `json:"fields"`
	Audit  bool                       `json:"audit"`
}

// evaluatePolicy lets an operator try a policy for a subject and operation
// before pushing a change: it compiles the stored policy (this is the admin
// path, never the data path) and decides one input.
func (h *Handler) evaluatePolicy(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	st := h.ctl.State()
	modules, version := map[string]string(nil), ""
	if p, ok := st.Policies[name]; ok {
		modules, version = p.GetModules(), p.GetVersion()
	} else if name == defaultPolicy {
		modules, version = policies.Default(), "built-in"
	} else {
		return notFound("policy %s does not exist", name)
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is too large"}
		}
		return invalid("reading the request body: %v", err)
	}
	var req evaluateRequest
	if err := strictJSON(body, &req); err != nil {
		return invalid("body: %v (want {\"input\": {...}})", err)
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return invalid("body: input is required: {\"input\": {\"subject\", \"namespace\", \"operation\", ...}}")
	}
	var in policies.Input
	if err := strictJSON(req.Input, &in); err != nil {
		return invalid("input: %v", err)
	}
	var given map[string]json.RawMessage
	_ = json.Unmarshal(req.Input, &given)
	if ns, ok := st.Namespaces[in.Namespace]; ok {
		fillFromNamespace(&in, ns, given)
	}
	if in.Fields == nil {
		in.Fields = []policies.Field{}
	}

	eng, err := policies.Compile(r.Context(), modules)
	if err != nil {
		return invalid("policy %s (version %s) does not compile: %v", name, version, err)
	}
	d, err := eng.Decide(r.Context(), in)
	if err != nil {
		// extproc denies on an evaluation error; say so rather than fail.
		writeJSON(w, http.StatusOK, map[string]any{
			"policy": map[string]string{"name": name, "version": version},
			"input":  in,
			"result": evaluateResult{Reason: "denied: " + err.Error(), Fields: map[string]policies.Action{}},
			"error":  err.Error(),
		})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"policy": map[string]string{"name": name, "version": version},
		"input":  in,
		"result": evaluateResult{Allow: d.Allow, Role: d.Role, Reason: d.Reason, Fields: d.Fields, Audit: d.Audit},
	})
	return nil
}

// fillFromNamespace completes an input with what extproc takes from the
// namespace config: its PII fields and its access lists.
func fillFromNamespace(in *policies.Input, ns *configv1.Namespace, given map[string]json.RawMessage) {
	if _, ok := given["fields"]; !ok {
		for _, f := range pii.FieldsOf(ns.GetSchema()) {
			in.Fields = append(in.Fields, policies.Field{Path: f.Path, Class: string(f.Class)})
		}
	}
	if _, ok := given["access"]; !ok {
		a := ns.GetAccess()
		in.Access = policies.Access{Owners: nonNil(a.GetOwners()), Readers: nonNil(a.GetReaders()), RequireIdentity: a.GetRequireIdentity()}
	}
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing
// data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
