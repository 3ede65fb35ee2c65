package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/prism-gw/prism/xds/server"
)

// serveXDSMetrics exports the control plane's xDS metrics (and more, e.g.
// the migration handovers): on the process's
// registry when it has one (prism dev, whose /metrics then shows both
// extproc and xds), else on --metrics of prism xds.
func serveXDSMetrics(ctx context.Context, g *errgroup.Group, o xdsOptions, srv *server.Server, more ...prometheus.Collector) error {
	register := func(reg prometheus.Registerer) error {
		for _, c := range more {
			if err := reg.Register(c); err != nil {
				return err
			}
		}
		return srv.RegisterMetrics(reg)
	}
	if reg, ok := o.metrics.(prometheus.Registerer); ok && reg != nil {
		return register(reg)
	}
	if o.metricsAddr == "" {
		return nil
	}
	reg := newRegistry()
	if err := register(reg); err != nil {
		return err
	}
	g.Go(func() error { return serveMetrics(ctx, o.metricsAddr, reg, o.log) })
	return nil
}
