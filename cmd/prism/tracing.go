package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracingFlags configure the OTLP trace exporter. Tracing is off unless an
// endpoint is given (flag or OTEL_EXPORTER_OTLP_ENDPOINT): the data path
// then uses no tracer at all, at no cost.
type tracingFlags struct {
	endpoint string
	insecure bool
	sample   float64
	tp       *sdktrace.TracerProvider
}

func addTracingFlags(fs *flag.FlagSet) *tracingFlags {
	t := &tracingFlags{}
	fs.StringVar(&t.endpoint, "otlp-endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/gRPC endpoint of a trace collector (host:port or http(s)://host:port); empty: no tracing. Default $OTEL_EXPORTER_OTLP_ENDPOINT")
	fs.BoolVar(&t.insecure, "otlp-insecure", false, "with a host:port --otlp-endpoint: no TLS")
	fs.Float64Var(&t.sample, "trace-sample", 0.01, "fraction of requests without a sampled traceparent that start a trace (Envoy's sampled traces are always continued)")
	return t
}

// start makes the tracer provider, nil when tracing is off. The caller
// calls shutdown at exit to flush the last spans.
func (t *tracingFlags) start(ctx context.Context, log *slog.Logger, service string) (trace.TracerProvider, error) {
	if t.endpoint == "" {
		return nil, nil
	}
	if t.sample < 0 || t.sample > 1 {
		return nil, fmt.Errorf("--trace-sample must be within [0, 1], got %v", t.sample)
	}
	var opts []otlptracegrpc.Option
	if strings.Contains(t.endpoint, "://") {
		opts = append(opts, otlptracegrpc.WithEndpointURL(t.endpoint))
	} else {
		opts = append(opts, otlptracegrpc.WithEndpoint(t.endpoint))
		if t.insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	t.tp = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.sample))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	)
	log.Info("tracing on", "otlp_endpoint", t.endpoint, "sample", t.sample)
	return t.tp, nil
}

// shutdown flushes and stops the exporter.
func (t *tracingFlags) shutdown(log *slog.Logger) {
	if t.tp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		log.Warn("flushing traces", "err", err)
	}
}
