package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-gw/prism/backends/ts"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// tsLoad is continuous client traffic on one TimeSeries namespace through
// the dev edge: appenders send batches of events (half with an id, half
// without, each with a unique token in its data) to the tailed series and
// to their own; a tailer follows each tailed series and must see every
// acknowledged event exactly once; queriers page through static series and
// must find each whole, whichever backend answers each page.
type tsLoad struct {
	base   string // http://edge/v1/ts/NS
	client *http.Client

	mu     sync.Mutex
	acked  map[string]string // token → series
	seen   map[string]int    // token → times a tailer returned it
	passes int               // complete query passes over a static series
	pages  []tailPage        // every tail page with events, to explain a miss

	requests, failures atomic.Int64
	failMu             sync.Mutex
	failSample         []string

	stop, tailStop chan struct{}
	wg, tailWG     sync.WaitGroup
}

const (
	tailedSeries = 4
	staticSeries = 10
	staticEvents = 300 // per static series
)

func startTSLoad(t *testing.T, base string, appenders, queriers int) *tsLoad {
	l := &tsLoad{
		base:     base,
		client:   &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: appenders + queriers + tailedSeries}},
		acked:    map[string]string{},
		seen:     map[string]int{},
		stop:     make(chan struct{}),
		tailStop: make(chan struct{}),
	}
	// Each tailer starts at the current end of its series before any
	// appender runs, so every event appended later is one it must see.
	for s := range tailedSeries {
		series := fmt.Sprintf("live-%d", s)
		var page eventsPage
		if !l.get("/tail?"+url.Values{"series": {series}, "wait": {"0s"}}.Encode(), &page) || page.NextCursor == "" {
			t.Fatalf("starting the tail of %s: %v", series, l.failSample)
		}
		l.tailWG.Add(1)
		go l.tailer(series, page.NextCursor)
	}
	for w := range appenders {
		l.wg.Add(1)
		go l.appender(w)
	}
	for range queriers {
		l.wg.Add(1)
		go l.querier()
	}
	return l
}

func (l *tsLoad) failed(what string) {
	l.failures.Add(1)
	l.failMu.Lock()
	if len(l.failSample) < 10 {
		l.failSample = append(l.failSample, what)
	}
	l.failMu.Unlock()
}

func (l *tsLoad) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// get calls the data API and decodes a 200 answer into out.
func (l *tsLoad) get(path string, out any) bool {
	l.requests.Add(1)
	resp, err := l.client.Get(l.base + path)
	if err != nil {
		l.failed(fmt.Sprintf("GET %s: %v", path, err))
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		l.failed(fmt.Sprintf("GET %s: %d %s", path, resp.StatusCode, b))
		return false
	}
	if err := json.Unmarshal(b, out); err != nil {
		l.failed(fmt.Sprintf("GET %s: %v", path, err))
		return false
	}
	return true
}

