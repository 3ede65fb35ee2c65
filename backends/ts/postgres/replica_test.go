package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/internal/pgtest"
)

// delayProxy forwards TCP connections to target and holds every chunk the
// server sends for delay, as a distant server would: each round trip then
// costs at least delay, so latencies count round trips.
func delayProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); io.Copy(server, client); server.Close() }()
			go func() { defer conns.Done(); delayCopy(client, server, delay); client.Close() }()
		}
	}()
	return ln.Addr().String()
}

// delayCopy copies src to dst, each chunk delay after it was read (chunks
// read close together are not delayed one after the other).
func delayCopy(dst io.Writer, src io.Reader, delay time.Duration) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 64<<10)
			n, err := src.Read(b)
			if n > 0 {
				ch <- chunk{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.b); err != nil {
			for range ch { // let the reader finish
			}
			return
		}
	}
}

// The seal lock statement is pipelined with the append's statements: an
// append of two series is one round trip, like a bare SELECT 1, and so are
// Seal and Copy.
func TestAppendSealAndCopyTakeOneRoundTrip(t *testing.T) {
	const delay = 40 * time.Millisecond
	u, err := url.Parse(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = delayProxy(t, u.Host, delay)
	s := openStore(t, u.String(), Options{SweepInterval: -1})
	ctx := context.Background()
	if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
		t.Fatal(err)
	}
	median := func(op func() error) time.Duration {
		t.Helper()
		if err := op(); err != nil { // prepares the statements
			t.Fatal(err)
		}
		var d []time.Duration
		for range 5 {
			start := time.Now()
			if err := op(); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	rtt := median(func() error { _, err := s.pool.Exec(ctx, "SELECT 1"); return err })
	batch := []ts.Event{{Series: "a", Time: time.Now()}, {Series: "b", Time: time.Now()}}
	appendTook := median(func() error { _, _, err := s.AppendEvents(ctx, "ns", batch); return err })
	seq := int64(1 << 20)
	copyTook := median(func() error {
		seq++
		_, _, err := s.Copy(ctx, "ns", []ts.Event{{Series: "c", Time: time.Now(), Seq: seq}, {Series: "d", Time: time.Now(), Seq: seq}})
		return err
	})
	sealTook := median(func() error { _, err := s.Seal(ctx, "ns"); return err })
	t.Logf("with %v added per round trip: SELECT 1 %v, AppendEvents of 2 series %v, Copy of 2 series %v, Seal %v", delay, rtt, appendTook, copyTook, sealTook)
	for name, d := range map[string]time.Duration{"AppendEvents": appendTook, "Copy": copyTook, "Seal": sealTook} {
		if d > rtt+delay/2 {
			t.Errorf("%s took %v where a round trip takes %v: more than one round trip", name, d, rtt)
		}
	}
}

// The seal check needs READ COMMITTED (a fresh snapshot after the lock);
// the store runs at it even when the DSN asks for more.
func TestStoreRunsAtReadCommittedWhateverTheDSNSays(t *testing.T) {
	dsn := pgtest.WithParam(t, testDSN(t), "default_transaction_isolation", "serializable")
	s := openStore(t, dsn, Options{})
	var level string
	if err := s.pool.QueryRow(context.Background(), "SHOW transaction_isolation").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "read committed" {
		t.Fatalf("transaction_isolation = %q with a DSN asking for serializable; want read committed", level)
	}
}

// A namespace sealed by one gateway is sealed for the others: the state is
// in the database, not in the store that sealed it.
func TestSealHoldsForEveryGateway(t *testing.T) {
	dsn := testDSN(t)
	a, b := openStore(t, dsn, Options{}), openStore(t, dsn, Options{})
	ctx := context.Background()
	for _, s := range []*Store{a, b} {
		if err := s.EnsureNamespace(ctx, "ns", ts.NamespaceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	in, _, err := b.AppendEvents(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now(), Data: json.RawMessage(`1`)}})
	if err != nil {
		t.Fatal(err)
	}
	floor, err := a.Seal(ctx, "ns")
	if err != nil || floor != in[0].Seq {
		t.Fatalf("Seal = %d, %v; want the other gateway's last position %d", floor, err, in[0].Seq)
	}
	if _, _, err := b.Append(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}}); !errors.Is(err, ts.ErrSealed) {
		t.Fatalf("Append through another gateway after Seal: %v, want ts.ErrSealed", err)
	}
	if err := b.Unseal(ctx, "ns", floor+10); err != nil {
		t.Fatal(err)
	}
	out, _, err := a.AppendEvents(ctx, "ns", []ts.Event{{Series: "s", Time: time.Now()}})
	if err != nil || out[0].Seq <= floor+10 {
		t.Fatalf("AppendEvents after another gateway's Unseal(%d) = %+v, %v", floor+10, out, err)
	}
}
