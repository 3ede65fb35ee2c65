package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/kvtest"
)

// openTemp opens a store on a fresh file that is closed when t ends.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "kv.db"), opts)
}

func openPath(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store { return openTemp(t, Options{}) })
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		path    string
		opts    Options
		wantErr bool
	}{
		{dsn: "/var/lib/prism/kv.db", path: "/var/lib/prism/kv.db"},
		{dsn: "kv.db?synchronous=normal", path: "kv.db", opts: Options{Synchronous: "normal"}},
		{dsn: "kv.db?busy_timeout=2s&sweep_interval=-1s&readers=2", path: "kv.db",
			opts: Options{BusyTimeout: 2 * time.Second, SweepInterval: -time.Second, Readers: 2}},
		{dsn: "kv.db?sync=normal", wantErr: true},
		{dsn: "kv.db?busy_timeout=5", wantErr: true},
		{dsn: "?synchronous=full", wantErr: true},
		{dsn: "", wantErr: true},
	} {
		path, opts, err := ParseDSN(tc.dsn)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseDSN(%q) = %q, %+v; want an error", tc.dsn, path, opts)
			}
			continue
		}
		if err != nil || path != tc.path || opts != tc.opts {
			t.Errorf("ParseDSN(%q) = %q, %+v, %v; want %q, %+v", tc.dsn, path, opts, err, tc.path, tc.opts)
		}
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		opts Options
	}{
		{":memory:", Options{}},
		{"file::memory:?mode=memory", Options{}},
		{filepath.Join(dir, "kv.db"), Options{Synchronous: "sometimes"}},
	} {
		if s, err := Open(context.Background(), tc.path, tc.opts); err == nil {
			s.Close()
			t.Errorf("Open(%q, %+v) succeeded, want an error", tc.path, tc.opts)
		}
	}
}

// pragma reads a pragma on the writer connection, where durability matters.
func pragma(t *testing.T, s *Store, name string) string {
	t.Helper()
	var v string
	if err := s.w.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestDurabilitySettings(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		dsn, synchronous string
	}{
		{"full.db", "2"},
		{"normal.db?synchronous=normal", "1"},
		{"extra.db?synchronous=EXTRA", "3"},
	} {
		st, err := kv.Open(context.Background(), "sqlite", filepath.Join(dir, tc.dsn))
		if err != nil {
			t.Fatalf("kv.Open(sqlite, %q): %v", tc.dsn, err)
		}
		s := st.(*Store)
		if got := pragma(t, s, "synchronous"); got != tc.synchronous {
			t.Errorf("%s: synchronous = %s, want %s", tc.dsn, got, tc.synchronous)
		}
		if got := pragma(t, s, "journal_mode"); got != "wal" {
			t.Errorf("%s: journal_mode = %s, want wal", tc.dsn, got)
		}
		if got := pragma(t, s, "journal_size_limit"); got != "67108864" {
			t.Errorf("%s: journal_size_limit = %s, want 67108864", tc.dsn, got)
		}
		if got := pragma(t, s, "busy_timeout"); got != "5000" {
			t.Errorf("%s: busy_timeout = %s, want 5000", tc.dsn, got)
		}
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestCloseCheckpointsAndReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(context.Background(), "ns", kv.PutOp{Key: "k", Value: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("after Close the WAL holds %d bytes, want it checkpointed", fi.Size())
	}
	s2 := openPath(t, path, Options{})
	it, err := s2.Get(context.Background(), "ns", "k")
	if err != nil || string(it.Value) != "kept" || it.Version != v {
		t.Fatalf("after reopen Get = %q %q, %v; want kept %s", it.Value, it.Version, err, v)
	}
}

func TestVersionGrowsWhenClockIsBehind(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	if _, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	// A version from a clock an hour ahead, as another process could write.
	ahead := time.Now().Add(time.Hour).UnixNano()
	if _, err := s.w.Exec(`UPDATE prism_kv SET version = ? WHERE ns = 'ns'`, ahead); err != nil {
		t.Fatal(err)
	}
	v, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(ahead+1, 10); v != want {
		t.Errorf("Put over a version ahead of the clock = %s, want old+1 = %s", v, want)
	}
	v2, err := s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("c"), Cond: kv.Cond{IfMatch: v}})
	if want := strconv.FormatInt(ahead+2, 10); err != nil || v2 != want {
		t.Errorf("Put IfMatch over a version ahead of the clock = %s, %v; want %s", v2, err, want)
	}
}

