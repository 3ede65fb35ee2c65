package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// load is continuous client traffic on one KV namespace through the dev
// edge: writers own disjoint keys (so the last acknowledged write of each
// key is known) and mix puts, CAS updates and deletes; readers read any key.
type load struct {
	base   string // http://edge/v1/kv/NS
	client *http.Client

	mu   sync.Mutex
	last map[string]string // key → last acknowledged value; "" after a delete

	requests, failures atomic.Int64
	failMu             sync.Mutex
	failSample         []string

	stop chan struct{}
	wg   sync.WaitGroup
}

func startLoad(base string, writers, readers int, keysPerWriter int, readable []string) *load {
	l := &load{
		base:   base,
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: writers + readers}},
		last:   map[string]string{},
		stop:   make(chan struct{}),
	}
	for w := range writers {
		l.wg.Add(1)
		go l.writer(w, keysPerWriter)
	}
	for range readers {
		l.wg.Add(1)
		go l.reader(writers, keysPerWriter, readable)
	}
	return l
}

// finish stops the traffic and waits for requests in flight.
func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// do sends one request; any answer outside ok, or no answer, is a failed
// client request.
func (l *load) do(method, key string, body []byte, header http.Header, ok ...int) (*http.Response, []byte, bool) {
	l.requests.Add(1)
	req, _ := http.NewRequest(method, l.base+"/"+key, bytes.NewReader(body))
	if body == nil {
		req.Body = nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.failed(fmt.Sprintf("%s %s: %v", method, key, err))
		return nil, nil, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, b, true
		}
	}
	l.failed(fmt.Sprintf("%s %s: %d %s", method, key, resp.StatusCode, b))
	return resp, b, false
}

func (l *load) failed(what string) {
	l.failures.Add(1)
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if len(l.failSample) < 10 {
		l.failSample = append(l.failSample, what)
	}
}

func (l *load) writer(w, keys int) {
	defer l.wg.Done()
	for seq := 0; !l.stopped(); seq++ {
		key := fmt.Sprintf("w%d-%03d", w, rand.IntN(keys))
		value := fmt.Sprintf(`{"writer":%d,"seq":%d}`, w, seq)
		switch r := rand.IntN(10); {
		case r < 6: // put
			if _, _, ok := l.do("PUT", key, []byte(value), http.Header{"Content-Type": {"application/json"}}, 200); ok {
				l.acked(key, value)
			}
		case r < 9: // CAS: read, then write with If-Match
			resp, _, ok := l.do("GET", key, nil, nil, 200, 404)
			if !ok {
				continue
			}
			h := http.Header{"Content-Type": {"application/json"}}
			if resp.StatusCode == 200 {
				h.Set("If-Match", resp.Header.Get("Etag"))
			} else {
				h.Set("If-None-Match", "*")
			}
			if _, _, ok := l.do("PUT", key, []byte(value), h, 200); ok {
				l.acked(key, value)
			}
		default:
			if _, _, ok := l.do("DELETE", key, nil, nil, 204); ok {
				l.acked(key, "")
			}
		}
	}
}

func (l *load) acked(key, value string) {
	l.mu.Lock()
	l.last[key] = value
	l.mu.Unlock()
}

func (l *load) reader(writers, keys int, readable []string) {
	defer l.wg.Done()
	for !l.stopped() {
		var key string
		if len(readable) > 0 && rand.IntN(2) == 0 {
			key = readable[rand.IntN(len(readable))]
		} else {
			key = fmt.Sprintf("w%d-%03d", rand.IntN(writers), rand.IntN(keys))
		}
		l.do("GET", key, nil, nil, 200, 404)
	}
}

