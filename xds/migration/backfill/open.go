package backfill

import (
	"context"
	"fmt"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/ts"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

// Open opens the two ends of a migration from their backend configs, with
// the same driver and DSN extproc uses. The target must be a kv.Replica.
// The drivers must be registered by the binary (blank imports).
func Open(ctx context.Context, from, to *configv1.Backend) (kv.Store, kv.Replica, error) {
	src, err := open(ctx, from)
	if err != nil {
		return nil, nil, err
	}
	dst, err := open(ctx, to)
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	rep, ok := dst.(kv.Replica)
	if !ok {
		src.Close()
		dst.Close()
		return nil, nil, fmt.Errorf("backend %s (%s) cannot be a migration target: its driver does not implement kv.Replica", to.GetName(), config.DriverName(to))
	}
	return src, rep, nil
}

func open(ctx context.Context, b *configv1.Backend) (kv.Store, error) {
	driver, dsn, err := config.DriverDSN(b)
	if err != nil {
		return nil, err
	}
	s, err := kv.Open(ctx, driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", b.GetName(), err)
	}
	return s, nil
}

// OpenTS opens the two ends of a TimeSeries migration of ns from their
// backend configs, as extproc does, and provisions ns in both. Both must be
// ts.Replica: the copy keeps positions, and the handover seals either one.
// The namespace gets no options: the SQL drivers keep them in memory, and
// a handle that only copies or seals should not sweep by retention.
func OpenTS(ctx context.Context, ns string, from, to *configv1.Backend) (src, dst ts.Replica, err error) {
	if src, err = openTS(ctx, ns, from); err != nil {
		return nil, nil, err
	}
	if dst, err = openTS(ctx, ns, to); err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, dst, nil
}

func openTS(ctx context.Context, ns string, b *configv1.Backend) (ts.Replica, error) {
	driver, dsn, err := config.DriverDSN(b)
	if err != nil {
		return nil, err
	}
	s, err := ts.Open(ctx, driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", b.GetName(), err)
	}
	rep, ok := s.(ts.Replica)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("backend %s (%s) cannot take part in a timeseries migration: its driver does not implement ts.Replica", b.GetName(), driver)
	}
	if err := rep.EnsureNamespace(ctx, ns, ts.NamespaceOptions{}); err != nil {
		rep.Close()
		return nil, fmt.Errorf("backend %s: %w", b.GetName(), err)
	}
	return rep, nil
}
