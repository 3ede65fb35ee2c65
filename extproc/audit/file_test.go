package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

var _ Log = (*FileLog)(nil)

func record(i int) Record {
	return Record{
		Time:      time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC),
		Subject:   "spiffe://prism.local/support-tool",
		Namespace: "user-profiles",
		Key:       fmt.Sprintf("u-%d", i),
		Operation: "get",
		Fields:    []string{"email", "address.street"},
		Decision:  "email=mask,address.street=mask",
		RequestID: fmt.Sprintf("r-%d", i),
	}
}

// newLog returns the path of a log with n records, closed.
func newLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Append(ctx, record(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAndVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Verify(ctx); n != 0 || err != nil {
		t.Fatalf("Verify of an empty log = %d, %v", n, err)
	}
	for i := 1; i <= 5; i++ {
		if err := l.Append(ctx, record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.Verify(ctx); n != 5 || err != nil {
		t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
	}
	h := l.Head()
	if h.Seq != 5 || len(h.Hash) != 64 {
		t.Fatalf("Head = %+v", h)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, record(6)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if n, err := VerifyFile(ctx, path); n != 5 || err != nil {
		t.Fatalf("VerifyFile = %d, %v", n, err)
	}

	// Reopen: the chain continues.
	l, err = OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, Record{Namespace: "ns", Decision: "deny"}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Verify(ctx); n != 6 || err != nil {
		t.Fatalf("Verify after reopen = %d, %v", n, err)
	}
	l.Close()

	lines := readLines(t, path)
	for i, line := range lines {
		r, reason := decode(bytes.TrimSuffix(line, []byte("\n")))
		if reason != "" || r.Seq != uint64(i+1) {
			t.Fatalf("line %d: %s (seq %d)", i+1, reason, r.Seq)
		}
	}
	if !bytes.Contains(lines[0], []byte(`"fields":["email","address.street"]`)) || !bytes.Contains(lines[5], []byte(`"fields":[]`)) {
		t.Fatalf("records do not carry their field names:\n%s", bytes.Join(lines, nil))
	}
	if r, _ := decode(bytes.TrimSpace(lines[5])); r.Time.IsZero() {
		t.Fatalf("Append did not set the time of a record without one")
	}
}

func TestOddStringsVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := record(1)
	r.Subject = "bad utf8 \xff\xfe <html> & \u2028 \"quoted\" \\"
	r.Key = "ключ/with\nnewline"
	r.Fields = []string{"\x00"}
	r.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600))
	if err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Verify(ctx); n != 1 || err != nil {
		t.Fatalf("Verify = %d, %v: every string must survive the canonical form", n, err)
	}
	l.Close()
}

// TestTamperingDetected edits a log of 10 records in every way listed and
// expects Verify to name the first broken line.
func TestTamperingDetected(t *testing.T) {
	const n = 10
	replace := func(line []byte, old, new string) []byte {
		return bytes.Replace(line, []byte(old), []byte(new), 1)
	}
	// rehash re-computes a record's hash after an edit, as a careful
	// attacker would: the break moves to the next record.
	rehash := func(t *testing.T, line []byte, edit func(*Record)) []byte {
		r, reason := decode(bytes.TrimSuffix(line, []byte("\n")))
		if reason != "" {
			t.Fatal(reason)
		}
		edit(&r)
		out, _ := encode(r)
		return append(out, '\n')
	}
	tests := []struct {
		name     string
		tamper   func(t *testing.T, lines [][]byte) [][]byte
		wantLine int
	}{
		{"edit subject", func(t *testing.T, l [][]byte) [][]byte {
			l[3] = replace(l[3], "support-tool", "support-tooL")
			return l
		}, 4},
		{"edit fields", func(t *testing.T, l [][]byte) [][]byte {
			l[0] = replace(l[0], `"email",`, "")
			return l
		}, 1},
		{"edit decision", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = replace(l[9], "email=mask", "email=plain")
			return l
		}, 10},
		{"edit time", func(t *testing.T, l [][]byte) [][]byte {
			l[5] = replace(l[5], "2026-01-02", "2026-01-03")
			return l
		}, 6},
		{"edit hash", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = replace(l[2], `"hash":"`, `"hash":"0`)
			return l
		}, 3},
		{"reformat", func(t *testing.T, l [][]byte) [][]byte {
			l[4] = replace(l[4], `,"key"`, `, "key"`)
			return l
		}, 5},
		{"extra member", func(t *testing.T, l [][]byte) [][]byte {
			l[4] = replace(l[4], `{"seq"`, `{"x":1,"seq"`)
			return l
		}, 5},
		{"edit and rehash", func(t *testing.T, l [][]byte) [][]byte {
			l[6] = rehash(t, l[6], func(r *Record) { r.Subject = "someone-else" })
			return l
		}, 8},
		{"edit and rehash the last", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = rehash(t, l[9], func(r *Record) { r.Decision = "plain" })
			return l
		}, 10},
		{"delete first", func(t *testing.T, l [][]byte) [][]byte { return l[1:] }, 1},
		{"delete middle", func(t *testing.T, l [][]byte) [][]byte { return append(l[:4:4], l[5:]...) }, 5},
		{"delete last", func(t *testing.T, l [][]byte) [][]byte { return l[:9] }, 10},
		{"delete all", func(t *testing.T, l [][]byte) [][]byte { return nil }, 1},
		{"swap two", func(t *testing.T, l [][]byte) [][]byte {
			l[2], l[3] = l[3], l[2]
			return l
		}, 3},
		{"move last to front", func(t *testing.T, l [][]byte) [][]byte { return append([][]byte{l[9]}, l[:9]...) }, 1},
		{"duplicate", func(t *testing.T, l [][]byte) [][]byte { return append(l[:5:5], append([][]byte{l[4]}, l[5:]...)...) }, 6},
		{"insert forged", func(t *testing.T, l [][]byte) [][]byte {
			forged := rehash(t, l[4], func(r *Record) { r.Seq, r.Prev = 6, r.Hash })
			return append(l[:5:5], append([][]byte{forged}, l[5:]...)...)
		}, 7},
		{"garbage line", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = []byte("hello\n")
			return l
		}, 2},
		{"empty line", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:2:2], append([][]byte{[]byte("\n")}, l[2:]...)...)
		}, 3},
		{"cut the last line short", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = l[9][:20]
			return l
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newLog(t, n)
			writeLines(t, path, tt.tamper(t, readLines(t, path)))
			got, err := VerifyFile(ctx, path)
			var be *BrokenError
			if !errors.As(err, &be) || !errors.Is(err, ErrBroken) {
				t.Fatalf("VerifyFile of a tampered log = %d, %v; want a *BrokenError", got, err)
			}
			if be.Line != tt.wantLine || got != tt.wantLine-1 {
				t.Fatalf("VerifyFile = %d, %v; want the break at line %d after %d good records", got, err, tt.wantLine, tt.wantLine-1)
			}
			t.Logf("%v", err)
		})
	}
}

