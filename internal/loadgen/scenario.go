package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Kind is one data API operation a scenario issues.
type Kind int

// The operations of the scenarios.
const (
	KVGet Kind = iota
	KVPut
	KVScan
	TSAppend
	TSQuery
	GraphTraverse
)

// Op is one operation, rendered as a data API request (for Prism and the
// floor) or run on a backend directly (the direct baseline).
type Op struct {
	Kind   Kind
	Key    string // KV key, TS series or graph start node
	Value  []byte // KV value, TS event data
	Method string
	Path   string // path and query below /v1/{abstraction}/{ns}
	Body   []byte
	// ContentType of Body.
	ContentType string
	// Limit is the page size of scans and queries.
	Limit int
}

// Scenario names and what they do.
const (
	ScenarioKVGet    = "kv-get"
	ScenarioKVPut    = "kv-put"
	ScenarioKVMixed  = "kv-mixed" // 90% get, 10% put
	ScenarioKVScan   = "kv-scan"
	ScenarioTSAppend = "ts-append"
	ScenarioTSQuery  = "ts-query"
	ScenarioTraverse = "graph-traverse"
)

// Scenarios lists every scenario name, in the order of the standard set.
var Scenarios = []string{ScenarioKVGet, ScenarioKVPut, ScenarioKVMixed, ScenarioKVScan, ScenarioTSAppend, ScenarioTSQuery, ScenarioTraverse}

// ScenarioConfig describes the data a scenario works on.
type ScenarioConfig struct {
	Name string
	// Keys is the number of KV keys; TS series and graph nodes are a
	// tenth of it (each series holds 20 events, each node 3 edges).
	Keys int
	// Dist is the key distribution: Uniform or Zipfian.
	Dist string
	// ValueSize is the size in bytes of KV values and TS event data.
	ValueSize int
	// PII makes values JSON objects with an email field, for namespaces
	// with a PII schema.
	PII bool
	// ScanLimit is the page size of kv-scan and ts-query (default 10).
	ScanLimit int
}

func (c *ScenarioConfig) defaults() {
	if c.Keys <= 0 {
		c.Keys = 10000
	}
	if c.Dist == "" {
		c.Dist = Uniform
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 100
	}
	if c.ScanLimit <= 0 {
		c.ScanLimit = 10
	}
}

// keyCount is the number of keys, series or nodes of the scenario.
func (c *ScenarioConfig) keyCount() int {
	if Abstraction(c.Name) == "kv" {
		return c.Keys
	}
	return max(c.Keys/10, 1)
}

// Abstraction is the data API abstraction a scenario uses: kv, ts or graph.
func Abstraction(scenario string) string {
	switch {
	case strings.HasPrefix(scenario, "ts-"):
		return "ts"
	case strings.HasPrefix(scenario, "graph-"):
		return "graph"
	}
	return "kv"
}

// validScenario reports an unknown scenario name.
func validScenario(name string) error {
	for _, s := range Scenarios {
		if s == name {
			return nil
		}
	}
	return fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(Scenarios, ", "))
}

// Generator makes the operations of one worker. It is not safe for
// concurrent use: each worker has its own.
type Generator struct {
	cfg   ScenarioConfig
	keys  *keyPicker
	rng   *rand.Rand
	value []byte
}

// NewGenerator makes a generator for one worker.
func NewGenerator(cfg ScenarioConfig, seed uint64) (*Generator, error) {
	cfg.defaults()
	if err := validScenario(cfg.Name); err != nil {
		return nil, err
	}
	kp, err := newKeyPicker(cfg.Dist, cfg.keyCount(), seed)
	if err != nil {
		return nil, err
	}
	return &Generator{cfg: cfg, keys: kp, rng: rand.New(rand.NewPCG(seed, 7)), value: makeValue(cfg.ValueSize, cfg.PII, seed)}, nil
}

