package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/extproc/pii"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// A TimeSeries migration follows the KeyValue phases (see migrate.go) with
// positions in place of versions. Every stored event has a position in its
// series; a copy keeps it (ts.Replica.Copy), and the SQL drivers share one
// cursor format, so a cursor a client got from one store resumes at the
// same event in the other: promotion is invisible to queries and tails.
//
// Exactly one store assigns positions at a time. Until promotion it is
// `from`: appends go there and their stored events are copied to `to` in
// the same request. The control plane's handover at promotion seals `from`
// (it takes copies, no appends) and lets `to` assign positions above the
// last one `from` gave (Migration.handover_floor). A node whose config is
// behind the handover finds its store sealed and appends to the other one,
// so the seal, not the config push, decides where positions come from.
//
// Tails follow append order, which copies landing late would break; a
// sealed store's tail stops at its seal, and in PROMOTED a tail whose
// cursor lies below the floor reads `from` (complete up to the floor)
// until it has nothing more there, then `to`, whose own positions all lie
// above the floor.

// Bounds of the TimeSeries migration machinery.
const (
	// sealedAttempts bounds how often an append tries the two stores while
	// both are sealed: the handover seals one and unseals the other a few
	// milliseconds apart.
	sealedAttempts = 12
	// sealedBackoff is the first pause between those attempts; it doubles.
	sealedBackoff = 5 * time.Millisecond
)

// tsMigration is the TimeSeries side of a namespace's migration.
type tsMigration struct {
	// primary answers queries and tails and takes appends; shadow takes
	// the copies (and appends when the primary is sealed).
	primary, shadow ts.Replica
	// from is the migration's source.
	from ts.Replica
}

// tailRoute sends a tail whose cursor lies below floor to old first: the
// store that assigned positions up to the floor, sealed since, so complete
// and final up to it, while copies of its last events may still be landing
// in the store that serves the namespace now. In PROMOTED old is `from`;
// after an abort that followed promotion it is `to`.
type tailRoute struct {
	old   ts.Replica
	floor int64
}

// prepareTSMigration opens both ends of a TimeSeries migration as replicas
// and provisions the namespace on both.
func (s *Server) prepareTSMigration(ctx context.Context, n *configv1.Namespace, mig *migration, from, to *openStore, ns *namespace) error {
	name := n.GetNamespace()
	fromRep, ok := from.store.(ts.Replica)
	if !ok {
		return errNotReplica(name, mig.cfg.GetFrom())
	}
	toRep, ok := to.store.(ts.Replica)
	if !ok {
		return errNotReplica(name, mig.cfg.GetTo())
	}
	for _, st := range []ts.Replica{fromRep, toRep} {
		if err := st.EnsureNamespace(ctx, name, tsOptions(n)); err != nil {
			return err
		}
	}
	m := &tsMigration{primary: fromRep, shadow: toRep, from: fromRep}
	if mig.cfg.GetPhase() == configv1.Migration_PROMOTED {
		m.primary, m.shadow = toRep, fromRep
		if f := mig.cfg.GetHandoverFloor(); f > 0 {
			ns.tsTail = &tailRoute{old: fromRep, floor: f}
		}
	}
	mig.ts = m
	return nil
}

