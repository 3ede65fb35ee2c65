package migration

import (
	"fmt"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// Totals are the counters of every node summed, for one migration id and
// compare epoch.
type Totals struct {
	ShadowWrites        uint64 `json:"shadow_writes"`
	ShadowWriteFailures uint64 `json:"shadow_write_failures"`
	ReadsCompared       uint64 `json:"reads_compared"`
	Mismatches          uint64 `json:"mismatches"`
}

// MismatchRate is mismatches over compared reads, 0 before any comparison.
func (t Totals) MismatchRate() float64 {
	if t.ReadsCompared == 0 {
		return 0
	}
	return float64(t.Mismatches) / float64(t.ReadsCompared)
}

// Gate is the promotion decision for one migration id and compare epoch.
type Gate struct {
	ID         string `json:"-"`
	Epoch      uint64 `json:"-"`
	CanPromote bool   `json:"can_promote"`
	// Reason says what blocks promotion, or why it is allowed.
	Reason string `json:"reason"`
}

// CheckGate decides whether m may be promoted: it must be in SHADOW_READ,
// the backfill must have completed, at least min_sample reads must have been
// compared in the current window, and the mismatch rate must be below the
// threshold. A window without any mismatch passes whatever the threshold
// (so a threshold of 0 means "no mismatch at all").
func CheckGate(m *configv1.Migration, t Totals, backfillDone bool) Gate {
	g := Gate{ID: m.GetId(), Epoch: m.GetCompareEpoch()}
	rate := t.MismatchRate()
	switch {
	case m.GetPhase() != ShadowRead:
		g.Reason = fmt.Sprintf("the migration is in %s; promotion is possible only from SHADOW_READ", PhaseName(m.GetPhase()))
	case !backfillDone:
		g.Reason = "the backfill has not completed (run prism migrate backfill)"
	case t.ReadsCompared < m.GetMinSample():
		g.Reason = fmt.Sprintf("only %d of the %d compared reads min_sample requires (compare epoch %d)", t.ReadsCompared, m.GetMinSample(), m.GetCompareEpoch())
	case t.Mismatches > 0 && rate >= m.GetMismatchThreshold():
		g.Reason = fmt.Sprintf("mismatch rate %.6f (%d of %d compared reads) is not below the threshold %v; repair (prism migrate backfill --repair) and compare again",
			rate, t.Mismatches, t.ReadsCompared, m.GetMismatchThreshold())
	default:
		g.CanPromote = true
		g.Reason = fmt.Sprintf("mismatch rate %.6f over %d compared reads is below the threshold %v; backfill done", rate, t.ReadsCompared, m.GetMismatchThreshold())
	}
	return g
}
