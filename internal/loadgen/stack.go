package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"runtime"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	_ "github.com/prism-gw/prism/backends/graph/postgres" // drivers the stack and the direct baseline open by name
	_ "github.com/prism-gw/prism/backends/graph/sqlite"
	_ "github.com/prism-gw/prism/backends/kv/postgres"
	_ "github.com/prism-gw/prism/backends/kv/sqlite"
	_ "github.com/prism-gw/prism/backends/ts/postgres"
	_ "github.com/prism-gw/prism/backends/ts/sqlite"
	"github.com/prism-gw/prism/extproc"
	"github.com/prism-gw/prism/extproc/audit"
	"github.com/prism-gw/prism/extproc/pii"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Namespaces of the in-process stack, one per abstraction, and the client
// identity that may use them when they have a PII schema.
const (
	BenchSubject = "spiffe://prism.local/bench"
	nsPrefix     = "bench-"
)

// Namespace is the namespace of the in-process stack serving an
// abstraction.
func Namespace(abstraction string, withPII bool) string {
	if withPII {
		return nsPrefix + abstraction + "-pii"
	}
	return nsPrefix + abstraction
}

// StackOptions configure an in-process stack.
type StackOptions struct {
	// Dir holds the SQLite file, the keyring and the audit log.
	Dir string
	// Driver is "sqlite" (default) or "postgres".
	Driver string
	// PostgresDSN is the database of the postgres driver.
	PostgresDSN string
	Logger      *slog.Logger
	// Metrics, when set, gets extproc's metrics.
	Metrics prometheus.Registerer
	// Server lets a caller set further extproc options (tracing...);
	// Logger, Metrics, Keyring and Audit are filled in by the stack.
	Server extproc.Options
}

// Stack is extproc serving on a loopback port, the way `prism extproc`
// serves Envoy, with namespaces for every abstraction with and without a
// PII schema.
type Stack struct {
	// Addr is the ext_proc gRPC address.
	Addr string
	// Driver and DSN are the backend's, for the direct baseline.
	Driver, DSN string
	Server      *extproc.Server
	grpc        *grpc.Server
	audit       *audit.FileLog
}

// StartStack starts extproc on one backend.
func StartStack(ctx context.Context, o StackOptions) (*Stack, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := &Stack{Driver: o.Driver}
	backend := &configv1.Backend{Name: "bench"}
	switch o.Driver {
	case "", "sqlite":
		st.Driver = "sqlite"
		st.DSN = filepath.Join(o.Dir, "bench.db")
		backend.Driver = &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: st.DSN}}
	case "postgres":
		if o.PostgresDSN == "" {
			return nil, errors.New("the postgres backend needs a DSN")
		}
		st.DSN = o.PostgresDSN
		backend.Driver = &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: st.DSN}}
	default:
		return nil, fmt.Errorf("unknown backend driver %q: want sqlite or postgres", o.Driver)
	}
	// A fixed KEK: bench data is throwaway, and a stable key lets a second
	// run read the first one's values.
	kek, err := pii.NewLocalKEK(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		return nil, err
	}
	al, err := audit.OpenFile(filepath.Join(o.Dir, "audit.log"))
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	st.audit = al
	opts := o.Server
	opts.Logger, opts.Metrics, opts.Audit = o.Logger, o.Metrics, al
	opts.Keyring = pii.NewKeyring(pii.NewFileKeyStore(filepath.Join(o.Dir, "keys.json")), kek)
	st.Server = extproc.NewServer(opts)

	var namespaces []*configv1.Namespace
	for _, a := range []configv1.Abstraction{configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES, configv1.Abstraction_GRAPH} {
		name := map[configv1.Abstraction]string{configv1.Abstraction_KEYVALUE: "kv", configv1.Abstraction_TIMESERIES: "ts", configv1.Abstraction_GRAPH: "graph"}[a]
		namespaces = append(namespaces,
			&configv1.Namespace{Namespace: Namespace(name, false), Abstraction: a, Backend: "bench"},
			&configv1.Namespace{Namespace: Namespace(name, true), Abstraction: a, Backend: "bench",
				Schema: &configv1.Schema{Pii: []*configv1.PiiField{{Path: "email", Class: configv1.PiiClass_EMAIL}}},
				Access: &configv1.Access{Owners: []string{BenchSubject}}})
	}
	if err := st.Server.Apply(ctx, &configv1.DevConfig{Backends: []*configv1.Backend{backend}, Namespaces: namespaces}); err != nil {
		st.Server.Close()
		al.Close()
		return nil, fmt.Errorf("applying the bench config: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Server.Close()
		al.Close()
		return nil, err
	}
	st.Addr = lis.Addr().String()
	st.grpc = newGRPCServer()
	extprocv3.RegisterExternalProcessorServer(st.grpc, st.Server)
	go st.grpc.Serve(lis)
	return st, nil
}

// newGRPCServer has the options of `prism extproc`'s server (stream
// workers too: without them, stack growth of each stream's new goroutine
// was a quarter of a KV get's CPU).
func newGRPCServer() *grpc.Server {
	return grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))*8),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
}

// Close stops the server and closes the backends.
func (s *Stack) Close() error {
	s.grpc.Stop()
	return errors.Join(s.Server.Close(), s.audit.Close())
}

// Floor is the no-op ext_proc server: it answers every data API request
// with a fixed ImmediateResponse, at request_headers when there is no body
// and at request_body otherwise — Prism's message pattern with none of its
// work. Its latency is the floor of the design on this machine.
type Floor struct {
	extprocv3.UnimplementedExternalProcessorServer
	Addr string
	grpc *grpc.Server
}

// StartFloor serves the no-op processor on a loopback port.
func StartFloor() (*Floor, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Floor{Addr: lis.Addr().String(), grpc: newGRPCServer()}
	extprocv3.RegisterExternalProcessorServer(f.grpc, f)
	go f.grpc.Serve(lis)
	return f, nil
}

// floorAnswer is built once: the floor does no per-request work.
var floorAnswer = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
	ImmediateResponse: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: 200}, Body: []byte("{}")},
}}

var floorContinue = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
	RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{}}}}

// Process answers one stream.
func (f *Floor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		msg, err := s.Recv()
		if err != nil {
			return nil
		}
		if h := msg.GetRequestHeaders(); h != nil && !h.GetEndOfStream() {
			if err := s.Send(floorContinue); err != nil {
				return err
			}
			continue
		}
		return s.Send(floorAnswer)
	}
}

// Close stops the floor server.
func (f *Floor) Close() error {
	f.grpc.Stop()
	return nil
}
