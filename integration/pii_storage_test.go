package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/internal/pgtest"
)

// writePIIEverywhere writes the PII document through Prism into every
// abstraction of the namespaces with the prefix (m- on SQLite, p- on
// Postgres), reads it back as the owner and a reader, and sends a few bad
// requests whose bodies carry PII, so that error paths get logged too.
func writePIIEverywhere(t *testing.T, st *mtlsStack, prefix string) {
	t.Helper()
	ok := func(s sent, status int) {
		t.Helper()
		if s.status != status {
			t.Fatalf("%s %s %s: status %d, want %d: %s", s.subject, s.method, s.path, s.status, status, s.body)
		}
	}
	kv, ts, graph := prefix+"kv", prefix+"ts", prefix+"graph"
	ok(st.do(t, subjOwner, "PUT", "/v1/kv/"+kv+"/u-1", mtlsDoc), 200)
	ok(st.do(t, subjOwner, "POST", "/v1/kv/"+kv+"/_batch", `{"ops":[{"op":"put","key":"u-2","value":`+mtlsDoc+`}]}`), 200)
	ok(st.do(t, subjOwner, "POST", "/v1/ts/"+ts+"/events", `{"events":[{"series":"u-1","id":"e1","data":`+mtlsDoc+`,"tags":{"k":"v"}}]}`), 200)
	ok(st.do(t, subjOwner, "PUT", "/v1/graph/"+graph+"/nodes/u-1", `{"label":"user","props":`+mtlsDoc+`}`), 200)
	ok(st.do(t, subjOwner, "PUT", "/v1/graph/"+graph+"/nodes/u-2", `{"label":"user","props":`+mtlsDoc+`}`), 200)
	ok(st.do(t, subjOwner, "PUT", "/v1/graph/"+graph+"/edges", `{"from":"u-1","to":"u-2","label":"knows"}`), 200)
	ok(st.do(t, subjOwner, "GET", "/v1/kv/"+kv+"/u-1", ""), 200)
	ok(st.do(t, subjReader, "GET", "/v1/kv/"+kv+"?prefix=u-", ""), 200)
	ok(st.do(t, subjReader, "GET", "/v1/ts/"+ts+"/events?series=u-1", ""), 200)
	ok(st.do(t, subjReader, "POST", "/v1/graph/"+graph+"/traverse", `{"start":"u-1","max_depth":2}`), 200)
	ok(st.do(t, subjStranger, "GET", "/v1/kv/"+kv+"/u-1", ""), 403)
	ok(st.do(t, subjReader, "PUT", "/v1/kv/"+kv+"/u-1", mtlsDoc), 403)
	// Bad input carrying PII: its error must not echo it into logs.
	ok(st.do(t, subjOwner, "PUT", "/v1/kv/"+kv+"/bad", `{"email":"`+mtlsEmail+`","ssn":`), 400)
	ok(st.do(t, subjOwner, "PUT", "/v1/kv/"+kv+"/bad", mtlsEmail+" "+mtlsSSN, "content-type", "text/plain"), 400)
	ok(st.do(t, subjOwner, "POST", "/v1/ts/"+ts+"/events", `{"events":[{"series":"u-1","data":`+mtlsDoc+`,"bogus":"`+mtlsName+`"}]}`), 400)
}

// TestPIIStorageScan writes PII through Prism into SQLite and Postgres
// (KV, TimeSeries, Graph) with the audit log on Postgres, then reads every
// row of every table (and the SQLite files byte by byte) directly, and the
// logs captured meanwhile: no PII plaintext anywhere.
func TestPIIStorageScan(t *testing.T) {
	auditDSN := pgtest.Schema(t, "audit_scan_")
	st := startMTLSStack(t, mtlsOptions{postgres: true, auditSpec: auditDSN})
	writePIIEverywhere(t, st, "m-")
	writePIIEverywhere(t, st, "p-")
	ctx := context.Background()

	// SQLite: every row of every table, then the files themselves (free
	// pages and the WAL included).
	db, err := sql.Open("sqlite", "file:"+st.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	rows := sqliteRows(t, db)
	db.Close()
	if rows < 6 {
		t.Fatalf("read only %d SQLite rows; the writes did not land where the scan looks", rows)
	}
	st.noPlaintextInFiles(t, st.dbPath+"*")

	// Postgres: the backend's schema and the audit log's schema.
	for _, dsn := range []string{st.pgDSN, auditDSN} {
		if n := postgresRows(t, dsn); n < 5 {
			t.Fatalf("read only %d rows from %s", n, dsn)
		}
	}

	// The logs, at debug level, of all of it (extproc logs nothing per
	// request on this path; TestPIIAuditFailsClosed checks logs that exist).
	logs := st.logs.String()
	noPlaintextIn(t, "the logs", []byte(logs))
	t.Logf("scanned %d SQLite rows, %d bytes of logs", rows, len(logs))

	// The audit log verifies; editing one of its rows with SQL makes
	// verify fail at exactly that row.
	n, err := audit.VerifySpec(ctx, auditDSN)
	if err != nil || n < 20 {
		t.Fatalf("audit verify = %d, %v; want 20+ intact records", n, err)
	}
	conn, err := pgx.Connect(ctx, auditDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	row := int64(n / 2)
	if _, err := conn.Exec(ctx, `UPDATE prism_audit SET decision = 'email=plain,name=plain,ssn=plain' WHERE id = $1`, row); err != nil {
		t.Fatal(err)
	}
	got, err := audit.VerifySpec(ctx, auditDSN)
	var be *audit.BrokenError
	if !errors.As(err, &be) || be.Row != row || got != int(row-1) {
		t.Fatalf("verify after editing row %d = %d, %v; want broken at row id %d after %d records", row, got, err, row, row-1)
	}
}

// sqliteRows reads every row of every table and fails on PII plaintext;
// it returns the number of rows read.
func sqliteRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var tables []string
	rs, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var name string
		if err := rs.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rs.Close()
	total := 0
	for _, table := range tables {
		rs, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					b.Write(bs)
				} else {
					fmt.Fprint(&b, v)
				}
				b.WriteByte('|')
			}
			noPlaintextIn(t, "SQLite table "+table, []byte(b.String()))
			total++
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		rs.Close()
	}
	return total
}