func (l *tsLoad) appender(w int) {
	defer l.wg.Done()
	for n := 0; !l.stopping(); n++ {
		var events []map[string]any
		tokens := map[string]string{}
		for i := range 1 + rand.IntN(4) {
			series := fmt.Sprintf("live-%d", rand.IntN(tailedSeries))
			if i%2 == 1 {
				series = fmt.Sprintf("own-%d", w)
			}
			tok := fmt.Sprintf("w%d-%d-%d", w, n, i)
			e := map[string]any{"series": series, "data": map[string]any{"tok": tok, "w": w}}
			if rand.IntN(2) == 0 {
				e["id"] = tok
			}
			// Times around now, not in append order: positions, not
			// times, order a tail.
			e["time"] = time.Now().Add(-time.Duration(rand.IntN(2000)) * time.Millisecond).UTC().Format(time.RFC3339Nano)
			events = append(events, e)
			tokens[tok] = series
		}
		body, _ := json.Marshal(map[string]any{"events": events})
		l.requests.Add(1)
		resp, err := l.client.Post(l.base+"/events", "application/json", bytes.NewReader(body))
		if err != nil {
			l.failed(fmt.Sprintf("append: %v", err))
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r struct{ Appended, Duplicates int }
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Appended != len(events) {
			l.failed(fmt.Sprintf("append of %d events: %d %s", len(events), resp.StatusCode, b))
			continue
		}
		l.mu.Lock()
		for tok, s := range tokens {
			l.acked[tok] = s
		}
		l.mu.Unlock()
	}
}

type tokenData struct {
	Tok string `json:"tok"`
}

// tailPage is one tail answer: the cursor asked, the tokens returned and
// the cursor returned.
type tailPage struct {
	series, after, next string
	at                  time.Time
	tokens              []string
}

func (l *tsLoad) tailer(series, cursor string) {
	defer l.tailWG.Done()
	for {
		select {
		case <-l.tailStop:
			return
		default:
		}
		var page eventsPage
		if !l.get("/tail?"+url.Values{"series": {series}, "after": {cursor}, "wait": {"1s"}, "limit": {"200"}}.Encode(), &page) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		tp := tailPage{series: series, after: cursor, next: page.NextCursor, at: time.Now()}
		for _, e := range page.Events {
			var d tokenData
			json.Unmarshal(e.Data, &d)
			l.seen[d.Tok]++
			tp.tokens = append(tp.tokens, d.Tok)
		}
		if len(tp.tokens) > 0 || tp.after != tp.next {
			l.pages = append(l.pages, tp)
		}
		l.mu.Unlock()
		cursor = page.NextCursor
	}
}

// querier pages through a static series, 50 events a page, and checks the
// pass is whole: each event once, in time order.
func (l *tsLoad) querier() {
	defer l.wg.Done()
	for !l.stopping() {
		series := fmt.Sprintf("static-%d", rand.IntN(staticSeries))
		cursor, got, last := "", map[string]bool{}, time.Time{}
		for {
			var page eventsPage
			if !l.get("/events?"+url.Values{"series": {series}, "limit": {"50"}, "cursor": {cursor}}.Encode(), &page) {
				break
			}
			for _, e := range page.Events {
				var d tokenData
				json.Unmarshal(e.Data, &d)
				at, err := time.Parse(time.RFC3339Nano, e.Time)
				if got[d.Tok] || err != nil || at.Before(last) {
					l.failed(fmt.Sprintf("query of %s: %s repeated or out of order (%v)", series, d.Tok, err))
				}
				got[d.Tok], last = true, at
			}
			if cursor = page.NextCursor; cursor == "" {
				if len(got) != staticEvents {
					l.failed(fmt.Sprintf("query of %s: a pass found %d events, want %d", series, len(got), staticEvents))
				}
				l.mu.Lock()
				l.passes++
				l.mu.Unlock()
				break
			}
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // passes span phase changes
		}
	}
}

// finish stops appending and querying, waits until the tailers have seen
// every acknowledged event of their series (or 30 s), and stops them.
func (l *tsLoad) finish() {
	close(l.stop)
	l.wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && len(l.unseen()) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	close(l.tailStop)
	l.tailWG.Wait()
}

// unseen lists acknowledged events of tailed series no tailer returned.
func (l *tsLoad) unseen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for tok, s := range l.acked {
		if strings.HasPrefix(s, "live-") && l.seen[tok] == 0 {
			out = append(out, tok)
		}
	}
	return out
}

