package neptune

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/graph"
	"github.com/prism-gw/prism/backends/graph/graphtest"
)

// TestConformance runs the suite against a real cluster: set
// PRISM_NEPTUNE_ENDPOINT (https://host:8182) and, for IAM authentication,
// PRISM_NEPTUNE_REGION with AWS credentials in the environment. The data
// each subtest writes is deleted when it ends.
func TestConformance(t *testing.T) {
	endpoint := os.Getenv("PRISM_NEPTUNE_ENDPOINT")
	if endpoint == "" {
		t.Skip("PRISM_NEPTUNE_ENDPOINT is not set: no Neptune cluster to run the conformance suite against " +
			"(TestConformanceAgainstFake runs it against an in-process fake instead)")
	}
	u, opts, err := ParseDSN(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Region == "" {
		opts.Region = os.Getenv("PRISM_NEPTUNE_REGION")
	}
	s := Open(u, opts)
	graphtest.Run(t, func(t *testing.T) graph.Store {
		r := &nsRecorder{Store: s, seen: map[string]bool{}}
		t.Cleanup(func() { r.dropAll(t, s) })
		return r
	})
}

// dropNamespaceQuery deletes a test namespace from a real cluster.
const dropNamespaceQuery = "MATCH (n:PrismNode {ns: $ns}) DETACH DELETE n"

// nsRecorder notes the namespaces a subtest writes, to delete them after.
type nsRecorder struct {
	graph.Store
	mu   sync.Mutex
	seen map[string]bool
}

func (r *nsRecorder) note(ns string) {
	r.mu.Lock()
	r.seen[ns] = true
	r.mu.Unlock()
}

func (r *nsRecorder) dropAll(t *testing.T, s *Store) {
	for ns := range r.seen {
		if _, err := query[struct{}](context.Background(), s, dropNamespaceQuery, map[string]any{"ns": ns}); err != nil {
			t.Errorf("delete test namespace %s: %v", ns, err)
		}
	}
}

func (r *nsRecorder) PutNode(ctx context.Context, ns string, n graph.Node) error {
	r.note(ns)
	return r.Store.PutNode(ctx, ns, n)
}

func (r *nsRecorder) PutEdge(ctx context.Context, ns string, e graph.Edge) error {
	r.note(ns)
	return r.Store.PutEdge(ctx, ns, e)
}

func (r *nsRecorder) Load(ctx context.Context, ns string, nodes []graph.Node, edges []graph.Edge) error {
	r.note(ns)
	return r.Store.(graph.Loader).Load(ctx, ns, nodes, edges)
}

// allQueries are the query texts the driver may send.
var allQueries = map[string]bool{
	putNodeQuery: true, getNodeQuery: true, deleteNodeQuery: true, putEdgeQuery: true, deleteEdgeQuery: true,
	edgesOutQuery: true, edgesInQuery: true, edgesBothQuery: true,
	stepOutQuery: true, stepInQuery: true, stepBothQuery: true,
	nodesQuery: true, subgraphQuery: true, loadNodesQuery: true, loadEdgesQuery: true,
}

// The fake answers only the driver's constant queries, so the whole suite
// passing against it also shows that no query text depends on input.
func TestConformanceAgainstFake(t *testing.T) {
	f := newFakeNeptune(t)
	s := f.store(t, Options{LoadChunk: 2000})
	graphtest.Run(t, func(t *testing.T) graph.Store { return s })
	t.Cleanup(func() {
		for _, r := range f.requests() {
			if !allQueries[r.Query] {
				t.Errorf("the driver sent a query that is not one of its constants: %q", r.Query)
			}
		}
	})
}

// hostile values: quotes, backticks, braces, parameters and comments, to
// show that they travel as parameters only.
const (
	hostileA     = "a'}) DETACH DELETE n //"
	hostileB     = "b\"`$x`]->() MATCH (m) DELETE m"
	hostileLabel = "`x` $y IN"
)

func vid(id string) string { return vertexID("ns", id) }

func TestExactQueriesAndParameters(t *testing.T) {
	f := newFakeNeptune(t)
	s := f.store(t, Options{})
	ctx := context.Background()
	eid := edgeID("ns", hostileA, hostileB, hostileLabel)
	for _, tc := range []struct {
		name string
		call func() error
		want []fakeRequest
	}{
		{"PutNode", func() error {
			return s.PutNode(ctx, "ns", graph.Node{ID: hostileA, Label: hostileLabel, Props: json.RawMessage(`{"k": "v'"}`)})
		}, []fakeRequest{{putNodeQuery, map[string]any{"vid": vid(hostileA), "ns": "ns", "id": hostileA, "label": hostileLabel, "props": `{"k": "v'"}`}}}},
		{"PutNodeWithoutProps", func() error { return s.PutNode(ctx, "ns", graph.Node{ID: hostileB}) },
			[]fakeRequest{{putNodeQuery, map[string]any{"vid": vid(hostileB), "ns": "ns", "id": hostileB, "label": "", "props": nil}}}},
		{"GetNode", func() error { _, err := s.GetNode(ctx, "ns", hostileA); return err },
			[]fakeRequest{{getNodeQuery, map[string]any{"vid": vid(hostileA)}}}},
		{"PutEdge", func() error {
			return s.PutEdge(ctx, "ns", graph.Edge{From: hostileA, To: hostileB, Label: hostileLabel, Props: json.RawMessage(`{}`)})
		}, []fakeRequest{{putEdgeQuery, map[string]any{"src": vid(hostileA), "dst": vid(hostileB), "eid": eid, "label": hostileLabel, "props": "{}"}}}},
		{"EdgesBoth", func() error { _, err := s.Edges(ctx, "ns", hostileA, graph.Both, hostileLabel); return err },
			[]fakeRequest{{edgesBothQuery, map[string]any{"vid": vid(hostileA), "label": hostileLabel}}}},
		{"EdgesOutNoFilter", func() error { _, err := s.Edges(ctx, "ns", hostileA, graph.Out, ""); return err },
			[]fakeRequest{{edgesOutQuery, map[string]any{"vid": vid(hostileA), "label": ""}}}},
		{"EdgesIn", func() error { _, err := s.Edges(ctx, "ns", hostileB, graph.In, ""); return err },
			[]fakeRequest{{edgesInQuery, map[string]any{"vid": vid(hostileB), "label": ""}}}},
		{"Traverse", func() error {
			_, err := s.Traverse(ctx, "ns", graph.TraverseArgs{Start: hostileA, Direction: graph.Out, Labels: []string{hostileLabel}, MaxDepth: 3, Limit: 10})
			return err
		}, []fakeRequest{
			{getNodeQuery, map[string]any{"vid": vid(hostileA)}},
			{stepOutQuery, map[string]any{"frontier": []any{vid(hostileA)}, "labels": []any{hostileLabel}}},
			{stepOutQuery, map[string]any{"frontier": []any{vid(hostileB)}, "labels": []any{hostileLabel}}},
			// the frontier is empty after b: no third step
			{nodesQuery, map[string]any{"vids": []any{vid(hostileA), vid(hostileB)}}},
			{subgraphQuery, map[string]any{"vids": []any{vid(hostileA), vid(hostileB)}, "labels": []any{hostileLabel}}},
		}},
		{"TraverseBothNoFilter", func() error {
			_, err := s.Traverse(ctx, "ns", graph.TraverseArgs{Start: hostileB, Direction: graph.Both, MaxDepth: 1, Limit: 10})
			return err
		}, []fakeRequest{
			{getNodeQuery, map[string]any{"vid": vid(hostileB)}},
			{stepBothQuery, map[string]any{"frontier": []any{vid(hostileB)}, "labels": []any{}}},
			{nodesQuery, map[string]any{"vids": []any{vid(hostileB), vid(hostileA)}}},
			{subgraphQuery, map[string]any{"vids": []any{vid(hostileB), vid(hostileA)}, "labels": []any{}}},
		}},
		{"DeleteEdge", func() error { return s.DeleteEdge(ctx, "ns", hostileA, hostileB, hostileLabel) },
			[]fakeRequest{{deleteEdgeQuery, map[string]any{"eid": eid}}}},
		{"DeleteNode", func() error { return s.DeleteNode(ctx, "ns", hostileB) },
			[]fakeRequest{{deleteNodeQuery, map[string]any{"vid": vid(hostileB)}}}},
		{"Load", func() error {
			return s.Load(ctx, "ns", []graph.Node{{ID: hostileB, Label: "l"}}, []graph.Edge{{From: hostileA, To: hostileB, Label: hostileLabel}})
		}, []fakeRequest{
			{loadNodesQuery, map[string]any{"ns": "ns", "nodes": []any{map[string]any{"vid": vid(hostileB), "id": hostileB, "label": "l", "props": nil}}}},
			{loadEdgesQuery, map[string]any{"edges": []any{map[string]any{
				"src": vid(hostileA), "dst": vid(hostileB), "eid": eid, "label": hostileLabel, "props": nil}}}},
		}},
	} {
		f.requests()
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := f.requests(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s sent\n  %v\nwant\n  %v", tc.name, got, tc.want)
		}
	}
}

func TestIDsOfDifferentKeysDiffer(t *testing.T) {
	if vertexID("a:1", "b") == vertexID("a", "1:b") {
		t.Error("vertexID collides across the namespace/id boundary")
	}
	ids := map[string]bool{}
	for _, k := range [][4]string{{"n", "a", "b", "l"}, {"n", "b", "a", "l"}, {"n", "a", "b", "m"}, {"m", "a", "b", "l"}, {"n", "a;", "b", "l"}, {"n", "a", ";b", "l"}} {
		ids[edgeID(k[0], k[1], k[2], k[3])] = true
	}
	if len(ids) != 6 {
		t.Errorf("edgeID collides: %d distinct IDs for 6 keys", len(ids))
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fail        fakeError
		times       int // 0: every request
		unavailable bool
		ok          bool // the retries succeed
		attempts    int
	}{
		{"ConcurrentModificationIsRetriedThenUnavailable", fakeError{500, "ConcurrentModificationException", "conflict on n1"}, 0, true, false, 3},
		{"ConcurrentModificationOnceIsRetriedAway", fakeError{500, "ConcurrentModificationException", "conflict"}, 1, false, true, 2},
		{"ThrottlingIsUnavailable", fakeError{429, "ThrottlingException", "slow down"}, 0, true, false, 3},
		{"ReadOnlyReplicaIsUnavailable", fakeError{400, "ReadOnlyViolationException", "read-only"}, 0, true, false, 3},
		{"InternalErrorWithoutCodeIsUnavailable", fakeError{503, "", ""}, 0, true, false, 3},
		{"MalformedQueryIsDefinite", fakeError{400, "MalformedQueryException", "bad query near 'secret-id'"}, 0, false, false, 1},
		{"AccessDeniedIsDefinite", fakeError{403, "AccessDeniedException", "denied"}, 0, false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNeptune(t)
			s := f.store(t, Options{})
			f.failNext, f.failTimes = &tc.fail, tc.times
			err := s.PutNode(context.Background(), "ns", graph.Node{ID: "a"})
			if attempts := len(f.requests()); attempts != tc.attempts {
				t.Errorf("%d requests, want %d", attempts, tc.attempts)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("PutNode: %v, want success after the retry", err)
				}
				return
			}
			if err == nil {
				t.Fatal("PutNode succeeded, want an error")
			}
			if got := errors.Is(err, graph.ErrUnavailable); got != tc.unavailable {
				t.Errorf("PutNode error %v: unavailable = %v, want %v", err, got, tc.unavailable)
			}
			var nerr *Error
			if !errors.As(err, &nerr) || nerr.Code != tc.fail.code || nerr.RequestID != "req-1" {
				t.Errorf("PutNode error %v does not carry Neptune's code %q and request ID", err, tc.fail.code)
			}
			if tc.fail.msg != "" && strings.Contains(err.Error(), tc.fail.msg) {
				t.Errorf("error text %q quotes Neptune's message, which may hold personal data", err)
			}
		})
	}
}