// prepareTailRoute keeps tails right after an abort that followed
// promotion from skipping events: the abort's reverse handover sealed `to`
// at the floor the ABORTED migration carries, but copies of `to`'s last
// events may still be on their way to `from`. Until the migration is
// deleted, a tail below that floor reads `to` first.
func (s *Server) prepareTailRoute(ctx context.Context, n *configv1.Namespace, m *configv1.Migration, backends map[string]*configv1.Backend, opened map[storeKey]*openStore, ns *namespace) error {
	if m == nil || m.GetHandoverFloor() <= 0 || m.GetFrom() != n.GetBackend() || n.GetAbstraction() != configv1.Abstraction_TIMESERIES {
		return nil
	}
	tb, ok := backends[m.GetTo()]
	if !ok {
		return nil // the backend is gone, and with it what a route would read
	}
	o, err := s.openStore(ctx, storeKey{backend: tb.GetName(), abstraction: n.GetAbstraction()}, tb, opened)
	if err != nil {
		return fmt.Errorf("namespace %s: the aborted migration's target: %w", n.GetNamespace(), err)
	}
	old, ok := o.store.(ts.Replica)
	if !ok {
		return nil
	}
	if err := old.EnsureNamespace(ctx, n.GetNamespace(), tsOptions(n)); err != nil {
		return err
	}
	ns.tsTail = &tailRoute{old: old, floor: m.GetHandoverFloor()}
	return nil
}

// appendTS appends events on the store that assigns positions and copies
// what it stored to the other one. A sealed store hands the append to the
// other: the handover moved the positions ahead of this node's config.
func (s *Server) appendTS(ctx context.Context, c *call, events []ts.Event) (appended, duplicates int, err error) {
	ns := c.ns.cfg.GetNamespace()
	mig := c.ns.mig
	if mig == nil || mig.ts == nil {
		return c.ns.ts.Append(ctx, ns, events)
	}
	m := mig.ts
	first, second := m.primary, m.shadow
	pause := sealedBackoff
	for attempt := 1; ; attempt++ {
		stored, dups, err := first.AppendEvents(ctx, ns, events)
		if err == nil {
			s.copyEvents(ctx, c, second, stored)
			return len(stored), dups, nil
		}
		if !errors.Is(err, ts.ErrSealed) || attempt == sealedAttempts {
			return 0, 0, err
		}
		first, second = second, first
		if attempt%2 == 0 { // both sealed: the handover is between its steps
			select {
			case <-time.After(pause):
				pause *= 2
			case <-ctx.Done():
				return 0, 0, err
			}
		}
	}
}

// copyEvents copies appended events, at their positions, to the store that
// did not assign them. A failed copy never fails the client: it is counted
// and the series sampled, and the backfill (run again) copies what is
// missing.
func (s *Server) copyEvents(ctx context.Context, c *call, to ts.Replica, events []ts.Event) {
	if len(events) == 0 {
		return
	}
	sctx, cancel := shadowContext(ctx, c)
	defer cancel()
	name := c.ns.mig.cfg.GetTo()
	if to == c.ns.mig.ts.from {
		name = c.ns.mig.cfg.GetFrom()
	}
	sctx, span := s.startSpan(sctx, "shadow append", attribute.String("prism.backend", name))
	_, _, err := to.Copy(sctx, c.ns.cfg.GetNamespace(), events)
	endSpan(span, err)
	s.copied(c, events[0].Series, err)
}

// queryTS queries the primary and, for read_percent of queries during
// SHADOW_READ, compares the page with the shadow's after the answer.
func (s *Server) queryTS(ctx context.Context, c *call, q ts.QueryArgs) (ts.Page, error) {
	ns := c.ns.cfg.GetNamespace()
	mig := c.ns.mig
	if mig == nil || mig.ts == nil {
		return c.ns.ts.Query(ctx, ns, q)
	}
	page, err := mig.ts.primary.Query(ctx, ns, q)
	if err == nil {
		s.compareQuery(c, q, page)
	}
	return page, err
}

// tailTS follows a series across a handover (see tailRoute): a cursor
// below the floor reads the old store first, without waiting, and only
// when that has nothing more the tail goes on in the store that serves the
// namespace, where every position above the floor was given in order.
func (s *Server) tailTS(ctx context.Context, c *call, t ts.TailArgs) (ts.Page, error) {
	ns := c.ns.cfg.GetNamespace()
	if r := c.ns.tsTail; r != nil && t.After != "" {
		seq, err := r.old.CursorSeq(ns, t.Series, t.After)
		if err != nil {
			return ts.Page{}, err
		}
		if seq < r.floor {
			before := t
			before.Wait = 0
			page, err := r.old.Tail(ctx, ns, before)
			if err != nil {
				return page, err
			}
			if page = r.below(ns, t.Series, page); len(page.Events) > 0 {
				return page, nil
			}
		}
	}
	return c.ns.ts.Tail(ctx, ns, t)
}

