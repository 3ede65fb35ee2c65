package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
	"github.com/prism-gw/prism/internal/pgtest"
)

// testDSN returns a DSN whose search_path is a fresh schema, dropped when t
// ends. An unreachable server fails the test unless PRISM_SKIP_POSTGRES=1.
func testDSN(t testing.TB) string {
	t.Helper()
	return pgtest.Schema(t, "prism_test_")
}

// openStore opens a store on dsn, closed when t ends.
func openStore(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	s := openStore(t, testDSN(t), Options{})
	kvtest.Run(t, func(t *testing.T) kv.Store { return s })
}

func TestTableIsInSearchPathSchema(t *testing.T) {
	dsn := testDSN(t)
	st, err := kv.Open(context.Background(), "postgres", dsn)
	if err != nil {
		t.Fatalf("kv.Open(postgres): %v", err)
	}
	defer st.Close()
	s := st.(*Store)
	var schema string
	err = s.pool.QueryRow(context.Background(),
		`SELECT table_schema FROM information_schema.tables WHERE table_name = 'prism_kv' AND table_schema = current_schema()`).Scan(&schema)
	u, _ := url.Parse(dsn)
	if want := u.Query().Get("search_path"); err != nil || schema != want {
		t.Fatalf("prism_kv is in schema %q (%v), want %q from search_path", schema, err, want)
	}
	// Opening again finds the table and leaves it alone.
	s2 := openStore(t, dsn, Options{})
	if _, err := s2.Put(context.Background(), "ns", kv.PutOp{Key: "k"}); err != nil {
		t.Fatalf("Put through a second store: %v", err)
	}
}

func TestMissingSchemaFailsClearly(t *testing.T) {
	dsn := pgtest.WithParam(t, testDSN(t), "search_path", "prism_no_such_schema")
	s, err := Open(context.Background(), dsn, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open with a search_path naming no existing schema succeeded, want an error")
	}
	if errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Open error %v is marked unavailable; a missing schema is a definite error", err)
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	start := time.Now()
	// Port 1 on loopback refuses connections at once.
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/test", Options{})
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want kv.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open of an unreachable server took %v", d)
	}
}

// The pool must drop connections the server closed and serve again, with
// the failures in between reported as kv.ErrUnavailable.
func TestRecoversAfterConnectionsAreKilled(t *testing.T) {
	app := "prism-kvtest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s := openStore(t, pgtest.WithParam(t, testDSN(t), "application_name", app), Options{})
	ctx := context.Background()
	if _, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgtest.WithParam(t, pgtest.ServerDSN(), "connect_timeout", "5"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&killed)
	if err != nil || killed == 0 {
		t.Fatalf("terminate the store's backends: killed %d, %v", killed, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for failures := 0; ; failures++ {
		_, err := s.Get(ctx, "ns", "k")
		if err == nil {
			t.Logf("served again after %d failed calls", failures)
			break
		}
		if !errors.Is(err, kv.ErrUnavailable) {
			t.Fatalf("Get on a killed connection: %v, want kv.ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 10s after the connections were killed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestVersionGrowsWhenClockIsBehind(t *testing.T) {
	s := openStore(t, testDSN(t), Options{})
	ctx := context.Background()
	if _, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	// A version from a clock an hour ahead, as another gateway could write.
	ahead := time.Now().Add(time.Hour).UnixNano()
	if _, err := s.pool.Exec(ctx, `UPDATE prism_kv SET version = $1 WHERE ns = 'ns'`, ahead); err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("b")})
	if want := strconv.FormatInt(ahead+1, 10); err != nil || v != want {
		t.Errorf("Put over a version ahead of the clock = %s, %v; want old+1 = %s", v, err, want)
	}
	v2, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("c"), Cond: kv.Cond{IfMatch: v}})
	if want := strconv.FormatInt(ahead+2, 10); err != nil || v2 != want {
		t.Errorf("Put IfMatch over a version ahead of the clock = %s, %v; want %s", v2, err, want)
	}
}

func TestSweeperDeletesExpiredRows(t *testing.T) {
	s := openStore(t, testDSN(t), Options{SweepInterval: 20 * time.Millisecond})
	ctx := context.Background()
	ops := make([]kv.Op, 2*sweepBatch+10) // several sweep statements' worth
	for i := range ops {
		ops[i] = kv.Op{Put: kv.PutOp{Key: fmt.Sprint(i), TTL: time.Millisecond}}
	}
	if _, err := s.Batch(ctx, "ns", ops); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "ns", kv.PutOp{Key: "stays", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM prism_kv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows remain 5s after they expired; want only the key without TTL", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestErrorClassification(t *testing.T) {
	s := openStore(t, testDSN(t), Options{})
	ctx := context.Background()
	// A definite SQL error is not "unavailable": retrying cannot help.
	_, err := s.pool.Exec(ctx, `SELECT 1/0`)
	if err == nil {
		t.Fatal("division by zero succeeded")
	}
	if err := fail(ctx, "test", err); errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("division by zero classified as unavailable: %v", err)
	}
	// A statement cancelled by its deadline is.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.pool.Exec(short, `SELECT pg_sleep(5)`)
	if err := fail(short, "test", err); !errors.Is(err, kv.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("statement past its deadline: %v, want kv.ErrUnavailable and context.DeadlineExceeded", err)
	}
}

// A database created before kv.Replica existed has no tombstone table;
// opening it adds the table and keeps the data.
func TestOpenMigratesDatabaseWithoutTombstones(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	old, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Exec(ctx, `
CREATE TABLE prism_kv (
	ns text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, content_type text NOT NULL,
	version bigint NOT NULL, expires_at bigint, PRIMARY KEY (ns, key)
);
INSERT INTO prism_kv VALUES ('ns', 'k'::bytea, 'old'::bytea, 'text/plain', 42, NULL)`)
	old.Close(ctx)
	if err != nil {
		t.Fatalf("create a table with the old schema: %v", err)
	}
	s := openStore(t, dsn, Options{})
	if it, err := s.Get(ctx, "ns", "k"); err != nil || string(it.Value) != "old" || it.Version != "42" {
		t.Fatalf("Get of the old row = %q at %q, %v; want old at 42", it.Value, it.Version, err)
	}
	if applied, err := s.DeleteVersion(ctx, "ns", "k", "43"); err != nil || !applied {
		t.Fatalf("DeleteVersion on the migrated database = %v, %v; want applied", applied, err)
	}
	if applied, err := s.PutVersion(ctx, "ns", kv.Item{Key: "k", Version: "42"}); err != nil || applied {
		t.Fatalf("PutVersion under the tombstone = %v, %v; want not applied", applied, err)
	}
}
