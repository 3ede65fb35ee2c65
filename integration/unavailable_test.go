package integration

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestPostgresDownIsUnavailable cuts the connection to Postgres (a proxy of
// the test's own, never the shared server) and checks: 503 UNAVAILABLE
// within the request timeout, nothing half-written, other namespaces keep
// serving, and the namespace recovers when the proxy comes back.
func TestPostgresDownIsUnavailable(t *testing.T) {
	cfg, err := pgx.ParseConfig(postgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	const timeout = 2 * time.Second
	st := startStack(t,
		[]*configv1.Backend{postgresBackend(t, "pg", proxy.addr()), sqliteBackend(t, "local")},
		[]*configv1.Namespace{kvNamespace("pgns", "pg", timeout), kvNamespace("localns", "local", 0)})
	pg := kvClient{t: t, base: st.edgeURL + "/v1/kv/pgns"}
	local := kvClient{t: t, base: st.edgeURL + "/v1/kv/localns"}

	pg.put("before", "1")
	proxy.setCut(true)

	start := time.Now()
	expect(t, "PUT while down", pg.do("PUT", "/k", []byte("x")), 503, "UNAVAILABLE")
	expect(t, "batch while down", pg.do("POST", "/_batch", []byte(`{"ops":[{"op":"put","key":"b1","value":1},{"op":"put","key":"b2","value":2}]}`)), 503, "UNAVAILABLE")
	expect(t, "GET while down", pg.do("GET", "/before", nil), 503, "UNAVAILABLE")
	if took := time.Since(start); took > 3*(timeout+time.Second) {
		t.Fatalf("three requests while down took %v; each should end within the %v request timeout", took, timeout)
	}
	local.put("still", "serving")

	proxy.setCut(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := pg.do("GET", "/before", nil)
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace did not recover after the proxy came back: %d %s", r.status, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Whatever the cut interrupted was not applied halfway: the batch's keys
	// are both present or both absent.
	b1, b2 := pg.do("GET", "/b1", nil).status, pg.do("GET", "/b2", nil).status
	if b1 != b2 {
		t.Fatalf("batch half-applied: b1 %d, b2 %d", b1, b2)
	}
	pg.put("after", "2")
}
