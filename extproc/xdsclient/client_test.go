package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/resource"
)

// TestFollowsTheControlPlane: the first config is applied backends first,
// then every change — a new namespace, a deletion — arrives and the node is
// reported in sync for every type.
func TestFollowsTheControlPlane(t *testing.T) {
	cp := newControlPlane(t)
	cp.put(sqliteBackend("lite", "/data/lite.db"), kvNamespace("orders", "lite"))
	rec := &recorder{}
	c := runClient(t, rec, Options{Addr: cp.addr, NodeID: "ep-1"})
	waitReady(t, c)

	rec.mu.Lock()
	first := slices.Clone(rec.calls[0])
	rec.mu.Unlock()
	if !slices.Equal(first, []string{"b:lite"}) {
		t.Errorf("first Apply = %v, want the backends alone (Backend is subscribed and applied first)", first)
	}
	if got := rec.current(); !slices.Equal(got, []string{"b:lite", "n:orders"}) {
		t.Fatalf("config in force when ready = %v, want [b:lite n:orders]", got)
	}
	n, ok := cp.node("ep-1")
	if !ok || n.Cluster != resource.ClusterExtproc || !n.Connected {
		t.Fatalf("node ep-1 as the control plane sees it: %+v", n)
	}
	waitFor(t, "every type in sync", func() bool {
		n, _ := cp.node("ep-1")
		return len(n.Types) == 4 && !slices.ContainsFunc(n.Types, func(ts serverTypeStatus) bool { return !ts.InSync })
	})

	cp.put(kvNamespace("payments", "lite"))
	waitFor(t, "payments applied", func() bool {
		return slices.Equal(rec.current(), []string{"b:lite", "n:orders", "n:payments"})
	})
	cp.update(func(s *desired.State) error { s.Delete(desired.Namespace, "orders"); return nil })
	waitFor(t, "orders removed", func() bool {
		return slices.Equal(rec.current(), []string{"b:lite", "n:payments"})
	})
}

// TestRejectedConfigIsNackedAndAFixAppliesIt: a config the Applier refuses
// is NACKed with its reason, visible in the control plane's node status,
// while the previous config stays in force. Fixing the backend — another
// type than the rejected namespace — brings the namespace into force, and
// the node is in sync again.
func TestRejectedConfigIsNackedAndAFixAppliesIt(t *testing.T) {
	cp := newControlPlane(t)
	cp.put(sqliteBackend("lite", "/data/lite.db"), kvNamespace("orders", "lite"))
	rec := &recorder{}
	rec.setFail(func(backends []*configv1.Backend, namespaces []*configv1.Namespace) error {
		for _, n := range namespaces {
			for _, b := range backends {
				if b.GetName() == n.GetBackend() && b.GetSqlite().GetPath() == "/broken" {
					return fmt.Errorf("namespace %s: backend %s cannot be opened", n.GetNamespace(), b.GetName())
				}
			}
		}
		return nil
	})
	c := runClient(t, rec, Options{Addr: cp.addr, NodeID: "ep-1"})
	waitReady(t, c)
	calls := rec.count()

	cp.put(sqliteBackend("flaky", "/broken"), kvNamespace("reports", "flaky"))
	waitFor(t, "a NACK of the Namespace type", func() bool {
		return cp.typeStatus("ep-1", resource.NamespaceType).LastNack != nil
	})
	ts := cp.typeStatus("ep-1", resource.NamespaceType)
	if want := "namespace reports: backend flaky cannot be opened"; ts.LastNack.Error != want || ts.InSync {
		t.Fatalf("Namespace status after the rejection: %+v nack %+v; want out of sync with %q", ts, ts.LastNack, want)
	}
	// The backend came first and alone, unused, it was accepted; the
	// namespace that uses it was not.
	if got, want := rec.current(), []string{"b:flaky", "b:lite", "n:orders"}; !slices.Equal(got, want) || rec.count() != calls+1 {
		t.Fatalf("config in force after the rejection = %v after %d more calls, want %v after 1", got, rec.count()-calls, want)
	}

	cp.put(sqliteBackend("flaky", "/data/flaky.db"))
	waitFor(t, "reports in force once its backend is fixed", func() bool {
		return slices.Equal(rec.current(), []string{"b:flaky", "b:lite", "n:orders", "n:reports"})
	})
	waitFor(t, "the Namespace type back in sync, its NACK kept as history", func() bool {
		ts := cp.typeStatus("ep-1", resource.NamespaceType)
		return ts.InSync && ts.LastNack != nil
	})
}

