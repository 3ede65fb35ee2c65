// Package provision makes a namespace's capacity plan (package planner)
// real on its backend and reads back what is there: Kafka topics and their
// partitions (kadm), JetStream stream limits (nats.go jetstream), Postgres
// tables and secondary indexes (pgx, read back from pg_catalog).
//
// It runs in the control plane when a namespace is applied through the
// admin API (PUT /v1/admin/namespaces/{ns}): the backends' addresses are in
// the desired state there, and the storage exists before any extproc is told
// about the namespace. Objects are created the way the drivers create them —
// by the drivers themselves (EnsureNamespace, the Postgres drivers' schema)
// — and then sized: partitions grown, stream limits set, indexes added. The
// drivers' own EnsureNamespace on each extproc stays as it was and keeps
// what was provisioned. Nothing here deletes data: partitions and indexes
// are never removed and limits never lowered (planner.Diff).
package provision

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	natsts "github.com/prism-gw/prism/backends/ts/nats"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/planner"
)

// Provisioner reads and changes backends. The zero value is not usable; use
// New.
type Provisioner struct {
	log     *slog.Logger
	timeout time.Duration
}

// Options configure a Provisioner.
type Options struct {
	Logger *slog.Logger
	// Timeout bounds the work on one backend. Default 20s.
	Timeout time.Duration
}

// New makes a Provisioner.
func New(o Options) *Provisioner {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	return &Provisioner{log: o.Logger, timeout: o.Timeout}
}

// Observe reads what backend b has of the storage want describes.
func (p *Provisioner) Observe(ctx context.Context, b *configv1.Backend, want planner.Storage) (planner.Observed, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var have planner.Observed
	var err error
	switch {
	case want.Topic != nil:
		have, err = observeTopic(ctx, b, want.Topic)
	case want.Stream != nil:
		have, err = observeStream(ctx, b, want.Stream)
	case want.Table != nil:
		have, err = observeTable(ctx, b, want.Namespace, want.Table)
	}
	if err != nil {
		return have, fmt.Errorf("provision: reading %s of backend %s: %w", want.Namespace, b.GetName(), err)
	}
	return have, nil
}

// Apply creates and grows the storage of apply (the second result of
// planner.Diff, which never shrinks anything) on backend b. It is
// idempotent.
func (p *Provisioner) Apply(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, apply planner.Storage) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
	var err error
	switch {
	case apply.Topic != nil:
		err = applyTopic(ctx, ns, b, apply.Topic)
	case apply.Stream != nil:
		err = applyStream(ctx, ns, b, apply.Stream)
	case apply.Table != nil:
		err = applyTable(ctx, ns, b, apply.Table)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("provision: namespace %s on backend %s: %w", apply.Namespace, b.GetName(), err)
	}
	p.log.Info("provisioned", "namespace", apply.Namespace, "backend", b.GetName(), "driver", apply.Driver, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Resolve fixes the object names of a plan to those the backend's drivers
// use: a NATS URL may set its own stream_prefix.
func Resolve(b *configv1.Backend, st *planner.Storage) error {
	if st.Stream == nil {
		return nil
	}
	o, err := natsts.ParseDSN(b.GetNats().GetUrl())
	if err != nil {
		return fmt.Errorf("provision: backend %s: %w", b.GetName(), err)
	}
	if o.StreamPrefix != "" {
		st.Stream.Name = o.StreamPrefix + st.Namespace
	}
	return nil
}

// retention is the options extproc gives the TimeSeries drivers for ns
// (extproc/state.go): the retention.
func retention(ns *configv1.Namespace) time.Duration {
	return time.Duration(ns.GetRetentionDays()) * 24 * time.Hour
}

// Plan computes what ns needs on backend b (planner.Plan, with the
// drivers' object names), reads what b has, and returns the steps that
// would make it so and the storage to Apply. A *planner.FieldError means
// the declaration is refused; any other error that b could not be read.
func (p *Provisioner) Plan(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, o planner.DiffOptions) ([]planner.Step, planner.Storage, error) {
	want, err := planner.Plan(ns, b, planner.DefaultOptions())
	if err != nil {
		return nil, want, err
	}
	if err := Resolve(b, &want); err != nil {
		return nil, want, err
	}
	have, err := p.Observe(ctx, b, want)
	if err != nil {
		return nil, want, err
	}
	steps, apply := planner.Diff(want, have, o)
	return steps, apply, nil
}