// check fails the test on failed requests, on tails that missed or
// repeated an event, and unless store holds every acknowledged event
// exactly once.
func (l *tsLoad) check(t *testing.T, store ts.Replica, ns, where string) {
	t.Helper()
	if err := store.EnsureNamespace(context.Background(), ns, ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if f := l.failures.Load(); f > 0 {
		t.Fatalf("%d client requests failed, e.g. %v", f, l.failSample)
	}
	stored := map[string]int{}
	seqOf := map[string]int64{}
	for after := ""; ; {
		events, next, err := store.Export(context.Background(), ns, ts.ExportArgs{After: after, Limit: ts.MaxLimit})
		if err != nil {
			t.Fatalf("export of %s: %v", where, err)
		}
		for _, e := range events {
			var d tokenData
			json.Unmarshal(e.Data, &d)
			stored[d.Tok]++
			seqOf[d.Tok] = e.Seq
		}
		if after = next; after == "" {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tailed := 0
	for tok, s := range l.acked {
		if !strings.HasPrefix(s, "live-") {
			continue
		}
		tailed++
		if n := l.seen[tok]; n != 1 {
			t.Errorf("tails returned event %s of %s %d times, want once; it is at position %d in %s", tok, s, n, seqOf[tok], where)
			l.explain(t, store, ns, s, seqOf[tok])
		}
	}
	for tok := range l.seen {
		if _, ok := l.acked[tok]; !ok {
			t.Errorf("tails returned event %s that no append acknowledged", tok)
		}
	}
	missing, repeated := 0, 0
	for tok := range l.acked {
		switch stored[tok] {
		case 1:
		case 0:
			missing++
		default:
			repeated++
		}
	}
	if missing+repeated > 0 {
		t.Fatalf("%s: of %d acknowledged events, %d are missing and %d stored more than once", where, len(l.acked), missing, repeated)
	}
	t.Logf("%s holds all %d acknowledged events once; tails saw each of %d tailed events once; %d whole query passes", where, len(l.acked), tailed, l.passes)
}

// explain logs the tail pages of series around position seq: how a tail
// got past an event without returning it.
func (l *tsLoad) explain(t *testing.T, store ts.Replica, ns, series string, seq int64) {
	t.Helper()
	pos := func(c string) int64 {
		p, err := store.CursorSeq(ns, series, c)
		if err != nil {
			return -1
		}
		return p
	}
	for _, p := range l.pages {
		if p.series != series {
			continue
		}
		if a, n := pos(p.after), pos(p.next); a <= seq+5 && n >= seq-5 {
			t.Logf("  %s tail after %d returned %v, next %d", p.at.Format("15:04:05.000000"), a, p.tokens, n)
		}
	}
}

// openTSReplica opens a backend's TimeSeries store as the test's own view.
func openTSReplica(t *testing.T, b *configv1.Backend) ts.Replica {
	t.Helper()
	driver, dsn := "sqlite", b.GetSqlite().GetPath()
	if pg := b.GetPostgres(); pg != nil {
		driver, dsn = "postgres", pg.GetDsn()
	}
	st, err := ts.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, ok := st.(ts.Replica)
	if !ok {
		t.Fatalf("%s store does not implement ts.Replica", driver)
	}
	return r
}

// preloadStatic appends the static series the queriers read: events in the
// past, none with an id (the backfill must copy them exactly once anyway).
func preloadStatic(t *testing.T, base string) {
	t.Helper()
	t0 := time.Now().Add(-time.Hour)
	for s := range staticSeries {
		var events []map[string]any
		for i := range staticEvents {
			events = append(events, map[string]any{
				"series": fmt.Sprintf("static-%d", s),
				"time":   t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano),
				"data":   map[string]any{"tok": fmt.Sprintf("s%d-%d", s, i)},
			})
		}
		body, _ := json.Marshal(map[string]any{"events": events})
		resp, err := http.Post(base+"/events", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("preloading static-%d: %v %v", s, resp, err)
		}
		resp.Body.Close()
	}
}

// TestTimeSeriesMigrationUnderLoad moves a live TimeSeries namespace from
// SQLite to Postgres through every phase with the real binary, while 6
// appenders, 4 tailers and 2 queriers keep going: the backfill is killed
// midway and resumes, events deleted from the target show up as query
// mismatches that block promotion until the repair pass copies them again,
// tails and query passes run across the handover without missing or
// repeating an event, and Postgres ends with every acknowledged event once.
func TestTimeSeriesMigrationUnderLoad(t *testing.T) {
	p := startPrismDev(t)
	pg := postgresBackend(t, "pg", "")
	p.putBackend(t, pg)
	p.putNamespace(t, "metrics", "timeseries", "local")
	base := "http://" + p.edge + "/v1/ts/metrics"
	preloadStatic(t, base)

	l := startTSLoad(t, base, 6, 2)
	defer func() {
		if !l.stopping() {
			l.finish()
		}
	}()
	time.Sleep(500 * time.Millisecond)

	p.step(t, "metrics", "SHADOW_WRITE", "start", "metrics", "--to", "pg", "--read-percent", "100", "--min-sample", "200")
	p.step(t, "metrics", "BACKFILL", "advance", "metrics")

	p.killAndResumeBackfill(t, "metrics", "events")

	// The divergence: events of five static series lost on the target
	// (nothing appends to them, so no copy brings them back).
	deleteTargetEvents(t, pg, "metrics", 5, 20)
	p.step(t, "metrics", "SHADOW_READ", "advance", "metrics")
	s := p.waitFor(t, "metrics", "mismatches seen", func(s migrationStatus) bool {
		return s.Stats.Mismatches >= 20 && s.Stats.ReadsCompared >= 200
	})
	if s.Gate.CanPromote {
		t.Fatalf("gate open with %d mismatches in %d reads", s.Stats.Mismatches, s.Stats.ReadsCompared)
	}
	for _, k := range s.Stats.MismatchKeys {
		if k < "static-0" || k > "static-4" {
			t.Errorf("mismatch reported on series %s, which lost nothing", k)
		}
	}
	if out, err := p.prism(context.Background(), "migrate", "promote", "metrics"); err == nil {
		t.Fatalf("promote with %d mismatches was accepted:\n%s", s.Stats.Mismatches, out)
	}
	t.Logf("promote refused at mismatch rate %.4f (%d of %d queries)", s.Stats.MismatchRate, s.Stats.Mismatches, s.Stats.ReadsCompared)

	if out, err := p.prism(context.Background(), "migrate", "backfill", "metrics", "--repair"); err != nil {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	s = p.waitFor(t, "metrics", "a clean comparison window", func(s migrationStatus) bool { return s.Gate.CanPromote })
	t.Logf("after repair: %d queries compared, %d mismatches (rate %.5f)", s.Stats.ReadsCompared, s.Stats.Mismatches, s.Stats.MismatchRate)
	measuredRate := s.Stats.MismatchRate

	// A query cursor issued by SQLite before promotion, used after it.
	var before eventsPage
	if !l.get("/events?series=static-7&limit=100", &before) || before.NextCursor == "" {
		t.Fatalf("query before promotion: %v", l.failSample)
	}
	var expect eventsPage
	l.get("/events?"+url.Values{"series": {"static-7"}, "limit": {"100"}, "cursor": {before.NextCursor}}.Encode(), &expect)

	p.step(t, "metrics", "PROMOTED", "promote", "metrics")
	var after eventsPage
	if !l.get("/events?"+url.Values{"series": {"static-7"}, "limit": {"100"}, "cursor": {before.NextCursor}}.Encode(), &after) {
		t.Fatalf("a SQLite query cursor after promotion: %v", l.failSample)
	}
	if len(after.Events) != 100 || string(after.Events[0].Data) == "" || !sameTokens(expect, after) {
		t.Fatalf("a SQLite query cursor resumed elsewhere on Postgres: got %d events", len(after.Events))
	}
	time.Sleep(time.Second) // appends to Postgres, copied to SQLite; tails cross the floor

	out, err := p.prism(context.Background(), "migrate", "advance", "metrics")
	if err != nil {
		t.Fatalf("decommission: %v\n%s", err, out)
	}
	p.waitInSync(t)
	time.Sleep(500 * time.Millisecond) // Postgres alone
	l.finish()
	l.check(t, openTSReplica(t, pg), "metrics", "postgres after decommission")
	if b := p.namespaceBackend(t, "metrics"); b != "pg" {
		t.Fatalf("namespace after decommission is on %q, want pg", b)
	}
	t.Logf("TimeSeries SQLite → Postgres: %d requests, 0 failed, mismatch rate at promote %.5f", l.requests.Load(), measuredRate)
}

func sameTokens(a, b eventsPage) bool {
	if len(a.Events) != len(b.Events) {
		return false
	}
	for i := range a.Events {
		var x, y tokenData
		json.Unmarshal(a.Events[i].Data, &x)
		json.Unmarshal(b.Events[i].Data, &y)
		if x.Tok != y.Tok || x.Tok == "" {
			return false
		}
	}
	return true
}

// deleteTargetEvents deletes n events of each of the first `series` static
// series from a Postgres backend, behind Prism's back.
func deleteTargetEvents(t *testing.T, b *configv1.Backend, ns string, series, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.GetPostgres().GetDsn())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for s := range series {
		tag, err := conn.Exec(ctx, `DELETE FROM prism_ts_events WHERE ns = $1 AND series = $2 AND seq IN (
			SELECT seq FROM prism_ts_events WHERE ns = $1 AND series = $2 ORDER BY seq LIMIT $3)`, ns, fmt.Sprintf("static-%d", s), n)
		if err != nil || tag.RowsAffected() != int64(n) {
			t.Fatalf("deleting events of static-%d on the target: %v (%d rows)", s, err, tag.RowsAffected())
		}
	}
}

// TestTimeSeriesMigrationAbortKeepsEverything moves a TimeSeries namespace
// between two Postgres schemas and aborts it at each phase before
// decommission, under load: the source serves again and holds every
// acknowledged event once, and the tails never miss or repeat one. From
// PROMOTED that takes the reverse handover: the target is sealed and the
// source assigns positions again above everything the target gave.
func TestTimeSeriesMigrationAbortKeepsEverything(t *testing.T) {
	for _, phase := range []string{"SHADOW_WRITE", "SHADOW_READ", "PROMOTED"} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			testTSAbortAt(t, phase)
		})
	}
}

