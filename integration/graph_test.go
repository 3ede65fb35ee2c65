package integration

import (
	"sort"
	"strings"
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

func TestGraphThroughDevEdge(t *testing.T) {
	for _, b := range []struct {
		name    string
		backend func(t *testing.T) *configv1.Backend
	}{
		{"sqlite", func(t *testing.T) *configv1.Backend { return sqliteBackend(t, "db") }},
		{"postgres", func(t *testing.T) *configv1.Backend { return postgresBackend(t, "db", "") }},
	} {
		t.Run(b.name, func(t *testing.T) {
			st := startStack(t, []*configv1.Backend{b.backend(t)},
				[]*configv1.Namespace{{Namespace: "social", Abstraction: configv1.Abstraction_GRAPH, Backend: "db"}})
			testGraphRoutes(t, kvClient{t: t, base: st.edgeURL + "/v1/graph/social"})
		})
	}
}

func testGraphRoutes(t *testing.T, c kvClient) {
	for _, id := range []string{"ada", "bob", "cy", "dee", "a/b"} {
		path := "/nodes/" + strings.ReplaceAll(id, "/", "%2F")
		expect(t, "put node "+id, c.do("PUT", path, []byte(`{"label":"person","props":{"name":"`+id+`"}}`)), 200, "")
	}
	r := c.do("GET", "/nodes/a%2Fb", nil)
	expect(t, "get node", r, 200, "")
	var n struct {
		ID, Label string
		Props     map[string]string
	}
	r.json(t, &n)
	if n.ID != "a/b" || n.Label != "person" || n.Props["name"] != "a/b" {
		t.Fatalf("node = %s", r.body)
	}
	for _, e := range [][2]string{{"ada", "bob"}, {"bob", "cy"}, {"cy", "ada"}, {"cy", "dee"}} {
		expect(t, "put edge", c.do("PUT", "/edges", []byte(`{"from":"`+e[0]+`","to":"`+e[1]+`","label":"follows"}`)), 200, "")
	}
	expect(t, "edge to missing node", c.do("PUT", "/edges", []byte(`{"from":"ada","to":"zed","label":"follows"}`)), 404, "NOT_FOUND")

	r = c.do("GET", "/nodes/cy/edges?direction=out", nil)
	expect(t, "edges", r, 200, "")
	var edges struct {
		Edges []struct{ From, To, Label string }
	}
	r.json(t, &edges)
	if len(edges.Edges) != 2 {
		t.Fatalf("out edges of cy = %s, want 2", r.body)
	}

	r = c.do("POST", "/traverse", []byte(`{"start":"ada","direction":"out","labels":["follows"],"max_depth":3}`))
	expect(t, "traverse", r, 200, "")
	var tr struct {
		Nodes []struct {
			ID    string
			Depth int
		}
		Truncated bool
	}
	r.json(t, &tr)
	var got []string
	for _, v := range tr.Nodes {
		got = append(got, v.ID+":"+string(rune('0'+v.Depth)))
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "ada:0 bob:1 cy:2 dee:3" || tr.Truncated {
		t.Fatalf("traverse = %s, want ada:0 bob:1 cy:2 dee:3 each once", r.body)
	}
	r = c.do("POST", "/traverse", []byte(`{"start":"ada","direction":"out","max_depth":3,"limit":2}`))
	r.json(t, &tr)
	if len(tr.Nodes) != 2 || !tr.Truncated {
		t.Fatalf("traverse with limit 2 = %s, want 2 nodes and truncated", r.body)
	}

	expect(t, "delete node", c.do("DELETE", "/nodes/cy", nil), 204, "")
	r = c.do("GET", "/nodes/bob/edges?direction=both", nil)
	r.json(t, &edges)
	if len(edges.Edges) != 1 {
		t.Fatalf("edges of bob after deleting cy = %s, want only ada->bob", r.body)
	}
	expect(t, "get deleted node", c.do("GET", "/nodes/cy", nil), 404, "NOT_FOUND")
	expect(t, "delete edge", c.do("DELETE", "/edges?from=ada&to=bob&label=follows", nil), 204, "")

	expect(t, "depth over 10", c.do("POST", "/traverse", []byte(`{"start":"ada","max_depth":11}`)), 400, "INVALID_ARGUMENT")
	expect(t, "bad direction", c.do("POST", "/traverse", []byte(`{"start":"ada","direction":"up"}`)), 400, "INVALID_ARGUMENT")
	expect(t, "id over 512 bytes", c.do("GET", "/nodes/"+strings.Repeat("x", 513), nil), 400, "INVALID_ARGUMENT")
	expect(t, "empty id", c.do("GET", "/nodes/", nil), 400, "INVALID_ARGUMENT")
	expect(t, "unknown route", c.do("GET", "/vertices/a", nil), 404, "NOT_FOUND")
}
