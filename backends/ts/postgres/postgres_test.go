package postgres

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/tstest"
	"github.com/prism-gw/prism/internal/pgtest"
)

// testDSN returns a DSN whose search_path is a fresh schema, dropped when t
// ends. An unreachable server fails the test unless PRISM_SKIP_POSTGRES=1.
func testDSN(t testing.TB) string {
	t.Helper()
	return pgtest.Schema(t, "prism_tstest_")
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
	tstest.Run(t, func(t *testing.T) ts.Store { return s })
}

func TestOpenByDriverName(t *testing.T) {
	st, err := ts.Open(context.Background(), "postgres", testDSN(t))
	if err != nil {
		t.Fatalf("ts.Open(postgres): %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenOfUnreachableServerIsUnavailable(t *testing.T) {
	start := time.Now()
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable", Options{ConnectTimeout: time.Second})
	if !errors.Is(err, ts.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ts.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open of an unreachable server took %v", d)
	}
}

// Two stores on one database stand for two gateways: a tail on one wakes
// by NOTIFY when the other appends, well before any poll.
func TestTailWakesOnAppendOfAnotherGateway(t *testing.T) {
	dsn := testDSN(t)
	a := openStore(t, dsn, Options{})
	b := openStore(t, dsn, Options{PollInterval: time.Hour})
	ctx := context.Background()
	for _, s := range []*Store{a, b} {
		if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.Tail(ctx, "ns", ts.TailArgs{Series: "s"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ts.Page, 1)
	go func() {
		p, err := b.Tail(ctx, "ns", ts.TailArgs{Series: "s", After: p.NextCursor, Wait: 10 * time.Second})
		if err != nil {
			t.Errorf("Tail: %v", err)
		}
		done <- p
	}()
	time.Sleep(100 * time.Millisecond)
	appended := time.Now()
	if _, _, err := a.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-done:
		if len(p.Events) != 1 {
			t.Fatalf("Tail returned %d events, want 1", len(p.Events))
		}
		if d := time.Since(appended); d > time.Second {
			t.Errorf("tail woke %v after another gateway's append", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail did not wake on another gateway's append")
	}
}

// The listener must come back after its connection is killed, and waiting
// tails must not miss appends made meanwhile.
func TestListenerReconnects(t *testing.T) {
	app := "prism-tstest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dsn := pgtest.WithParam(t, testDSN(t), "application_name", app)
	s := openStore(t, dsn, Options{PollInterval: 50 * time.Millisecond})
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgtest.WithParam(t, pgtest.ServerDSN(), "connect_timeout", "5"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listener: killed %d, %v", killed, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.connects.Load() < 2 || !s.listening.Load() {
		if time.Now().After(deadline) {
			t.Fatal("listener not back 10s after its connection was killed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p, err := s.Tail(ctx, "ns", ts.TailArgs{Series: "s"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}})
	}()
	p, err = s.Tail(ctx, "ns", ts.TailArgs{Series: "s", After: p.NextCursor, Wait: 5 * time.Second})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("Tail after the listener reconnected = %d events, %v; want 1", len(p.Events), err)
	}
}

func TestSweeperDeletesEventsPastRetention(t *testing.T) {
	s := openStore(t, testDSN(t), Options{SweepInterval: 20 * time.Millisecond})
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	old := make([]ts.Event, ts.MaxBatch)
	for i := range old {
		old[i] = ts.Event{Series: "s", Time: time.Now().Add(-2 * time.Hour)}
	}
	for range 2 { // more than one sweep statement's worth
		if _, _, err := s.Append(ctx, "ns", old); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := s.Query(ctx, "ns", ts.QueryArgs{Series: "s", Limit: ts.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events remain 5s after they passed retention; want only the recent one", len(p.Events))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