func TestTransportFailuresAreUnavailable(t *testing.T) {
	f := newFakeNeptune(t)
	s := f.store(t, Options{Retries: -1})
	f.srv.Close()
	if err := s.PutNode(context.Background(), "ns", graph.Node{ID: "a"}); !errors.Is(err, graph.ErrUnavailable) {
		t.Errorf("PutNode to a closed server: %v, want graph.ErrUnavailable", err)
	}
	slow := newFakeNeptune(t)
	slow.check = func(*http.Request, []byte) { time.Sleep(200 * time.Millisecond) }
	s = slow.store(t, Options{Retries: -1, RequestTimeout: 20 * time.Millisecond})
	if _, err := s.GetNode(context.Background(), "ns", "a"); !errors.Is(err, graph.ErrUnavailable) {
		t.Errorf("GetNode past the request timeout: %v, want graph.ErrUnavailable", err)
	}
}

func TestUnreadableResponseIsDefinite(t *testing.T) {
	srv := newFakeNeptune(t)
	srv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"results": [{"label": 7}]}`))
	})
	s := srv.store(t, Options{})
	_, err := s.GetNode(context.Background(), "ns", "a")
	if err == nil || errors.Is(err, graph.ErrUnavailable) {
		t.Errorf("GetNode with a response of the wrong shape: %v, want a definite error", err)
	}
}

func TestRequestsAreSignedWhenARegionIsSet(t *testing.T) {
	f := newFakeNeptune(t)
	creds := StaticCredentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "token/+="}
	s := f.store(t, Options{Region: "eu-west-1", Credentials: creds})
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	s.signer.now = func() time.Time { return at }
	var mu sync.Mutex
	var problems []string
	f.check = func(r *http.Request, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		auth := r.Header.Get("Authorization")
		wantPrefix := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/eu-west-1/neptune-db/aws4_request, " +
			"SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature="
		if !strings.HasPrefix(auth, wantPrefix) {
			problems = append(problems, "Authorization = "+auth)
		}
		if r.Header.Get("X-Amz-Date") != "20240506T070809Z" || r.Header.Get("X-Amz-Security-Token") != "token/+=" {
			problems = append(problems, "X-Amz-Date or X-Amz-Security-Token missing")
		}
		// Re-sign what arrived: the signature must cover the bytes and
		// headers the server got, not what the client had before sending.
		again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
		for _, h := range []string{"Accept", "Content-Type"} {
			again.Header.Set(h, r.Header.Get(h))
		}
		if err := s.signer.sign(context.Background(), again, body); err != nil || again.Header.Get("Authorization") != auth {
			problems = append(problems, "signature does not match the request as received")
		}
	}
	if err := s.PutNode(context.Background(), "ns", graph.Node{ID: "a", Props: json.RawMessage(`{"x":"é &="}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetNode(context.Background(), "ns", "a"); err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}

	unsigned := f.store(t, Options{})
	f.check = func(r *http.Request, _ []byte) {
		if r.Header.Get("Authorization") != "" {
			t.Error("a store without region signed its request")
		}
	}
	if _, err := unsigned.GetNode(context.Background(), "ns", "a"); err != nil {
		t.Fatal(err)
	}
}