func TestOpenRefusesDamagedTail(t *testing.T) {
	path := newLog(t, 3)
	lines := readLines(t, path)
	lines[2] = bytes.Replace(lines[2], []byte("u-3"), []byte("u-4"), 1)
	writeLines(t, path, lines)
	if _, err := OpenFile(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("OpenFile with an altered last record: %v", err)
	}

	path = newLog(t, 3)
	writeLines(t, path, readLines(t, path)[:2])
	if _, err := OpenFile(path); !errors.Is(err, ErrBroken) {
		t.Fatalf("OpenFile with the last record removed: %v, want ErrBroken", err)
	}
}

func TestOpenRepairsTornTail(t *testing.T) {
	path := newLog(t, 3)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"2026-`) // a crash mid-append
	f.Close()
	if n, err := VerifyFile(ctx, path); n != 3 || err != nil {
		t.Fatalf("VerifyFile with a torn tail = %d, %v; want 3, nil", n, err)
	}
	l, err := OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile with a torn tail: %v", err)
	}
	if err := l.Append(ctx, record(4)); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Verify(ctx); n != 4 || err != nil {
		t.Fatalf("Verify after repair = %d, %v; want 4, nil", n, err)
	}
	l.Close()
}

func TestOneProcessPerLog(t *testing.T) {
	path := newLog(t, 1)
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l2, err := OpenFile(path); err == nil {
		l2.Close()
		t.Fatal("a second OpenFile of an open log succeeded")
	}
}

func TestHeadMissing(t *testing.T) {
	path := newLog(t, 2)
	if err := os.Remove(path + ".head"); err != nil {
		t.Fatal(err)
	}
	if n, err := VerifyFile(ctx, path); !errors.Is(err, ErrBroken) || n != 2 {
		t.Fatalf("VerifyFile without a head = %d, %v", n, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := record(i)
				r.RequestID = fmt.Sprintf("w%d-%d", w, i)
				if err := l.Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Verify while appending: it sees a consistent prefix.
	for range 5 {
		if _, err := l.Verify(ctx); err != nil {
			t.Errorf("Verify during appends: %v", err)
		}
	}
	wg.Wait()
	if n, err := l.Verify(ctx); n != writers*each || err != nil {
		t.Fatalf("Verify = %d, %v; want %d", n, err, writers*each)
	}
	l.mu.Lock()
	syncs := l.syncs
	l.mu.Unlock()
	t.Logf("%d appends, %d fsyncs", writers*each, syncs)
	if syncs > writers*each {
		t.Fatalf("%d fsyncs for %d appends", syncs, writers*each)
	}
	l.Close()
	seen := map[string]bool{}
	for _, line := range readLines(t, path) {
		r, _ := decode(bytes.TrimSpace(line))
		if seen[r.RequestID] {
			t.Fatalf("request %s recorded twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records, want %d", len(seen), writers*each)
	}
}

func TestAppendCanceled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, cancel := context.WithCancel(ctx)
	cancel()
	// The leader commits its own batch whatever the context; a canceled
	// caller may or may not see the error, but the chain stays intact.
	_ = l.Append(c, record(1))
	if _, err := l.Verify(ctx); err != nil {
		t.Fatalf("Verify after a canceled append: %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, err := OpenFile(filepath.Join(b.TempDir(), "audit.log"))
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
