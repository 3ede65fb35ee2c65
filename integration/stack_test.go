package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	_ "github.com/prism-gw/prism/backends/graph/neptune"
	_ "github.com/prism-gw/prism/backends/graph/postgres"
	_ "github.com/prism-gw/prism/backends/graph/sqlite"
	"github.com/prism-gw/prism/backends/kv/cache"
	_ "github.com/prism-gw/prism/backends/kv/postgres"
	_ "github.com/prism-gw/prism/backends/kv/sqlite"
	_ "github.com/prism-gw/prism/backends/ts/kafka"
	_ "github.com/prism-gw/prism/backends/ts/nats"
	_ "github.com/prism-gw/prism/backends/ts/postgres"
	_ "github.com/prism-gw/prism/backends/ts/sqlite"
	"github.com/prism-gw/prism/envoy/devedge"
	"github.com/prism-gw/prism/extproc"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// stack is the real data path of a test: an ext_proc gRPC server on a
// loopback port and a dev edge in front of it.
type stack struct {
	edgeURL string
	client  extprocv3.ExternalProcessorClient
	server  *extproc.Server
}

// startStack serves the given config through the real gRPC protocol.
func startStack(t testing.TB, backends []*configv1.Backend, namespaces []*configv1.Namespace) *stack {
	return startStackWith(t, stackOptions{}, backends, namespaces)
}

// stackOptions vary the stack of a test.
type stackOptions struct {
	edge    devedge.Options
	cache   *cache.Client
	metrics prometheus.Registerer
}

// startStackWith is startStack with options.
func startStackWith(t testing.TB, opts stackOptions, backends []*configv1.Backend, namespaces []*configv1.Namespace) *stack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := extproc.NewServer(extproc.Options{Logger: log, Cache: opts.cache, Metrics: opts.metrics})
	if err := srv.Apply(context.Background(), &configv1.DevConfig{Backends: backends, Namespaces: namespaces}); err != nil {
		t.Fatalf("applying config: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	extprocv3.RegisterExternalProcessorServer(g, srv)
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	client := extprocv3.NewExternalProcessorClient(conn)
	opts.edge.Logger = log
	edge := httptest.NewServer(devedge.New(client, opts.edge))
	t.Cleanup(func() {
		edge.Close()
		conn.Close()
		g.Stop()
		srv.Close()
	})
	return &stack{edgeURL: edge.URL, client: client, server: srv}
}

func sqliteBackend(t testing.TB, name string) *configv1.Backend {
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Sqlite{
		Sqlite: &configv1.Backend_SQLiteOptions{Path: filepath.Join(t.TempDir(), "kv.db")},
	}}
}

// postgresDSN is the test database; PRISM_TEST_POSTGRES overrides it.
func postgresDSN() string {
	if dsn := os.Getenv("PRISM_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// postgresBackend makes a schema of its own for this test and a backend
// that uses it, through addr when given (a proxy) or directly.
func postgresBackend(t testing.TB, name, addr string) *configv1.Backend {
	t.Helper()
	if os.Getenv("PRISM_SKIP_POSTGRES") == "1" {
		t.Skip("PRISM_SKIP_POSTGRES=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgresDSN())
	if err != nil {
		t.Fatalf("postgres at %s is required (make services starts it): %v", postgresDSN(), err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("it_%d_%d", time.Now().UnixNano(), os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, postgresDSN()); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	cfg, err := pgx.ParseConfig(postgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	host := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	if addr != "" {
		host = addr
	}
	dsn := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&search_path=%s&connect_timeout=2", cfg.User, host, cfg.Database, schema)
	return &configv1.Backend{Name: name, Driver: &configv1.Backend_Postgres{
		Postgres: &configv1.Backend_PostgresOptions{Dsn: dsn},
	}}
}

func kvNamespace(name, backend string, timeout time.Duration) *configv1.Namespace {
	ns := &configv1.Namespace{Namespace: name, Abstraction: configv1.Abstraction_KEYVALUE, Backend: backend}
	if timeout > 0 {
		ns.Limits = &configv1.Limits{RequestTimeout: durationpb.New(timeout)}
	}
	return ns
}

// tcpProxy forwards loopback connections to a target and can be cut, so a
// test can take "the database" away without touching the shared server.
type tcpProxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() { lis.Close(); p.setCut(true) })
	return p
}

func (p *tcpProxy) addr() string { return p.lis.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// setCut cuts (closing every open connection) or restores the proxy.
func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]struct{}{}
	}
}

// redisCache connects the cache client to the test Redis under a key prefix
// of this test's own, deleted at cleanup.
func redisCache(t *testing.T) *cache.Client {
	if os.Getenv("PRISM_SKIP_REDIS") == "1" {
		t.Skip("PRISM_SKIP_REDIS=1")
	}
	addr := os.Getenv("PRISM_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(cache.RedisOptions(addr))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s is required (make services starts it): %v", addr, err)
	}
	prefix := fmt.Sprintf("prism-it-%d:", time.Now().UnixNano())
	cc := cache.NewClient(rdb, cache.ClientOptions{Prefix: prefix})
	t.Cleanup(func() {
		cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return cc
}
