package backfill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Handover hands the assignment of event positions of a TimeSeries
// migration's namespace from one store to the other: forward it seals
// m.From (which waits for the appends in flight and returns the highest
// position From gave) and unseals m.To above that floor; reverse, for an
// abort, the other way round. It returns the floor. It is
// the control plane's admin.Handover hook; it opens its own handles to the
// two backends, so the seal must be (and is, in the SQL drivers) state of
// the database, not of a handle.
//
// When the unseal fails it unseals the sealed store again, so that one of
// the two keeps taking appends and the migration stays where it was.
func Handover(ctx context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (int64, error) {
	ns := m.GetNamespace()
	src, dst, err := OpenTS(ctx, ns, from, to)
	if err != nil {
		return 0, fmt.Errorf("handover of %s: %w", ns, err)
	}
	defer src.Close()
	defer dst.Close()
	sealed, unsealed := src, dst
	sealedName, unsealedName := from.GetName(), to.GetName()
	if reverse {
		sealed, unsealed = dst, src
		sealedName, unsealedName = unsealedName, sealedName
	}
	floor, err := sealed.Seal(ctx, ns)
	if err != nil {
		return 0, fmt.Errorf("handover of %s: seal %s: %w", ns, sealedName, err)
	}
	if err := unsealed.Unseal(ctx, ns, floor); err != nil {
		err = fmt.Errorf("handover of %s: unseal %s above %d: %w", ns, unsealedName, floor, err)
		if uerr := sealed.Unseal(ctx, ns, floor); uerr != nil {
			return 0, errors.Join(err, fmt.Errorf("and unsealing %s again failed, so neither takes appends: %w", sealedName, uerr))
		}
		return 0, fmt.Errorf("%w (%s takes the appends again)", err, sealedName)
	}
	return floor, nil
}

// HandoverMetrics counts and times handovers: a Prometheus collector for
// the control plane's /metrics.
type HandoverMetrics struct {
	total   *prometheus.CounterVec
	seconds prometheus.Histogram
}

// NewHandoverMetrics makes the collector; register it once.
func NewHandoverMetrics() *HandoverMetrics {
	return &HandoverMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_migration_handovers_total",
			Help: "TimeSeries handovers of event positions between the stores of a migration, by direction (forward: promote or a forced switch; reverse: abort or an undo) and result (ok, failed).",
		}, []string{"direction", "result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prism_migration_handover_seconds",
			Help:    "Time a handover took, opening both stores, sealing one and unsealing the other; appends to the namespace wait for the seal.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
}

// Describe implements prometheus.Collector.
func (h *HandoverMetrics) Describe(ch chan<- *prometheus.Desc) {
	h.total.Describe(ch)
	h.seconds.Describe(ch)
}

// Collect implements prometheus.Collector.
func (h *HandoverMetrics) Collect(ch chan<- prometheus.Metric) {
	h.total.Collect(ch)
	h.seconds.Collect(ch)
}

// Wrap returns the handover hook fn, counted and timed.
func (h *HandoverMetrics) Wrap(fn func(ctx context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (int64, error)) func(ctx context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (int64, error) {
	return func(ctx context.Context, m *configv1.Migration, from, to *configv1.Backend, reverse bool) (int64, error) {
		began := time.Now()
		floor, err := fn(ctx, m, from, to, reverse)
		h.seconds.Observe(time.Since(began).Seconds())
		direction, result := "forward", "ok"
		if reverse {
			direction = "reverse"
		}
		if err != nil {
			result = "failed"
		}
		h.total.WithLabelValues(direction, result).Inc()
		return floor, err
	}
}
