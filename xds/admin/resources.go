package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/resource"
	"github.com/prism-gw/prism/xds/server"
)

// kind is one resource collection of the API.
type kind struct {
	kind     desired.Kind
	plural   string // the path segment and the key of a list
	singular string // the key of one resource in a response
}

var kinds = []kind{
	{desired.Backend, "backends", "backend"},
	{desired.Namespace, "namespaces", "namespace"},
	{desired.Pool, "pools", "pool"},
	{desired.Policy, "policies", "policy"},
}

// messageJSON is how resources appear in responses: the field names
// operators write.
var messageJSON = protojson.MarshalOptions{UseProtoNames: true}

func rawMessage(m proto.Message) json.RawMessage {
	b, err := messageJSON.Marshal(m)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}

// status tells the operator what a change led to. Nodes ACK asynchronously;
// GET /v1/admin/nodes shows when they have.
type status struct {
	StateVersion int64                           `json:"state_version"`
	Changed      bool                            `json:"changed"`
	Served       server.Served                   `json:"served"`
	Nodes        map[resource.Class]fleetSummary `json:"nodes"`
}

// fleetSummary counts a class of nodes: connected, on the version last
// sent to them, and currently rejecting it.
type fleetSummary struct {
	Connected int `json:"connected"`
	InSync    int `json:"in_sync"`
	Nacking   int `json:"nacking"`
}

func (h *Handler) status(st *desired.State, changed bool) status {
	s := status{StateVersion: st.Version, Changed: changed, Served: h.fleet.Served(), Nodes: map[resource.Class]fleetSummary{}}
	for _, n := range h.fleet.Nodes() {
		if !n.Connected {
			continue
		}
		sum := s.Nodes[n.Class]
		sum.Connected++
		inSync, nacking := true, false
		for _, t := range n.Types {
			inSync = inSync && t.InSync
			nacking = nacking || (t.LastNack != nil && t.LastNack.Version == t.SentVersion)
		}
		if inSync {
			sum.InSync++
		}
		if nacking {
			sum.Nacking++
		}
		s.Nodes[n.Class] = sum
	}
	return s
}

func (h *Handler) list(k kind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := h.ctl.State()
		items := []json.RawMessage{}
		for _, name := range st.SortedNames(k.kind) {
			m, _ := st.Get(k.kind, name)
			items = append(items, rawMessage(m))
		}
		writeJSON(w, http.StatusOK, map[string]any{k.plural: items, "state_version": st.Version})
		return nil
	}
}

func (h *Handler) get(k kind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		st := h.ctl.State()
		m, ok := st.Get(k.kind, name)
		if !ok {
			return notFound("%s %s does not exist", k.singular, name)
		}
		resp := map[string]any{k.singular: rawMessage(m), "state_version": st.Version}
		switch k.kind {
		case desired.Backend:
			resp["used_by"] = nonNil(st.Users(name))
		case desired.Namespace:
			resp["status"] = h.status(st, false)
		case desired.Policy:
			resp["used_by"] = nonNil(policyUsers(st, name))
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
}

// put replaces one resource with the request body (YAML or JSON, the same
// fields as prism.yaml).
func (h *Handler) put(k kind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := configv1.ValidateName(name); err != nil {
			return invalid("%s name in the path: %v", k.singular, err)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}
			}
			return invalid("reading the request body: %v", err)
		}
		m, _ := desired.NewMessage(k.kind)
		if err := config.ParseMessage(body, m); err != nil {
			return invalid("%s body: %v", k.singular, err)
		}
		switch got := desired.Name(m); {
		case got == "":
			setName(m, name)
		case got != name:
			return invalid("the body names %s %q but the path names %q", k.singular, got, name)
		}
		// Checks that need no state (compiling a policy, running its
		// tests) run before the store transaction, not inside it.
		extra, err := h.check(r.Context(), m)
		if err != nil {
			return err
		}
		force := r.URL.Query().Get("force") == "true"
		storage, err := h.provisionStorage(r, m, force)
		if err != nil {
			return err
		}
		if storage.dryRun {
			writeJSON(w, http.StatusOK, h.dryRunResponse(storage))
			return nil
		}
		var plan string
		var switched *handover
		st, changed, err := h.ctl.Update(r.Context(), func(next *desired.State) error {
			var err error
			plan, err = prepare(next, m, force)
			if err != nil {
				return err
			}
			if n, ok := m.(*configv1.Namespace); ok {
				if switched, err = h.forcedSwitch(r.Context(), next, n); err != nil {
					return err
				}
			}
			return next.Put(m)
		})
		if err != nil {
			if switched != nil && st == nil {
				return h.undoHandover(r.Context(), switched, "switch", err)
			}
			return err
		}
		if !changed {
			plan = k.singular + " " + name + ": unchanged\n"
		}
		plan += storage.text
		stored, _ := st.Get(k.kind, name)
		h.opts.Logger.Info("admin put", "kind", k.singular, "name", name, "state_version", st.Version, "changed", changed)
		resp := map[string]any{k.singular: rawMessage(stored), "plan": plan, "status": h.status(st, changed)}
		for key, v := range extra {
			resp[key] = v
		}
		if storage.steps != nil {
			resp["storage"] = storage.steps
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
}

func (h *Handler) delete(k kind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		var plan string
		st, changed, err := h.ctl.Update(r.Context(), func(next *desired.State) error {
			var err error
			plan, err = prepareDelete(next, k, name)
			if err != nil {
				return err
			}
			next.Delete(k.kind, name)
			return nil
		})
		if err != nil {
			return err
		}
		h.opts.Logger.Info("admin delete", "kind", k.singular, "name", name, "state_version", st.Version)
		writeJSON(w, http.StatusOK, map[string]any{"deleted": k.singular + " " + name, "plan": plan, "status": h.status(st, changed)})
		return nil
	}
}

func (h *Handler) nodes(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"served": h.fleet.Served(), "nodes": nonNil(h.fleet.Nodes())})
	return nil
}

func setName(m proto.Message, name string) {
	switch m := m.(type) {
	case *configv1.Backend:
		m.Name = name
	case *configv1.ExtprocPool:
		m.Name = name
	case *configv1.Policy:
		m.Name = name
	case *configv1.Namespace:
		m.Namespace = name
	case *configv1.Migration:
		m.Namespace = name
	}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
