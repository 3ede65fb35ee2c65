// Package report carries extproc nodes' migration counters to the control
// plane: one unary gRPC method, prism.config.v1.Reports/Report, served next
// to ADS on the control plane's gRPC port. A node sends its cumulative
// counters periodically; the control plane keeps the latest per node and
// sums them for the promotion gate.
package report

import (
	"context"

	"google.golang.org/grpc"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Method is the full gRPC method name.
const Method = "/prism.config.v1.Reports/Report"

// Sink receives reports on the control plane.
type Sink interface {
	Report(ctx context.Context, r *configv1.MigrationReport) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, r *configv1.MigrationReport) error

// Report implements Sink.
func (f SinkFunc) Report(ctx context.Context, r *configv1.MigrationReport) error { return f(ctx, r) }

// Register serves the Reports service on s.
func Register(s grpc.ServiceRegistrar, sink Sink) {
	s.RegisterService(&serviceDesc, sink)
}

// Send sends one report over conn (the node's connection to the control plane).
func Send(ctx context.Context, conn grpc.ClientConnInterface, r *configv1.MigrationReport) error {
	return conn.Invoke(ctx, Method, r, new(configv1.MigrationReportAck))
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "prism.config.v1.Reports",
	HandlerType: (*Sink)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Report",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(configv1.MigrationReport)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				if err := srv.(Sink).Report(ctx, req.(*configv1.MigrationReport)); err != nil {
					return nil, err
				}
				return new(configv1.MigrationReportAck), nil
			}
			if interceptor == nil {
				return call(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: Method}, call)
		},
	}},
	Metadata: "prism/config/v1/config.proto",
}
