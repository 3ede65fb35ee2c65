package backfill

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	_ "github.com/prism-gw/prism/backends/ts/postgres"
	_ "github.com/prism-gw/prism/backends/ts/sqlite"
	"github.com/prism-gw/prism/internal/pgtest"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestRunTSHonoursTheRate copies 1000 events of 100 series from SQLite to
// Postgres at 500 events/s under a clock that stands still, counting the
// limiter's waits instead of timing them: pages of 100 events split into
// batches of 30, 30, 30 and 10 (at series boundaries), copied
// concurrently: the batch that waits last must wait for the 970 to 990
// events before it (1.94 s to 1.98 s, depending on which batch of the last
// page asks last), and every batch but the first must wait.
func TestRunTSHonoursTheRate(t *testing.T) {
	ctx := context.Background()
	from := &configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: filepath.Join(t.TempDir(), "ts.db")}}}
	to := &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: pgtest.Schema(t, "backfill_rate_")}}}
	src, dst, err := OpenTS(ctx, "m", from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	defer dst.Close()
	var events []ts.Event
	for i := range 1000 {
		events = append(events, ts.Event{Series: fmt.Sprintf("s%03d", i%100), Time: time.Unix(int64(i), 0), Data: []byte(`1`)})
	}
	if _, _, err := src.Append(ctx, "m", events); err != nil {
		t.Fatal(err)
	}
	still := time.Unix(1e9, 0)
	var mu sync.Mutex
	var waits int
	var longest time.Duration
	p, err := RunTS(ctx, TSOptions{Namespace: "m", From: src, To: dst, Rate: 500, PageSize: 100, Workers: 4,
		Now: func() time.Time { return still },
		sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits++
			longest = max(longest, d)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1000 events in 40 batches at 500/s: %d limiter waits, the last batch starts after %s", waits, longest)
	if p.Copied != 1000 {
		t.Errorf("copied %d of 1000", p.Copied)
	}
	if waits != 39 || longest < 1940*time.Millisecond || longest > 1980*time.Millisecond {
		t.Errorf("limiter waited %d times, at most %s; want 39 waits (every batch after the first), the last 1.94s to 1.98s after the start", waits, longest)
	}
}

func TestSplitCutsOnlyBetweenSeries(t *testing.T) {
	page := func(series ...string) []ts.Event {
		var out []ts.Event
		for _, s := range series {
			out = append(out, ts.Event{Series: s})
		}
		return out
	}
	sizes := func(batches [][]ts.Event) []int {
		var out []int
		for _, b := range batches {
			out = append(out, len(b))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		events []ts.Event
		n      int
		want   []int
	}{
		{"empty", nil, 4, nil},
		{"one series stays one batch", page("a", "a", "a", "a", "a", "a", "a", "a"), 4, []int{8}},
		{"a batch per series", page("a", "a", "b", "b", "c", "c", "d", "d"), 4, []int{2, 2, 2, 2}},
		{"small series gather", page("a", "b", "c", "d", "e", "f", "g", "h"), 2, []int{4, 4}},
		{"a long series joins the batch it starts in", page("a", "b", "b", "b", "b", "b", "c", "d"), 4, []int{6, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sizes(split(tc.events, tc.n)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("split into %v, want %v", got, tc.want)
			}
		})
	}
}
