package neptune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
)

// fakeNeptune is an httptest server that answers the driver's queries the
// way Neptune would, from maps. It knows each query by its exact text (the
// constants of queries.go) and rejects any other text as Neptune rejects a
// malformed query: a driver that built query text from input would fail
// every test run against it. It records every request.
type fakeNeptune struct {
	srv *httptest.Server

	mu    sync.Mutex
	nodes map[string]*fakeNode // by ~id
	edges map[string]*fakeEdge // by ~id
	// out and in index edges by their endpoints' ~ids.
	out, in map[string]map[string]*fakeEdge
	log     []fakeRequest
	// failNext, when set, answers the next requests with this error
	// response, decrementing failTimes; 0 means every request.
	failNext  *fakeError
	failTimes int
	// check, when set, is called for every request before it is served.
	check func(r *http.Request, body []byte)
}

type fakeNode struct {
	ns, id, label string
	props         *string
}

type fakeEdge struct {
	src, dst string // vertex ~ids
	label    string
	props    *string
}

// fakeRequest is a request as the server received it.
type fakeRequest struct {
	Query  string
	Params map[string]any
}

// fakeError is an error response to inject.
type fakeError struct {
	status int
	code   string
	msg    string
}

func newFakeNeptune(t testing.TB) *fakeNeptune {
	f := &fakeNeptune{nodes: map[string]*fakeNode{}, edges: map[string]*fakeEdge{},
		out: map[string]map[string]*fakeEdge{}, in: map[string]map[string]*fakeEdge{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// store opens a store on the fake.
func (f *fakeNeptune) store(t testing.TB, opts Options) *Store {
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return Open(u, opts)
}

// requests returns the recorded requests and forgets them.
func (f *fakeNeptune) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	log := f.log
	f.log = nil
	return log
}

func (f *fakeNeptune) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/openCypher" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, fakeError{400, "BadRequestException", err.Error()})
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseForm(); err != nil {
		writeError(w, fakeError{400, "BadRequestException", err.Error()})
		return
	}
	if f.check != nil {
		f.check(r, body)
	}
	q := r.PostForm.Get("query")
	var params map[string]any
	if err := json.Unmarshal([]byte(r.PostForm.Get("parameters")), &params); err != nil {
		writeError(w, fakeError{400, "BadRequestException", "parameters: " + err.Error()})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fakeRequest{q, params})
	if f.failNext != nil {
		e := *f.failNext
		if f.failTimes > 0 {
			if f.failTimes--; f.failTimes == 0 {
				f.failNext = nil
			}
		}
		writeError(w, e)
		return
	}
	rows, ok := f.run(q, params)
	if !ok {
		writeError(w, fakeError{400, "MalformedQueryException", "unknown query: " + q})
		return
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"results": rows})
}

func writeError(w http.ResponseWriter, e fakeError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-RequestId", "req-1")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"requestId": "req-1", "code": e.code, "detailedMessage": e.msg})
}

// str reads a string parameter; strs a list of strings.
func str(v any) string { s, _ := v.(string); return s }

