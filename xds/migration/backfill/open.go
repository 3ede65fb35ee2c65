package backfill

import (
	"context"
	"fmt"

	"github.com/prism-gw/prism/backends/kv"
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