// TestRejectedConfigIsRetried: a refusal that passes (a database coming
// back) is applied on retry without any change on the control plane.
func TestRejectedConfigIsRetried(t *testing.T) {
	cp := newControlPlane(t)
	cp.put(sqliteBackend("lite", "/data/lite.db"))
	rec := &recorder{}
	var refusals atomic.Int32
	rec.setFail(func(_ []*configv1.Backend, namespaces []*configv1.Namespace) error {
		if len(namespaces) > 0 && refusals.Add(1) <= 2 {
			return errors.New("database unavailable")
		}
		return nil
	})
	c := runClient(t, rec, Options{Addr: cp.addr, NodeID: "ep-1", RetryInterval: 20 * time.Millisecond})
	waitReady(t, c)
	cp.put(kvNamespace("orders", "lite"))
	waitFor(t, "orders applied on retry", func() bool { return slices.Equal(rec.current(), []string{"b:lite", "n:orders"}) })
	waitFor(t, "the Namespace type in sync", func() bool {
		ts := cp.typeStatus("ep-1", resource.NamespaceType)
		return ts.InSync && ts.LastNack != nil && ts.LastNack.Error == "database unavailable"
	})
}

// TestOutageKeepsConfigAndReconnectSendsOnlyChanges: while the control
// plane is down nothing is applied (the config stays in force); on
// reconnect the client announces its versions, so unchanged resources are
// not sent again, and a deletion made meanwhile still arrives.
func TestOutageKeepsConfigAndReconnectSendsOnlyChanges(t *testing.T) {
	cp := newControlPlane(t)
	cp.put(sqliteBackend("lite", "/data/lite.db"), kvNamespace("orders", "lite"), kvNamespace("payments", "lite"))
	rec := &recorder{}
	c := runClient(t, rec, Options{Addr: cp.addr, NodeID: "ep-1"})
	waitReady(t, c)
	calls := rec.count()

	cp.shutdown()
	time.Sleep(300 * time.Millisecond) // a few reconnect attempts
	if rec.count() != calls {
		t.Fatalf("Apply was called %d times while the control plane was down; the config in force must stay", rec.count()-calls)
	}

	// Unchanged state: nothing is resent, nothing applied.
	cp.sent.Store(0)
	cp.start()
	waitFor(t, "the node connected again and in sync", func() bool {
		n, ok := cp.node("ep-1")
		return ok && n.Connected && len(n.Types) == 4 && !slices.ContainsFunc(n.Types, func(ts serverTypeStatus) bool { return !ts.InSync })
	})
	if n := cp.sent.Load(); n != 0 {
		t.Errorf("%d resources sent again after a reconnect with nothing changed, want 0", n)
	}
	if rec.count() != calls {
		t.Errorf("Apply called %d times after a reconnect with nothing changed, want 0", rec.count()-calls)
	}

	// A deletion while the client is away arrives as removed_resources.
	cp.shutdown()
	cp.start()
	cp.update(func(s *desired.State) error { s.Delete(desired.Namespace, "payments"); return nil })
	waitFor(t, "payments removed", func() bool { return slices.Equal(rec.current(), []string{"b:lite", "n:orders"}) })
}