func TestMissingCredentialsFailClearly(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	f := newFakeNeptune(t)
	s := f.store(t, Options{Region: "us-east-1", Retries: -1})
	err := s.PutNode(context.Background(), "ns", graph.Node{ID: "a"})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("PutNode without credentials: %v, want an error naming AWS_ACCESS_KEY_ID", err)
	}
	if len(f.requests()) != 0 {
		t.Error("an unsigned request was sent to a cluster that wants signing")
	}
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn      string
		endpoint string
		opts     Options
		wantErr  bool
	}{
		{dsn: "https://db.cluster-x.us-east-1.neptune.amazonaws.com:8182", endpoint: "https://db.cluster-x.us-east-1.neptune.amazonaws.com:8182"},
		{dsn: "https://db:8182/?region=us-east-1&timeout=5s&retries=0&load_chunk=100", endpoint: "https://db:8182",
			opts: Options{Region: "us-east-1", RequestTimeout: 5 * time.Second, Retries: -1, LoadChunk: 100}},
		{dsn: "https://db:8182?regoin=us-east-1", wantErr: true},
		{dsn: "https://db:8182?timeout=5", wantErr: true},
		{dsn: "db:8182", wantErr: true},
		{dsn: "ftp://db:8182", wantErr: true},
	} {
		u, opts, err := ParseDSN(tc.dsn)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseDSN(%q) = %v, %+v; want an error", tc.dsn, u, opts)
			}
			continue
		}
		if err != nil || u.String() != tc.endpoint || !reflect.DeepEqual(opts, tc.opts) {
			t.Errorf("ParseDSN(%q) = %v, %+v, %v; want %s, %+v", tc.dsn, u, opts, err, tc.endpoint, tc.opts)
		}
	}
	st, err := graph.Open(context.Background(), "neptune", "https://db:8182/base/")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(*Store).url; got != "https://db:8182/base/openCypher" {
		t.Errorf("endpoint URL = %s, want https://db:8182/base/openCypher", got)
	}
}

func TestDefaultClientSpeaksHTTP1Only(t *testing.T) {
	s := Open(&url.URL{Scheme: "https", Host: "db:8182"}, Options{})
	tr, ok := s.opts.HTTPClient.Transport.(*http.Transport)
	if !ok || tr.Protocols == nil || tr.Protocols.HTTP2() || !tr.Protocols.HTTP1() {
		t.Errorf("default transport protocols = %v, want HTTP/1.1 only (Neptune has no HTTP/2)", tr.Protocols)
	}
}