// makeValue is a value of about size bytes: a JSON object (with an email
// field under PII, which the schema classifies) so JSON and PII paths are
// exercised alike.
func makeValue(size int, withPII bool, seed uint64) []byte {
	var b bytes.Buffer
	b.WriteString(`{`)
	if withPII {
		fmt.Fprintf(&b, `"email":"user%d@example.com",`, seed)
	}
	b.WriteString(`"pad":"`)
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// Next returns the next operation.
func (g *Generator) Next() Op {
	switch g.cfg.Name {
	case ScenarioKVGet:
		return g.kvGet()
	case ScenarioKVPut:
		return g.kvPut()
	case ScenarioKVMixed:
		if g.rng.IntN(10) == 0 {
			return g.kvPut()
		}
		return g.kvGet()
	case ScenarioKVScan:
		k := keyName(g.keys.next())
		return Op{Kind: KVScan, Key: k, Limit: g.cfg.ScanLimit, Method: http.MethodGet, Path: fmt.Sprintf("?start=%s&limit=%d", k, g.cfg.ScanLimit)}
	case ScenarioTSAppend:
		s := seriesName(g.keys.next())
		return Op{Kind: TSAppend, Key: s, Value: g.value, Method: http.MethodPost, Path: "/events",
			Body: appendBody(s, time.Now(), g.value), ContentType: "application/json"}
	case ScenarioTSQuery:
		s := seriesName(g.keys.next())
		return Op{Kind: TSQuery, Key: s, Limit: g.cfg.ScanLimit, Method: http.MethodGet, Path: fmt.Sprintf("/events?series=%s&limit=%d", s, g.cfg.ScanLimit)}
	case ScenarioTraverse:
		n := nodeName(g.keys.next())
		body := fmt.Appendf(nil, `{"start":%q,"direction":"out","max_depth":2,"limit":50}`, n)
		return Op{Kind: GraphTraverse, Key: n, Method: http.MethodPost, Path: "/traverse", Body: body, ContentType: "application/json"}
	}
	return Op{}
}

func (g *Generator) kvGet() Op {
	k := keyName(g.keys.next())
	return Op{Kind: KVGet, Key: k, Method: http.MethodGet, Path: "/" + k}
}

func (g *Generator) kvPut() Op {
	k := keyName(g.keys.next())
	return Op{Kind: KVPut, Key: k, Value: g.value, Method: http.MethodPut, Path: "/" + k, Body: g.value, ContentType: "application/json"}
}

func seriesName(i int) string { return fmt.Sprintf("s%05d", i) }
func nodeName(i int) string   { return fmt.Sprintf("n%06d", i) }

type benchEvent struct {
	Series string          `json:"series"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data"`
}

func appendBody(series string, t time.Time, data []byte) []byte {
	return appendBodyN(series, []time.Time{t}, data)
}

func appendBodyN(series string, times []time.Time, data []byte) []byte {
	evs := make([]benchEvent, len(times))
	for i, t := range times {
		evs[i] = benchEvent{Series: series, Time: t, Data: data}
	}
	b, _ := json.Marshal(map[string]any{"events": evs})
	return b
}

// seedOps are the writes that make a scenario's reads find data: every key
// (KV), a few events per series (TS), nodes and then edges (graph). They go
// through the target under test, so PII values are stored encrypted.
func seedOps(cfg ScenarioConfig) [][]Op {
	cfg.defaults()
	value := makeValue(cfg.ValueSize, cfg.PII, 1)
	switch Abstraction(cfg.Name) {
	case "kv":
		if cfg.Name == ScenarioKVPut {
			return nil
		}
		// Batches of 100 puts: seeding is not what is measured.
		const perBatch = 100
		var ops []Op
		for first := 0; first < cfg.Keys; first += perBatch {
			var b bytes.Buffer
			b.WriteString(`{"ops":[`)
			for i := first; i < min(first+perBatch, cfg.Keys); i++ {
				if i > first {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"op":"put","key":%q,"value":%s}`, keyName(i), value)
			}
			b.WriteString(`]}`)
			ops = append(ops, Op{Method: http.MethodPost, Path: "/_batch", Body: b.Bytes(), ContentType: "application/json"})
		}
		return [][]Op{ops}
	case "ts":
		if cfg.Name == ScenarioTSAppend {
			return nil
		}
		const perSeries = 20
		base := time.Now().Add(-time.Hour)
		times := make([]time.Time, perSeries)
		for i := range times {
			times[i] = base.Add(time.Duration(i) * time.Second)
		}
		ops := make([]Op, cfg.keyCount())
		for i := range ops {
			s := seriesName(i)
			ops[i] = Op{Kind: TSAppend, Key: s, Method: http.MethodPost, Path: "/events", Body: appendBodyN(s, times, value), ContentType: "application/json"}
		}
		return [][]Op{ops}
	case "graph":
		n := cfg.keyCount()
		nodes := make([]Op, n)
		props := value
		for i := range nodes {
			n := nodeName(i)
			body := fmt.Appendf(nil, `{"label":"bench","props":%s}`, props)
			nodes[i] = Op{Method: http.MethodPut, Path: "/nodes/" + n, Body: body, ContentType: "application/json"}
		}
		// Three out edges per node to pseudo-random nodes: a depth-2
		// traversal reaches about a dozen nodes.
		rng := rand.New(rand.NewPCG(1, 2))
		var edges []Op
		for i := range n {
			for range 3 {
				body := fmt.Appendf(nil, `{"from":%q,"to":%q,"label":"link"}`, nodeName(i), nodeName(rng.IntN(n)))
				edges = append(edges, Op{Method: http.MethodPut, Path: "/edges", Body: body, ContentType: "application/json"})
			}
		}
		return [][]Op{nodes, edges}
	}
	return nil
}