func strp(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// run executes query q; ok is false for a query text the fake does not
// know.
func (f *fakeNeptune) run(q string, p map[string]any) (rows []map[string]any, ok bool) {
	labelOK := func(labels []string, l string) bool { return len(labels) == 0 || slices.Contains(labels, l) }
	edgeRow := func(e *fakeEdge) map[string]any {
		return map[string]any{"src": f.nodes[e.src].id, "dst": f.nodes[e.dst].id, "label": e.label, "props": e.props}
	}
	switch q {
	case putNodeQuery:
		f.nodes[str(p["vid"])] = &fakeNode{ns: str(p["ns"]), id: str(p["id"]), label: str(p["label"]), props: strp(p["props"])}
	case getNodeQuery:
		if n := f.nodes[str(p["vid"])]; n != nil {
			rows = append(rows, map[string]any{"label": n.label, "props": n.props})
		}
	case deleteNodeQuery:
		f.deleteNode(str(p["vid"]))
	case putEdgeQuery:
		n := 0
		if f.nodes[str(p["src"])] != nil && f.nodes[str(p["dst"])] != nil {
			f.putEdge(str(p["eid"]), &fakeEdge{src: str(p["src"]), dst: str(p["dst"]), label: str(p["label"]), props: strp(p["props"])})
			n = 1
		}
		rows = append(rows, map[string]any{"n": n})
	case deleteEdgeQuery:
		f.deleteEdge(str(p["eid"]))
	case edgesOutQuery, edgesInQuery, edgesBothQuery:
		vid, label := str(p["vid"]), str(p["label"])
		a := f.nodes[vid]
		if a == nil {
			return nil, true
		}
		// An undirected pattern matches a self-loop from both ends.
		if q != edgesInQuery {
			for _, e := range f.out[vid] {
				if label == "" || e.label == label {
					rows = append(rows, edgeRow(e))
				}
			}
		}
		if q != edgesOutQuery {
			for _, e := range f.in[vid] {
				if label == "" || e.label == label {
					rows = append(rows, edgeRow(e))
				}
			}
		}
		if len(rows) == 0 { // OPTIONAL MATCH without a match
			rows = append(rows, map[string]any{"src": a.id, "dst": nil, "label": nil, "props": nil})
		}
	case stepOutQuery, stepInQuery, stepBothQuery:
		labels := strs(p["labels"])
		seen := map[string]bool{}
		for _, v := range strs(p["frontier"]) {
			if q != stepInQuery {
				for _, e := range f.out[v] {
					if labelOK(labels, e.label) {
						seen[f.nodes[e.dst].id] = true
					}
				}
			}
			if q != stepOutQuery {
				for _, e := range f.in[v] {
					if labelOK(labels, e.label) {
						seen[f.nodes[e.src].id] = true
					}
				}
			}
		}
		for id := range seen {
			rows = append(rows, map[string]any{"id": id})
		}
	case nodesQuery:
		for _, v := range strs(p["vids"]) {
			if n := f.nodes[v]; n != nil {
				rows = append(rows, map[string]any{"id": n.id, "label": n.label, "props": n.props})
			}
		}
	case subgraphQuery:
		vids, labels := map[string]bool{}, strs(p["labels"])
		for _, v := range strs(p["vids"]) {
			vids[v] = true
		}
		for v := range vids {
			for _, e := range f.out[v] {
				if vids[e.dst] && labelOK(labels, e.label) {
					rows = append(rows, edgeRow(e))
				}
			}
		}
	case loadNodesQuery:
		for _, x := range p["nodes"].([]any) {
			m := x.(map[string]any)
			f.nodes[str(m["vid"])] = &fakeNode{ns: str(p["ns"]), id: str(m["id"]), label: str(m["label"]), props: strp(m["props"])}
		}
	case loadEdgesQuery:
		n := 0
		for _, x := range p["edges"].([]any) {
			m := x.(map[string]any)
			if f.nodes[str(m["src"])] != nil && f.nodes[str(m["dst"])] != nil {
				f.putEdge(str(m["eid"]), &fakeEdge{src: str(m["src"]), dst: str(m["dst"]), label: str(m["label"]), props: strp(m["props"])})
				n++
			}
		}
		rows = append(rows, map[string]any{"n": n})
	default:
		return nil, false
	}
	return rows, true
}

// deleteNode is DETACH DELETE.
func (f *fakeNeptune) deleteNode(vid string) {
	if f.nodes[vid] == nil {
		return
	}
	delete(f.nodes, vid)
	for eid := range f.out[vid] {
		f.deleteEdge(eid)
	}
	for eid := range f.in[vid] {
		f.deleteEdge(eid)
	}
}

// putEdge creates or replaces edge eid (MERGE on its ~id).
func (f *fakeNeptune) putEdge(eid string, e *fakeEdge) {
	f.deleteEdge(eid)
	f.edges[eid] = e
	for _, idx := range []struct {
		m   map[string]map[string]*fakeEdge
		vid string
	}{{f.out, e.src}, {f.in, e.dst}} {
		if idx.m[idx.vid] == nil {
			idx.m[idx.vid] = map[string]*fakeEdge{}
		}
		idx.m[idx.vid][eid] = e
	}
}

func (f *fakeNeptune) deleteEdge(eid string) {
	if e := f.edges[eid]; e != nil {
		delete(f.edges, eid)
		delete(f.out[e.src], eid)
		delete(f.in[e.dst], eid)
	}
}

// String renders a request for test messages.
func (r fakeRequest) String() string {
	p, _ := json.Marshal(r.Params)
	return fmt.Sprintf("%s %s", r.Query, p)
}