func testTSAbortAt(t *testing.T, phase string) {
	p := startPrismDev(t)
	a, b := postgresBackend(t, "pga", ""), postgresBackend(t, "pgb", "")
	p.putBackend(t, a)
	p.putBackend(t, b)
	p.putNamespace(t, "ticks", "timeseries", "pga")
	base := "http://" + p.edge + "/v1/ts/ticks"
	preloadStatic(t, base)
	l := startTSLoad(t, base, 4, 2)
	defer func() {
		if !l.stopping() {
			l.finish()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	p.runUntil(t, "ticks", "pgb", phase)
	promoted := p.migration(t, "ticks").Migration.HandoverFloor
	time.Sleep(500 * time.Millisecond) // traffic in the phase
	if out, err := p.prism(context.Background(), "migrate", "abort", "ticks"); err != nil {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	p.waitInSync(t)
	time.Sleep(500 * time.Millisecond) // traffic on pga alone again
	l.finish()
	t.Logf("handover floors: at promote %q, at abort %q", promoted, p.migration(t, "ticks").Migration.HandoverFloor)
	l.check(t, openTSReplica(t, a), "ticks", "the source after an abort in "+phase)
	if s := p.migration(t, "ticks"); s.Migration.Phase != "ABORTED" {
		t.Fatalf("phase after abort: %s", s.Migration.Phase)
	}
	t.Logf("TimeSeries Postgres → Postgres, aborted in %s: %d requests, 0 failed, nothing lost", phase, l.requests.Load())
}