// postgresRows reads every row of every table in the DSN's schema as text
// and fails on PII plaintext; it returns the number of rows read.
func postgresRows(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rs, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatalf("no tables in the schema of %s", dsn)
	}
	total := 0
	for _, table := range tables {
		rs, err := conn.Query(ctx, `SELECT t::text FROM "`+table+`" t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range texts {
			noPlaintextIn(t, "Postgres table "+table, []byte(s))
		}
		total += len(texts)
	}
	return total
}

// TestPIIAuditFailsClosed takes the audit database away (a TCP proxy in
// front of Postgres is cut): every PII access answers 503 with nothing of
// the data, and a write is not performed. Restored, it works again.
func TestPIIAuditFailsClosed(t *testing.T) {
	dsn := pgtest.Schema(t, "audit_down_")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st := startMTLSStack(t, mtlsOptions{auditSpec: u.String()})
	if s := st.do(t, subjOwner, "PUT", "/v1/kv/m-kv/u-1", mtlsDoc); s.status != 200 {
		t.Fatalf("PUT with the audit log up: %d %s", s.status, s.body)
	}

	proxy.setCut(true)
	for _, c := range []struct{ subject, method, path, body string }{
		{subjOwner, "GET", "/v1/kv/m-kv/u-1", ""},
		{subjReader, "GET", "/v1/kv/m-kv?prefix=u-", ""},
		{subjReader, "POST", "/v1/kv/m-kv/_mget", `{"keys":["u-1"]}`},
		{subjOwner, "PUT", "/v1/kv/m-kv/u-2", mtlsDoc},
		{subjOwner, "POST", "/v1/kv/m-kv/_batch", `{"ops":[{"op":"put","key":"u-3","value":` + mtlsDoc + `}]}`},
		{subjOwner, "POST", "/v1/ts/m-ts/events", `{"events":[{"series":"u-1","id":"e1","data":` + mtlsDoc + `}]}`},
		{subjOwner, "GET", "/v1/ts/m-ts/events?series=u-1", ""},
		{subjOwner, "PUT", "/v1/graph/m-graph/nodes/u-1", `{"label":"user","props":` + mtlsDoc + `}`},
		{subjStranger, "GET", "/v1/kv/m-kv/u-1", ""}, // a denial is audited too
	} {
		s := st.do(t, c.subject, c.method, c.path, c.body)
		if s.status != 503 {
			t.Fatalf("%s %s %s with the audit log down: status %d, want 503: %s", c.subject, c.method, c.path, s.status, s.body)
		}
		wantCode(t, s, "UNAVAILABLE")
		noPlaintextIn(t, "a 503 answer", s.body)
	}

	proxy.setCut(false)
	// The refused writes were not performed.
	if s := st.do(t, subjOwner, "GET", "/v1/kv/m-kv/u-2", ""); s.status != 404 {
		t.Fatalf("GET of a write refused while the audit log was down: status %d, want 404: %s", s.status, s.body)
	}
	for _, path := range []string{"/v1/kv/m-kv/u-3", "/v1/graph/m-graph/nodes/u-1"} {
		if s := st.do(t, subjOwner, "GET", path, ""); s.status != 404 {
			t.Fatalf("GET %s, refused while the audit log was down: status %d, want 404", path, s.status)
		}
	}
	if s := st.do(t, subjOwner, "GET", "/v1/ts/m-ts/events?series=u-1", ""); s.status != 200 || len(docsIn(t, s.body)) != 0 {
		t.Fatalf("events appended while the audit log was down: %d %s", s.status, s.body)
	}
	if s := st.do(t, subjOwner, "GET", "/v1/kv/m-kv/u-1", ""); s.status != 200 {
		t.Fatalf("GET after the audit log came back: %d %s", s.status, s.body)
	}
	if n, err := audit.VerifySpec(context.Background(), dsn); err != nil {
		t.Fatalf("audit verify after the outage = %d, %v", n, err)
	}
	// The outage is logged, without the data of the refused accesses.
	logs := st.logs.String()
	if !strings.Contains(logs, "audit append failed") {
		t.Fatalf("the audit outage was not logged:\n%s", logs)
	}
	noPlaintextIn(t, "the logs", []byte(logs))
}