// TestStartsFromCacheWhenControlPlaneIsDown: a client that applied a
// config wrote it to the cache; a new client whose control plane refuses
// connections serves the cache at once, then follows the control plane
// when it comes, sent only what changed.
func TestStartsFromCacheWhenControlPlaneIsDown(t *testing.T) {
	cp := newControlPlane(t)
	cp.put(sqliteBackend("lite", "/data/lite.db"), kvNamespace("orders", "lite"))
	cachePath := filepath.Join(t.TempDir(), "state", "xds-cache.json")
	first := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	c1, err := New(first, Options{Addr: cp.addr, NodeID: "ep-1", CachePath: cachePath, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c1.Run(ctx) }()
	waitReady(t, c1)
	cancel()
	<-done
	cp.shutdown()

	second := &recorder{}
	start := time.Now()
	c2 := runClient(t, second, Options{Addr: cp.addr, NodeID: "ep-2", CachePath: cachePath, InitialTimeout: time.Minute})
	waitReady(t, c2)
	if got := second.current(); !slices.Equal(got, []string{"b:lite", "n:orders"}) {
		t.Fatalf("config from the cache = %v, want [b:lite n:orders]", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ready after %v: a refused connection should not wait for InitialTimeout", d)
	}

	cp.sent.Store(0)
	cp.start()
	cp.put(kvNamespace("payments", "lite"))
	waitFor(t, "payments applied", func() bool {
		return slices.Equal(second.current(), []string{"b:lite", "n:orders", "n:payments"})
	})
	waitFor(t, "ep-2 in sync", func() bool { return cp.typeStatus("ep-2", resource.NamespaceType).InSync })
	if n := cp.sent.Load(); n != 1 {
		t.Errorf("%d resources sent to a client started from the cache, want 1 (payments)", n)
	}
}

// stallingADS accepts ADS streams and never answers.
type stallingADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
}

func (stallingADS) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	<-s.Context().Done()
	return nil
}

// TestFallsBackToCacheWhenControlPlaneStalls: a control plane that accepts
// the stream but sends nothing gets InitialTimeout, then the cache serves.
func TestFallsBackToCacheWhenControlPlaneStalls(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, stallingADS{})
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	cachePath := filepath.Join(t.TempDir(), "xds-cache.json")
	cached := set{
		resource.BackendType:   {"lite": {version: "v1", msg: sqliteBackend("lite", "/data/lite.db")}},
		resource.NamespaceType: {"orders": {version: "v1", msg: kvNamespace("orders", "lite")}},
	}
	if err := saveCache(cachePath, "ep-0", cached, time.Now()); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := runClient(t, rec, Options{Addr: lis.Addr().String(), NodeID: "ep-1", CachePath: cachePath, InitialTimeout: 100 * time.Millisecond})
	waitReady(t, c)
	if got := rec.current(); !slices.Equal(got, []string{"b:lite", "n:orders"}) {
		t.Fatalf("config after the initial timeout = %v, want the cache's [b:lite n:orders]", got)
	}
}

// TestNoConfigWithoutControlPlaneOrCache: with neither, the client is not
// ready — extproc must not take traffic it would answer with 404s.
func TestNoConfigWithoutControlPlaneOrCache(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	rec := &recorder{}
	c := runClient(t, rec, Options{Addr: addr, NodeID: "ep-1", CachePath: filepath.Join(t.TempDir(), "none.json"), InitialTimeout: 50 * time.Millisecond})
	select {
	case <-c.Ready():
		t.Fatal("ready without a control plane or a cache")
	case <-time.After(300 * time.Millisecond):
	}
	if rec.count() != 0 {
		t.Fatalf("Apply called %d times without any config", rec.count())
	}
}

func TestNewNeedsAddressAndNodeID(t *testing.T) {
	for _, opts := range []Options{{NodeID: "x"}, {Addr: "127.0.0.1:1"}} {
		if _, err := New(&recorder{}, opts); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("New(%+v) = %v, want an error naming what is empty", opts, err)
		}
	}
}
