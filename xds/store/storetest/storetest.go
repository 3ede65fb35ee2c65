// Package storetest is the one test suite every desired-state store runs
// against a real database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/store"
)

// NewDB makes a fresh, empty database for one test and returns a function
// that opens a Store on it; calling it again opens another Store on the same
// database, as a restart or a second replica would. Stores are closed when
// the test ends.
type NewDB func(t *testing.T) (open func(t *testing.T) store.Store)

// Run runs the suite.
func Run(t *testing.T, newDB NewDB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"EmptyStoreHasVersionZero", testEmpty},
		{"UpdateStoresAndBumpsVersion", testUpdate},
		{"RestartLosesNothing", testRestart},
		{"NoopUpdateKeepsVersion", testNoop},
		{"FailedChangeWritesNothing", testFailedChange},
		{"InvalidStateIsRefused", testInvalid},
		{"DeleteBumpsVersion", testDelete},
		{"ConcurrentWritersLoseNoUpdate", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newDB(t)) })
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// sample is a state with one resource of every kind.
func sample() []proto.Message {
	enc := true
	return []proto.Message{
		&configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "/var/lib/prism/kv.db"}}},
		&configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "postgres://db/prism", MaxConns: 8}}},
		&configv1.ExtprocPool{Name: "blue", Endpoints: []string{"extproc-blue:9001"}, Weight: 90},
		&configv1.Policy{Name: "pii", Modules: map[string]string{"pii.rego": "package prism.pii\n"}},
		&configv1.Namespace{
			Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE, Backend: "lite",
			AccessPattern: configv1.AccessPattern_READ_HEAVY, EstimatedReadRps: 5000,
			Cache:  &configv1.Cache{Ttl: durationpb.New(30e9)},
			Schema: &configv1.Schema{Pii: []*configv1.PiiField{{Path: "email", Class: configv1.PiiClass_EMAIL, EncryptAtRest: &enc}}},
			Access: &configv1.Access{Owners: []string{"spiffe://prism.local/orders"}, Readers: []string{"spiffe://prism.local/support"}},
			Limits: &configv1.Limits{Rps: 200, MaxValueBytes: 4096, RequestTimeout: durationpb.New(2e9)},
		},
		&configv1.Migration{Namespace: "orders", From: "lite", To: "pg", Phase: configv1.Migration_SHADOW_WRITE, ReadPercent: 10, MismatchThreshold: 0.01, MinSample: 1000},
	}
}

func putAll(msgs ...proto.Message) func(*desired.State) error {
	return func(s *desired.State) error {
		for _, m := range msgs {
			if err := s.Put(m); err != nil {
				return err
			}
		}
		return nil
	}
}

func mustUpdate(t *testing.T, s store.Store, change func(*desired.State) error) *desired.State {
	t.Helper()
	st, _, err := s.Update(ctx(t), change)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return st
}

func mustLoad(t *testing.T, s store.Store) *desired.State {
	t.Helper()
	st, err := s.Load(ctx(t))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return st
}

func testEmpty(t *testing.T, open func(t *testing.T) store.Store) {
	st := mustLoad(t, open(t))
	if st.Version != 0 || !desired.Equal(st, desired.New()) {
		t.Fatalf("a new store holds version %d with %v, want version 0 and nothing", st.Version, st.DevConfig())
	}
}

func testUpdate(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	st, changed, err := s.Update(ctx(t), putAll(sample()...))
	if err != nil || !changed || st.Version != 1 {
		t.Fatalf("Update = version %d, changed %v, %v; want version 1, changed", st.GetVersion(), changed, err)
	}
	got := mustLoad(t, s)
	if got.Version != 1 || !desired.Equal(got, st) {
		t.Fatalf("Load after Update differs:\n got %v\nwant %v", got.DevConfig(), st.DevConfig())
	}
	for _, m := range sample() {
		k := kindOf(m)
		if g, ok := got.Get(k, desired.Name(m)); !ok || !proto.Equal(g, m) {
			t.Errorf("%s %s: stored %v, want %v", k, desired.Name(m), g, m)
		}
	}
	st = mustUpdate(t, s, putAll(&configv1.ExtprocPool{Name: "blue", Endpoints: []string{"extproc-blue:9001"}, Weight: 50}))
	if st.Version != 2 || st.Pools["blue"].GetWeight() != 50 {
		t.Fatalf("second Update: version %d, pool %v", st.Version, st.Pools["blue"])
	}
}

