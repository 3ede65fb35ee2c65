package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/prism-gw/prism/xds/server"
)

// serveXDSMetrics exports the control plane's xDS metrics: on the process's
// registry when it has one (prism dev, whose /metrics then shows both
// extproc and xds), else on --metrics of prism xds.
func serveXDSMetrics(ctx context.Context, g *errgroup.Group, o xdsOptions, srv *server.Server) error {
	if reg, ok := o.metrics.(prometheus.Registerer); ok && reg != nil {
		return srv.RegisterMetrics(reg)
	}
	if o.metricsAddr == "" {
		return nil
	}
	reg := newRegistry()
	if err := srv.RegisterMetrics(reg); err != nil {
		return err
	}
	g.Go(func() error { return serveMetrics(ctx, o.metricsAddr, reg, o.log) })
	return nil
}