// below keeps the events of an old store's tail page up to the floor.
// Only those are final there: once the old store is unsealed again (the
// abort of a promoted migration), copies landing above the floor come in
// any order, and a tail that went past one in flight would skip it.
func (r *tailRoute) below(ns, series string, page ts.Page) ts.Page {
	n := len(page.Events)
	for n > 0 && page.Events[n-1].Seq > r.floor {
		n--
	}
	if n == len(page.Events) {
		return page
	}
	if n == 0 {
		return ts.Page{}
	}
	return ts.Page{Events: page.Events[:n], NextCursor: r.old.SeqCursor(ns, series, page.Events[n-1].Seq)}
}

// compareQuery runs a sampled query again on the shadow, off the request
// path, and counts a match or a mismatch (its series sampled, never its
// events). Pages that differ are read again from both sides, so events
// appended between the two reads are not taken for a divergence.
func (s *Server) compareQuery(c *call, q ts.QueryArgs, page ts.Page) {
	mig := c.ns.mig
	if mig.readPercent <= 0 || rand.Float64()*100 >= mig.readPercent {
		return
	}
	ns, sch := c.ns.cfg.GetNamespace(), c.ns.pii
	// The answer applies the policy to the page's events in place while
	// the comparison runs: compare the events as the store returned them.
	page.Events = slices.Clone(page.Events)
	s.offPath(mig, ns, q.Series, c.ns.timeout, func(ctx context.Context) string {
		m := mig.ts
		p := page
		for attempt := 1; ; attempt++ {
			sh, err := m.shadow.Query(ctx, ns, q)
			if err != nil {
				return "skipped"
			}
			if samePage(ctx, sch, mig.plain, p, sh) {
				return "match"
			}
			if attempt == compareAttempts {
				return "mismatch"
			}
			if !rereadPause(ctx, attempt) {
				return "skipped"
			}
			if p, err = m.primary.Query(ctx, ns, q); err != nil {
				return "skipped"
			}
		}
	})
}

// samePage compares two pages of a query: the same events at the same
// positions, with equal times, ids, tags and data (decrypted for a
// namespace with a PII schema), and the same next cursor.
func samePage(ctx context.Context, sch *pii.Schema, plain map[string]pii.Action, a, b ts.Page) bool {
	if len(a.Events) != len(b.Events) || a.NextCursor != b.NextCursor {
		return false
	}
	for i := range a.Events {
		x, y := a.Events[i], b.Events[i]
		if x.Seq != y.Seq || x.Series != y.Series || !x.Time.Equal(y.Time) || x.ID != y.ID || !maps.Equal(x.Tags, y.Tags) ||
			!sameData(ctx, sch, plain, x.Series, x.Data, y.Data) {
			return false
		}
	}
	return true
}

// sameData compares event data as JSON values: drivers keep the bytes or
// re-encode them; sealed PII fields are compared decrypted.
func sameData(ctx context.Context, sch *pii.Schema, plain map[string]pii.Action, series string, a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if sch != nil {
		var err error
		if a, _, err = sch.Apply(ctx, series, a, plain); err != nil {
			return false
		}
		if b, _, err = sch.Apply(ctx, series, b, plain); err != nil {
			return false
		}
	}
	return equalJSON(a, b)
}

// equalJSON reports whether two JSON documents hold the same value.
func equalJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	if bytes.Equal(ca.Bytes(), cb.Bytes()) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	na, _ := json.Marshal(va) // maps marshal with sorted keys
	nb, _ := json.Marshal(vb)
	return bytes.Equal(na, nb)
}
