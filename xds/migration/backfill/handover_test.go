package backfill

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestHandoverMetricsCountByDirectionAndResult scrapes a registry holding
// the collector after a forward handover that worked and a reverse one
// that failed.
func TestHandoverMetricsCountByDirectionAndResult(t *testing.T) {
	h := NewHandoverMetrics()
	reg := prometheus.NewRegistry()
	if err := reg.Register(h); err != nil {
		t.Fatal(err)
	}
	hook := h.Wrap(func(_ context.Context, _ *configv1.Migration, _, _ *configv1.Backend, reverse bool) (int64, error) {
		if reverse {
			return 0, errors.New("seal: connection refused")
		}
		return 42, nil
	})
	m := &configv1.Migration{Namespace: "events"}
	if floor, err := hook(context.Background(), m, nil, nil, false); floor != 42 || err != nil {
		t.Fatalf("forward = %d, %v; want the hook's 42", floor, err)
	}
	if _, err := hook(context.Background(), m, nil, nil, true); err == nil {
		t.Fatal("reverse: want the hook's error")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			if c := mt.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
			if hg := mt.GetHistogram(); hg != nil {
				got[key] = float64(hg.GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"prism_migration_handovers_total{forward,ok}":     1,
		"prism_migration_handovers_total{reverse,failed}": 1,
		"prism_migration_handover_seconds{}":              2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (scraped %v)", k, got[k], v, got)
		}
	}
}
