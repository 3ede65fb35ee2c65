package extproc

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/prism-gw/prism/xds/report"
)

// DefaultReportInterval is how often a node reports its migration counters.
const DefaultReportInterval = 2 * time.Second

// ReportMigrations sends this node's migration counters to the control
// plane at addr (its ADS address) every interval until ctx ends. Nothing is
// sent while no namespace migrates. Counters are cumulative, so a failed
// report is simply superseded by the next one.
func (s *Server) ReportMigrations(ctx context.Context, addr, node string, interval time.Duration) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	return s.reportLoop(ctx, conn, node, interval)
}

func (s *Server) reportLoop(ctx context.Context, conn grpc.ClientConnInterface, node string, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r := s.MigrationReport(node)
		if len(r.GetMigrations()) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := report.Send(rctx, conn, r)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.log.Warn("migration report not delivered; the control plane's promotion gate sees older counts", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("migration reports delivered again")
			failing = false
		}
	}
}