// checkHolds fails unless store holds every acknowledged write's latest
// value (and no deleted key).
func (l *load) checkHolds(t *testing.T, store kv.Store, ns, where string) {
	t.Helper()
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	bad := 0
	for key, want := range l.last {
		it, err := store.Get(ctx, ns, key)
		switch {
		case want == "" && errors.Is(err, kv.ErrNotFound):
		case want != "" && err == nil && string(it.Value) == want:
		default:
			if bad++; bad <= 5 {
				t.Errorf("%s: key %s holds %q (%v), want %q", where, key, it.Value, err, want)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d keys differ from the last acknowledged write", where, bad, len(l.last))
	}
	t.Logf("%s holds the last acknowledged write of all %d keys", where, len(l.last))
}

// migrationStatus is the part of the admin API's migration status the test reads.
type migrationStatus struct {
	Migration struct {
		Phase         string `json:"phase"`
		ID            string `json:"id"`
		HandoverFloor string `json:"handover_floor"` // int64 in proto JSON
	} `json:"migration"`
	Stats struct {
		ShadowWrites        uint64             `json:"shadow_writes"`
		ShadowWriteFailures uint64             `json:"shadow_write_failures"`
		ReadsCompared       uint64             `json:"reads_compared"`
		Mismatches          uint64             `json:"mismatches"`
		MismatchRate        float64            `json:"mismatch_rate"`
		MismatchKeys        []string           `json:"mismatch_keys"`
		Nodes               map[string]nodeRep `json:"nodes"`
	} `json:"stats"`
	Backfill struct {
		State     string `json:"state"`
		KeysDone  uint64 `json:"keys_done"`
		KeysTotal uint64 `json:"keys_total"`
		Copied    uint64 `json:"copied"`
		Skipped   uint64 `json:"skipped_newer"`
	} `json:"backfill"`
	Gate struct {
		CanPromote bool   `json:"can_promote"`
		Reason     string `json:"reason"`
	} `json:"gate"`
}

type nodeRep struct {
	Phase         string `json:"phase"`
	ReadsCompared uint64 `json:"reads_compared"`
}

func (p *devProcess) migration(t *testing.T, ns string) migrationStatus {
	t.Helper()
	var s migrationStatus
	if code := p.adminJSON(t, "GET", "/v1/admin/namespaces/"+ns+"/migration", nil, &s); code != 200 {
		t.Fatalf("GET migration of %s: %d", ns, code)
	}
	return s
}

// waitFor polls the migration status until cond holds.
func (p *devProcess) waitFor(t *testing.T, ns, what string, cond func(migrationStatus) bool) migrationStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := p.migration(t, ns)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: status %+v", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodesIn reports whether every extproc node reports phase.
func nodesIn(phase string) func(migrationStatus) bool {
	return func(s migrationStatus) bool {
		if len(s.Stats.Nodes) == 0 {
			return false
		}
		for _, n := range s.Stats.Nodes {
			if n.Phase != phase {
				return false
			}
		}
		return true
	}
}

// step runs a `prism migrate` command that must succeed, then waits until
// the extproc acts on the phase it leads to.
func (p *devProcess) step(t *testing.T, ns, phase string, args ...string) {
	t.Helper()
	out, err := p.prism(context.Background(), append([]string{"migrate"}, args...)...)
	if err != nil {
		t.Fatalf("prism migrate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if phase != "" {
		p.waitFor(t, ns, "every node in "+phase, nodesIn(phase))
	}
}

// TestMigrationUnderLoad moves a live namespace from SQLite to Postgres
// through every phase while 8 writers and 8 readers keep going, with the
// real binary: the backfill is killed midway and resumes, a divergence
// injected into the target blocks promotion until the repair pass clears
// it, and after promotion Postgres holds every acknowledged write.
func TestMigrationUnderLoad(t *testing.T) {
	p := startPrismDev(t)
	pg := postgresBackend(t, "pg", "")
	p.putBackend(t, pg)
	p.putNamespace(t, "orders", "keyvalue", "local")
	base := "http://" + p.edge + "/v1/kv/orders"
	// Keys no writer touches: what the backfill must carry over, and where
	// the divergence goes.
	const preloaded = 3000
	readable := make([]string, preloaded)
	for i := 0; i < preloaded; i += 500 {
		var ops []string
		for j := i; j < i+500; j++ {
			readable[j] = fmt.Sprintf("pre-%05d", j)
			ops = append(ops, fmt.Sprintf(`{"op":"put","key":%q,"value":{"pre":%d}}`, readable[j], j))
		}
		resp, err := http.Post(base+"/_batch", "application/json", strings.NewReader(`{"ops":[`+strings.Join(ops, ",")+`]}`))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("preloading: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	l := startLoad(base, 8, 8, 40, readable)
	defer func() {
		if !l.stopped() {
			l.finish()
		}
	}()
	time.Sleep(500 * time.Millisecond)

	p.step(t, "orders", "SHADOW_WRITE", "start", "orders", "--to", "pg", "--read-percent", "100", "--min-sample", "300")
	p.step(t, "orders", "BACKFILL", "advance", "orders")

	// The backfill, killed midway (SIGKILL: no chance to save anything
	// more), then run again: it resumes from its checkpoint.
	p.killAndResumeBackfill(t, "orders", "keys")

	// A divergence written straight into Postgres (on keys no writer
	// touches, so no copy repairs it), then shadow reads: every compared
	// read of the window can meet it, so the mismatch rate stays well over
	// the 0.1% gate (about 100/3000 of the half of reads on these keys).
	target := openReplica(t, pg)
	diverged := readable[:100]
	for _, key := range diverged {
		if _, err := target.Put(context.Background(), "orders", kv.PutOp{Key: key, Value: []byte(`{"diverged":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	p.step(t, "orders", "SHADOW_READ", "advance", "orders")
	s := p.waitFor(t, "orders", "mismatches seen", func(s migrationStatus) bool {
		return s.Stats.Mismatches >= 5 && s.Stats.ReadsCompared >= 300
	})
	if s.Gate.CanPromote {
		t.Fatalf("gate open with %d mismatches in %d reads", s.Stats.Mismatches, s.Stats.ReadsCompared)
	}
	for _, k := range s.Stats.MismatchKeys {
		if !strings.HasPrefix(k, "pre-000") { // diverged: pre-00000 … pre-00099
			t.Errorf("mismatch reported on %s, which was not diverged (diverged: %v)", k, diverged)
		}
	}
	if out, err := p.prism(context.Background(), "migrate", "promote", "orders"); err == nil {
		t.Fatalf("promote with %d mismatches was accepted:\n%s", s.Stats.Mismatches, out)
	}
	t.Logf("promote refused at mismatch rate %.4f (%d of %d reads)", s.Stats.MismatchRate, s.Stats.Mismatches, s.Stats.ReadsCompared)

	// Repair, then a clean comparison window opens the gate.
	if out, err := p.prism(context.Background(), "migrate", "backfill", "orders", "--repair"); err != nil {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	s = p.waitFor(t, "orders", "a clean comparison window", func(s migrationStatus) bool { return s.Gate.CanPromote })
	t.Logf("after repair: %d reads compared, %d mismatches (rate %.5f)", s.Stats.ReadsCompared, s.Stats.Mismatches, s.Stats.MismatchRate)
	measuredRate := s.Stats.MismatchRate

	p.step(t, "orders", "PROMOTED", "promote", "orders")
	time.Sleep(500 * time.Millisecond) // writes served by Postgres, copied to SQLite
	l.finish()
	t.Logf("load: %d requests, %d failed", l.requests.Load(), l.failures.Load())
	if f := l.failures.Load(); f > 0 {
		t.Fatalf("%d client requests failed during the migration, e.g. %v", f, l.failSample)
	}
	l.checkHolds(t, target, "orders", "postgres after promote")
	for _, key := range diverged {
		it, err := target.Get(context.Background(), "orders", key)
		if err != nil || strings.Contains(string(it.Value), "diverged") {
			t.Fatalf("repaired key %s holds %q (%v)", key, it.Value, err)
		}
	}

	out, err := p.prism(context.Background(), "migrate", "advance", "orders")
	if err != nil {
		t.Fatalf("decommission: %v\n%s", err, out)
	}
	if b := p.namespaceBackend(t, "orders"); b != "pg" {
		t.Fatalf("namespace after decommission is on %q, want pg", b)
	}
	t.Logf("SQLite → Postgres: %d requests, 0 failed, mismatch rate at promote %.5f", l.requests.Load(), measuredRate)
}

// killAndResumeBackfill runs the backfill of ns, kills it with SIGKILL
// once it has copied 800 items (keys or events: unit), and runs it again:
// the second run must resume from the checkpoint and finish without
// redoing much of what the first did.
func (p *devProcess) killAndResumeBackfill(t *testing.T, ns, unit string) {
	t.Helper()
	killed := exec.Command(prismBin, "migrate", "backfill", ns, "--rate", "1000", "--workers", "1")
	killed.Dir, killed.Env = p.dir, append(killed.Environ(), "PRISM_ADMIN=http://"+p.admin)
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, ns, "backfill progress", func(s migrationStatus) bool { return s.Backfill.KeysDone >= 800 })
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	first := p.migration(t, ns)
	if first.Backfill.KeysDone == 0 || first.Backfill.KeysDone >= first.Backfill.KeysTotal {
		t.Fatalf("backfill killed at %d of %d %s: want midway", first.Backfill.KeysDone, first.Backfill.KeysTotal, unit)
	}
	out, err := p.prism(context.Background(), "migrate", "backfill", ns)
	if err != nil {
		t.Fatalf("backfill after the kill: %v\n%s", err, out)
	}
	second := p.migration(t, ns)
	// Counts are cumulative over runs: what the second run wrote or
	// skipped is the difference.
	redone := second.Backfill.Copied + second.Backfill.Skipped - first.Backfill.Copied - first.Backfill.Skipped
	if second.Backfill.State != "done" || !strings.Contains(out, "resuming after") || redone+first.Backfill.KeysDone > second.Backfill.KeysTotal+500 {
		t.Fatalf("backfill after a kill at %d %s: %+v, the second run handled %d; want done, resumed from the checkpoint\n%s",
			first.Backfill.KeysDone, unit, second.Backfill, redone, out)
	}
	t.Logf("backfill: killed after %d of %d %s; the second run resumed and handled %d", first.Backfill.KeysDone, first.Backfill.KeysTotal, unit, redone)
}

// putBackend declares a backend through the admin API.
func (p *devProcess) putBackend(t *testing.T, b *configv1.Backend) {
	t.Helper()
	if code := p.adminJSON(t, "PUT", "/v1/admin/backends/"+b.GetName(), map[string]any{"postgres": map[string]any{"dsn": b.GetPostgres().GetDsn()}}, nil); code != 200 {
		t.Fatalf("PUT backend %s: %d", b.GetName(), code)
	}
}

// putNamespace creates a namespace and waits until the edge serves it.
func (p *devProcess) putNamespace(t *testing.T, ns, abstraction, backend string) {
	t.Helper()
	if code := p.adminJSON(t, "PUT", "/v1/admin/namespaces/"+ns, map[string]any{"abstraction": abstraction, "backend": backend}, nil); code != 200 {
		t.Fatalf("PUT namespace %s: %d", ns, code)
	}
	p.waitServed(t, ns)
}

// namespaceBackend is the backend the control plane has ns on.
func (p *devProcess) namespaceBackend(t *testing.T, ns string) string {
	t.Helper()
	var got struct {
		Namespace struct {
			Backend string `json:"backend"`
		} `json:"namespace"`
	}
	p.adminJSON(t, "GET", "/v1/admin/namespaces/"+ns, nil, &got)
	return got.Namespace.Backend
}

// waitServed waits until the dev edge serves a namespace just created: the
// admin PUT returns before the change reaches extproc over ADS.
func (p *devProcess) waitServed(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.edge + "/v1/kv/" + ns + "/served-probe")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound && !strings.Contains(string(b), "unknown namespace") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s not served within 30s", ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitInSync waits until every connected extproc node has ACKed what the
// control plane last sent it (which may still lag a change just made).
func (p *devProcess) waitInSync(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got struct {
			Nodes []struct {
				ID        string `json:"id"`
				Class     string `json:"class"`
				Connected bool   `json:"connected"`
				Types     []struct {
					InSync bool `json:"in_sync"`
				} `json:"types"`
			} `json:"nodes"`
		}
		p.adminJSON(t, "GET", "/v1/admin/nodes", nil, &got)
		synced, extprocs := true, 0
		for _, n := range got.Nodes {
			if n.Class != "extproc" || !n.Connected {
				continue
			}
			extprocs++
			for _, ty := range n.Types {
				synced = synced && ty.InSync
			}
		}
		if synced && extprocs > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("extproc nodes not in sync after 30s: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMigrationAbortKeepsEverything moves a namespace between two Postgres
// schemas — the machinery does not care which backends — and aborts it at
// each phase before decommission, under load: the source serves again and
// holds every acknowledged write. From PROMOTED that is the copies the
// source kept while the target answered.
func TestMigrationAbortKeepsEverything(t *testing.T) {
	for _, phase := range []string{"SHADOW_WRITE", "BACKFILL", "SHADOW_READ", "PROMOTED"} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			testAbortAt(t, phase)
		})
	}
}

// runUntil starts a migration of ns to backend `to` and steps it up to
// phase (SHADOW_WRITE, BACKFILL, SHADOW_READ or PROMOTED): the backfill
// runs before SHADOW_READ, and promote waits for the gate to open.
func (p *devProcess) runUntil(t *testing.T, ns, to, phase string) {
	t.Helper()
	steps := []struct {
		phase string
		run   func()
	}{
		{"SHADOW_WRITE", func() {
			p.step(t, ns, "SHADOW_WRITE", "start", ns, "--to", to, "--read-percent", "100", "--min-sample", "50")
		}},
		{"BACKFILL", func() { p.step(t, ns, "BACKFILL", "advance", ns) }},
		{"SHADOW_READ", func() {
			if out, err := p.prism(context.Background(), "migrate", "backfill", ns); err != nil {
				t.Fatalf("backfill: %v\n%s", err, out)
			}
			p.step(t, ns, "SHADOW_READ", "advance", ns)
		}},
		{"PROMOTED", func() {
			p.waitFor(t, ns, "the promotion gate", func(s migrationStatus) bool { return s.Gate.CanPromote })
			p.step(t, ns, "PROMOTED", "promote", ns)
		}},
	}
	for _, s := range steps {
		s.run()
		if s.phase == phase {
			return
		}
	}
	t.Fatalf("no phase %s to run a migration up to", phase)
}

func testAbortAt(t *testing.T, phase string) {
	p := startPrismDev(t)
	a, b := postgresBackend(t, "pga", ""), postgresBackend(t, "pgb", "")
	p.putBackend(t, a)
	p.putBackend(t, b)
	p.putNamespace(t, "carts", "keyvalue", "pga")
	l := startLoad("http://"+p.edge+"/v1/kv/carts", 4, 4, 40, nil)
	defer func() {
		if !l.stopped() {
			l.finish()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	p.runUntil(t, "carts", "pgb", phase)
	time.Sleep(300 * time.Millisecond) // traffic in the phase
	if out, err := p.prism(context.Background(), "migrate", "abort", "carts"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	p.waitInSync(t)
	time.Sleep(300 * time.Millisecond) // traffic on pga alone again
	l.finish()
	if f := l.failures.Load(); f > 0 {
		t.Fatalf("%d client requests failed, e.g. %v", f, l.failSample)
	}
	l.checkHolds(t, openReplica(t, a), "carts", "the source after an abort in "+phase)
	if s := p.migration(t, "carts"); s.Migration.Phase != "ABORTED" {
		t.Fatalf("phase after abort: %s", s.Migration.Phase)
	}
	if b := p.namespaceBackend(t, "carts"); b != "pga" {
		t.Fatalf("namespace after abort is on %q, want pga", b)
	}
	t.Logf("Postgres → Postgres, aborted in %s: %d requests, 0 failed, nothing lost", phase, l.requests.Load())
}