func TestSweeperDeletesExpiredRows(t *testing.T) {
	s := openTemp(t, Options{SweepInterval: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 2*sweepBatch + 10 { // several sweep statements' worth
		if _, err := s.Put(ctx, "ns", kv.PutOp{Key: fmt.Sprint(i), TTL: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "ns", kv.PutOp{Key: "stays", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := s.w.QueryRow(`SELECT count(*) FROM prism_kv`).Scan(&n); err != nil {
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
	if _, err := s.Get(ctx, "ns", "stays"); err != nil {
		t.Fatalf("sweeper touched a live key: %v", err)
	}
}

// Two stores on one file stand for two processes: the IMMEDIATE writer
// transactions and busy_timeout must keep CAS exactly-once across them.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	a, b := openPath(t, path, Options{}), openPath(t, path, Options{})
	ctx := context.Background()
	v0, err := a.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("0")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if i%4 < 2 {
				_, errs[i] = s.Put(ctx, "ns", kv.PutOp{Key: "k", Value: []byte("x"), Cond: kv.Cond{IfMatch: v0}})
			} else {
				_, errs[i] = s.Batch(ctx, "ns", []kv.Op{
					{Put: kv.PutOp{Key: "other", Value: []byte("y")}},
					{Put: kv.PutOp{Key: "k", Value: []byte("x"), Cond: kv.Cond{IfMatch: v0}}},
				})
			}
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, kv.ErrVersionMismatch):
			t.Errorf("writer %d: %v, want success or kv.ErrVersionMismatch", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d writers won the CAS across two stores, want exactly 1", wins)
	}
}

func TestLockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := openPath(t, path, Options{BusyTimeout: 50 * time.Millisecond})
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	_, err = s.Put(context.Background(), "ns", kv.PutOp{Key: "k", Value: []byte("x")})
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Put while another process holds the write lock: %v, want kv.ErrUnavailable", err)
	}
	if _, err := s.Batch(context.Background(), "ns", []kv.Op{{Put: kv.PutOp{Key: "k"}}}); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("Batch while another process holds the write lock: %v, want kv.ErrUnavailable", err)
	}
}

// A database created before kv.Replica existed has no tombstone table;
// opening it adds the table and keeps the data.
func TestOpenMigratesDatabaseWithoutTombstones(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Exec(`
CREATE TABLE prism_kv (
	ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, content_type TEXT NOT NULL,
	version INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY (ns, key)
) WITHOUT ROWID;
INSERT INTO prism_kv VALUES ('ns', CAST('k' AS BLOB), CAST('old' AS BLOB), 'text/plain', 42, NULL);`)
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("create a database with the old schema: %v", err)
	}
	s := openPath(t, path, Options{})
	ctx := context.Background()
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

// DropTombstones deletes in bounded statements; all of them must go.
func TestDropTombstonesDeletesEveryBatch(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	for _, ns := range []string{"ns", "other"} {
		_, err := s.w.Exec(`
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
INSERT INTO prism_kv_tombstones (ns, key, version) SELECT ?1, CAST(i AS BLOB), 100 FROM n`, ns, 2*sweepBatch+10)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DropTombstones(ctx, "ns"); err != nil {
		t.Fatalf("DropTombstones: %v", err)
	}
	count := func(ns string) (n int) {
		if err := s.w.QueryRow(`SELECT count(*) FROM prism_kv_tombstones WHERE ns = ?`, ns).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, m := count("ns"), count("other"); n != 0 || m != 2*sweepBatch+10 {
		t.Errorf("after DropTombstones(ns): %d tombstones left in ns, %d in other; want 0 and %d", n, m, 2*sweepBatch+10)
	}
}
