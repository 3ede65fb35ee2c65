package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// Seal's floor is the largest position the file ever gave, also when the
// events holding it are gone, and the seal is in the file: another process
// on it cannot append either.
func TestSealFloorCoversDeletedPositionsAndHoldsForOtherProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ts.db")
	a, b := openPath(t, path, Options{}), openPath(t, path, Options{})
	ctx := context.Background()
	for _, s := range []*Store{a, b} {
		for _, ns := range []string{"ns", "gone"} {
			if err := s.EnsureNamespace(ctx, ns, ts.NamespaceOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := a.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	gone, _, err := a.AppendEvents(ctx, "gone", []ts.Event{{Series: "s", Time: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.DropNamespace(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	floor, err := a.Seal(ctx, "ns")
	if err != nil || floor < gone[0].Seq {
		t.Fatalf("Seal = %d, %v; want at least %d, the position of a deleted event", floor, err, gone[0].Seq)
	}
	if _, _, err := b.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); !errors.Is(err, ts.ErrSealed) {
		t.Fatalf("Append by another process after Seal: %v, want ts.ErrSealed", err)
	}
	if again, err := b.Seal(ctx, "ns"); err != nil || again != floor {
		t.Fatalf("Seal by another process = %d, %v; want the same floor %d", again, err, floor)
	}
	if err := b.Unseal(ctx, "ns", floor+5); err != nil {
		t.Fatal(err)
	}
	out, _, err := a.AppendEvents(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}})
	if err != nil || out[0].Seq <= floor+5 {
		t.Fatalf("AppendEvents after another process's Unseal(%d) = %+v, %v", floor+5, out, err)
	}
}

// A copy whose position another series holds is moved, and only once:
// repeated, it is recognised by its position in its source even without
// an id; in a batch, its second occurrence too.
func TestMovedCopyIsStoredOnce(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	held, _, err := s.AppendEvents(ctx, "ns", []ts.Event{{Series: "a", Time: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	cp := ts.Event{Series: "b", Time: time.Now(), Seq: held[0].Seq} // as postgres numbers series b
	for i, batch := range [][]ts.Event{{cp, cp}, {cp}} {
		stored, moved, err := s.Copy(ctx, "ns", batch)
		want := 1 - min(i, 1)
		if err != nil || stored != want || moved != want {
			t.Fatalf("Copy %d of an event at a position series a holds = %d stored, %d moved, %v; want %d, %d", i, stored, moved, err, want, want)
		}
	}
	p, err := s.Query(ctx, "ns", ts.QueryArgs{Series: "b"})
	if err != nil || len(p.Events) != 1 || p.Events[0].Seq <= held[0].Seq {
		t.Fatalf("series b = %+v, %v; want the copy once, after every position", p.Events, err)
	}
	// Dropped with its namespace: a re-created one copies it afresh.
	if err := s.DropNamespace(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if stored, moved, err := s.Copy(ctx, "ns", []ts.Event{cp}); err != nil || stored != 1 || moved != 0 {
		t.Fatalf("Copy into the re-created namespace = %d stored, %d moved, %v; want 1, 0 (its position is free now)", stored, moved, err)
	}
}
