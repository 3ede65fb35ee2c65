package audit

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prism-gw/prism/internal/pgtest"
)

var (
	_ Store = (*SQLLog)(nil)
	_ Store = (*FileLog)(nil)
)

// sqlSpecs are the databases every SQL test runs against.
func sqlSpecs(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "audit.db") },
		"postgres": func(t *testing.T) string { return pgtest.Schema(t, "audit_") },
	}
}

func openSQL(t *testing.T, spec string) *SQLLog {
	t.Helper()
	l, err := OpenSQL(ctx, spec)
	if err != nil {
		t.Fatalf("OpenSQL: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawDB opens the log's database directly, as an attacker with SQL access.
func rawDB(t *testing.T, spec string) (*sql.DB, sqlDialect) {
	t.Helper()
	db, d, err := openDB(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, d
}

func TestSQLLogAppendVerifyRecent(t *testing.T) {
	for name, spec := range sqlSpecs(t) {
		t.Run(name, func(t *testing.T) {
			spec := spec(t)
			l := openSQL(t, spec)
			for i := 1; i <= 5; i++ {
				r := record(i)
				if i%2 == 0 {
					r.Namespace = "other"
				}
				if err := l.Append(ctx, r); err != nil {
					t.Fatalf("Append %d: %v", i, err)
				}
			}
			if n, err := l.Verify(ctx); n != 5 || err != nil {
				t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
			}
			if n, err := VerifySpec(ctx, spec); n != 5 || err != nil {
				t.Fatalf("VerifySpec = %d, %v; want 5, nil", n, err)
			}
			recent, err := l.Recent(ctx, "user-profiles", 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(recent) != 2 || recent[0].Seq != 5 || recent[1].Seq != 3 || recent[0].Key != "u-5" || recent[0].Fields[1] != "address.street" {
				t.Fatalf("Recent = %+v; want records 5 and 3", recent)
			}
			if !recent[0].Time.Equal(record(5).Time) {
				t.Fatalf("Recent time %v, want %v", recent[0].Time, record(5).Time)
			}
			// A second opener continues the same chain.
			l2 := openSQL(t, spec)
			if err := l2.Append(ctx, record(6)); err != nil {
				t.Fatal(err)
			}
			if n, err := VerifySpec(ctx, spec); n != 6 || err != nil {
				t.Fatalf("VerifySpec after reopen = %d, %v; want 6, nil", n, err)
			}
		})
	}
}

// TestSQLLogTamper edits, deletes and truncates rows with plain SQL: Verify
// names exactly the row where the chain breaks.
func TestSQLLogTamper(t *testing.T) {
	cases := []struct {
		name    string
		sql     string
		wantRow int64
		reason  string
	}{
		{"edit subject", `UPDATE prism_audit SET subject = 'spiffe://prism.local/nobody' WHERE id = 4`, 4, "altered"},
		{"edit decision", `UPDATE prism_audit SET decision = 'email=plain' WHERE id = 2`, 2, "altered"},
		{"edit fields", `UPDATE prism_audit SET fields = '["email"]' WHERE id = 7`, 7, "altered"},
		{"delete a row", `DELETE FROM prism_audit WHERE id = 3`, 4, "deleted"},
		{"cut the end", `DELETE FROM prism_audit WHERE id >= 7`, 7, "removed from the end"},
		{"rehash a row", `UPDATE prism_audit SET hash = (SELECT hash FROM prism_audit WHERE id = 1) WHERE id = 5`, 5, "altered"},
	}
	for name, mkSpec := range sqlSpecs(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					spec := mkSpec(t)
					l := openSQL(t, spec)
					for i := 1; i <= 8; i++ {
						if err := l.Append(ctx, record(i)); err != nil {
							t.Fatal(err)
						}
					}
					db, _ := rawDB(t, spec)
					if _, err := db.ExecContext(ctx, tc.sql); err != nil {
						t.Fatalf("tamper: %v", err)
					}
					n, err := VerifySpec(ctx, spec)
					var be *BrokenError
					if !errors.As(err, &be) || !errors.Is(err, ErrBroken) {
						t.Fatalf("Verify after %q = %d, %v; want a *BrokenError", tc.sql, n, err)
					}
					if be.Row != tc.wantRow || n != int(tc.wantRow-1) && tc.name != "delete a row" || !strings.Contains(be.Reason, tc.reason) {
						t.Fatalf("Verify after %q: broken at row %d after %d records (%v); want row %d, reason with %q", tc.sql, be.Row, n, err, tc.wantRow, tc.reason)
					}
					if !strings.Contains(err.Error(), fmt.Sprintf("row id %d", tc.wantRow)) {
						t.Fatalf("error %q does not name row id %d", err, tc.wantRow)
					}
				})
			}
		})
	}
}

// TestSQLLogConcurrentWriters appends from several logs (as several extproc
// processes would) and goroutines at once: the chain stays linear.
func TestSQLLogConcurrentWriters(t *testing.T) {
	for name, mkSpec := range sqlSpecs(t) {
		t.Run(name, func(t *testing.T) {
			spec := mkSpec(t)
			logs := []*SQLLog{openSQL(t, spec), openSQL(t, spec), openSQL(t, spec)}
			const perWriter = 20
			var wg sync.WaitGroup
			errs := make(chan error, len(logs)*4*perWriter)
			for _, l := range logs {
				for g := 0; g < 4; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < perWriter; i++ {
							if err := l.Append(ctx, record(i)); err != nil {
								errs <- err
							}
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Append: %v", err)
			}
			want := len(logs) * 4 * perWriter
			if n, err := VerifySpec(ctx, spec); n != want || err != nil {
				t.Fatalf("Verify = %d, %v; want %d, nil", n, err, want)
			}
		})
	}
}

func TestSQLLogAppendFailsWhenTableIsGone(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "audit.db")
	l := openSQL(t, spec)
	if err := l.Append(ctx, record(1)); err != nil {
		t.Fatal(err)
	}
	db, _ := rawDB(t, spec)
	if _, err := db.ExecContext(ctx, `DROP TABLE prism_audit`); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, record(2)); err == nil {
		t.Fatal("Append succeeded without its table")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, record(3)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestIsSQLSpec(t *testing.T) {
	for spec, want := range map[string]bool{
		"postgres://u@h/db":    true,
		"postgresql://u@h/db":  true,
		"sqlite:///tmp/a":      true,
		".prism/audit.db":      true,
		"x.sqlite3":            true,
		".prism/audit.log":     false,
		"/var/log/prism-audit": false,
	} {
		if got := IsSQLSpec(spec); got != want {
			t.Errorf("IsSQLSpec(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestFileLogRecent(t *testing.T) {
	path := newLog(t, 5)
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.Recent(ctx, "user-profiles", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 5 || got[2].Seq != 3 {
		t.Fatalf("Recent = %+v; want records 5, 4, 3", got)
	}
	if got, _ := l.Recent(ctx, "nope", 3); len(got) != 0 {
		t.Fatalf("Recent of another namespace = %+v", got)
	}
}

// BenchmarkSQLAppend is Append on SQLite and Postgres, by 1 and 16
// concurrent writers (group commit makes the second cheaper per record).
func BenchmarkSQLAppend(b *testing.B) {
	specs := map[string]func() string{
		"sqlite":   func() string { return filepath.Join(b.TempDir(), "audit.db") },
		"postgres": func() string { return pgtest.Schema(b, "audit_bench_") },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", name, writers), func(b *testing.B) {
				l, err := OpenSQL(ctx, specs[name]())
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				r := record(1)
				b.SetParallelism(writers)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := l.Append(ctx, r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