func testRestart(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	mustUpdate(t, s, putAll(sample()...))
	want := mustUpdate(t, s, func(st *desired.State) error {
		st.Delete(desired.Migration, "orders")
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := mustLoad(t, open(t))
	if got.Version != want.Version || !desired.Equal(got, want) {
		t.Fatalf("after reopening: version %d %v, want version %d %v", got.Version, got.DevConfig(), want.Version, want.DevConfig())
	}
}

func testNoop(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	mustUpdate(t, s, putAll(sample()...))
	st, changed, err := s.Update(ctx(t), putAll(sample()...))
	if err != nil || changed || st.Version != 1 {
		t.Fatalf("re-putting the same resources: version %d, changed %v, %v; want version 1 unchanged", st.GetVersion(), changed, err)
	}
}

var errRefused = errors.New("refused by the caller")

func testFailedChange(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	mustUpdate(t, s, putAll(sample()...))
	_, _, err := s.Update(ctx(t), func(st *desired.State) error {
		st.Delete(desired.Migration, "orders")
		return errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("Update returned %v, want the change's own error", err)
	}
	if st := mustLoad(t, s); st.Version != 1 || len(st.Migrations) != 1 {
		t.Fatalf("a failed change was written: version %d, migrations %v", st.Version, st.Migrations)
	}
}

func testInvalid(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	mustUpdate(t, s, putAll(sample()...))
	_, _, err := s.Update(ctx(t), func(st *desired.State) error {
		st.Delete(desired.Backend, "lite") // still used by namespace orders
		return nil
	})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Update to an invalid state returned %v, want ErrInvalid", err)
	}
	if st := mustLoad(t, s); st.Version != 1 || st.Backends["lite"] == nil {
		t.Fatalf("an invalid state was written: version %d", st.Version)
	}
}

func testDelete(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	mustUpdate(t, s, putAll(sample()...))
	st := mustUpdate(t, s, func(st *desired.State) error {
		st.Delete(desired.Migration, "orders")
		st.Delete(desired.Namespace, "orders")
		st.Delete(desired.Backend, "pg")
		return nil
	})
	got := mustLoad(t, s)
	if st.Version != 2 || got.Version != 2 || len(got.Namespaces) != 0 || got.Backends["pg"] != nil || got.Backends["lite"] == nil {
		t.Fatalf("after delete: version %d/%d, state %v", st.Version, got.Version, got.DevConfig())
	}
}

// testConcurrent runs read-modify-write updates from two Stores on the same
// database (two replicas) at once; every increment must survive.
func testConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	a, b := open(t), open(t)
	mustUpdate(t, a, putAll(&configv1.ExtprocPool{Name: "p", Endpoints: []string{"e:1"}, Weight: 1}))
	const perStore = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore)
	for _, s := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perStore {
				_, _, err := s.Update(context.Background(), func(st *desired.State) error {
					p := proto.Clone(st.Pools["p"]).(*configv1.ExtprocPool)
					p.Weight++
					return st.Put(p)
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Update: %v", err)
	}
	st := mustLoad(t, a)
	if got := st.Pools["p"].GetWeight(); got != 1+2*perStore || st.Version != 1+2*perStore {
		t.Fatalf("after %d concurrent increments of 1: weight %d at version %d, want %d at version %d", 2*perStore, got, st.Version, 1+2*perStore, 1+2*perStore)
	}
}

func kindOf(m proto.Message) desired.Kind {
	switch m.(type) {
	case *configv1.Backend:
		return desired.Backend
	case *configv1.ExtprocPool:
		return desired.Pool
	case *configv1.Policy:
		return desired.Policy
	case *configv1.Namespace:
		return desired.Namespace
	case *configv1.Migration:
		return desired.Migration
	}
	panic(fmt.Sprintf("no kind for %T", m))
}
