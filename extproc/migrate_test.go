package extproc

import (
	"testing"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// TestCheckPhase: a node never goes back to a phase older than one it has
// applied for the same migration; abort ends a migration for good; a new
// migration id starts over.
func TestCheckPhase(t *testing.T) {
	const (
		sw  = configv1.Migration_SHADOW_WRITE
		bf  = configv1.Migration_BACKFILL
		sr  = configv1.Migration_SHADOW_READ
		pr  = configv1.Migration_PROMOTED
		dec = configv1.Migration_DECOMMISSIONED
		ab  = configv1.Migration_ABORTED
	)
	m := func(id string, p configv1.Migration_Phase) *configv1.Migration {
		return &configv1.Migration{Namespace: "orders", Id: id, Phase: p}
	}
	tests := []struct {
		seen, next *configv1.Migration
		ok         bool
	}{
		{nil, m("a", sr), true},
		{m("a", sw), m("a", sw), true},
		{m("a", sw), m("a", bf), true},
		{m("a", sw), m("a", pr), true}, // a node may miss phases in between
		{m("a", sr), m("a", bf), false},
		{m("a", pr), m("a", sr), false},
		{m("a", dec), m("a", pr), false},
		{m("a", pr), m("a", ab), true},
		{m("a", sw), m("a", ab), true},
		{m("a", dec), m("a", ab), false}, // decommissioned: the source is gone
		{m("a", ab), m("a", sw), false},
		{m("a", ab), m("a", ab), true},
		{m("a", pr), m("b", sw), true}, // a new migration
		{m("a", ab), m("b", sw), true},
	}
	for _, tt := range tests {
		err := checkPhase(tt.seen, tt.next)
		if (err == nil) != tt.ok {
			t.Errorf("checkPhase(%v → %v) = %v, want ok %v", tt.seen.GetPhase(), tt.next.GetPhase(), err, tt.ok)
		}
	}
}
