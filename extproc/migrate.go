package extproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/prism-gw/prism/backends/kv"
	"github.com/prism-gw/prism/backends/kv/cache"
	"github.com/prism-gw/prism/extproc/pii"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// A migration moves a KeyValue namespace from one backend to another while
// it serves (API.md, "Admin API"; the control plane drives the phases):
//
//	SHADOW_WRITE, BACKFILL  primary from, every write copied to to
//	SHADOW_READ             the same, and read_percent of gets compared
//	PROMOTED                primary to, writes still copied to from
//	DECOMMISSIONED, ABORTED no migration: the namespace's backend serves
//
// The primary's write decides the client's answer. The copy follows in the
// same request, synchronously: the answer then means the copy was
// attempted, there is no queue to lose in a crash and no unbounded memory
// when the shadow is slow; the cost is the shadow's write latency on
// writes, which a migration accepts. A copy carries the primary's version
// (kv.Replica), so copies that race or repeat never let an older write win,
// and a failed copy never fails the client: it is counted and its key kept
// for the operator, and the repair pass of `prism migrate backfill --repair`
// fixes it. Shadow reads are compared after the answer, off the request
// path, so they add no latency and cannot fail a read.

// Bounds of the migration machinery.
const (
	// keySample bounds the keys kept per migration for the operator.
	keySample = 100
	// maxComparisons bounds shadow reads in flight; more are skipped.
	maxComparisons = 64
	// compareAttempts re-reads both sides when they differ by version, to
	// tell a write in flight from a divergence.
	compareAttempts = 3
)

// migration is a namespace's migration as this node acts on it.
type migration struct {
	cfg     *configv1.Migration
	primary kv.Replica   // answers clients (KeyValue)
	shadow  kv.Replica   // receives copies of the primary's writes (KeyValue)
	ts      *tsMigration // the stores of a TimeSeries migration
	// readPercent of gets are compared with the shadow (SHADOW_READ only).
	readPercent float64
	counters    *migCounters
	plain       map[string]pii.Action // every PII field in plaintext, to compare decrypted values
}

// shadowName names the backend that receives the copies.
func (m *migration) shadowName() string {
	if m.cfg.GetPhase() == configv1.Migration_PROMOTED {
		return m.cfg.GetFrom()
	}
	return m.cfg.GetTo()
}

// activeMigration reports whether a phase has the namespace served by two
// backends.
func activeMigration(p configv1.Migration_Phase) bool {
	switch p {
	case configv1.Migration_SHADOW_WRITE, configv1.Migration_BACKFILL, configv1.Migration_SHADOW_READ, configv1.Migration_PROMOTED:
		return true
	}
	return false
}

// checkPhase refuses a migration config that would take this node back to
// a phase older than one it has acted on: phases of one migration id only
// move forward, and ABORTED ends it. The control plane never sends that; a
// stale cache or a confused control plane might, and acting on it could
// route writes to a backend already given up.
func checkPhase(seen, next *configv1.Migration) error {
	if seen == nil || seen.GetId() != next.GetId() {
		return nil
	}
	sp, np := seen.GetPhase(), next.GetPhase()
	switch {
	case sp == configv1.Migration_ABORTED && np != sp:
		return fmt.Errorf("migration %s of namespace %s: phase %s after ABORTED", next.GetId(), next.GetNamespace(), np)
	case np == configv1.Migration_ABORTED && sp == configv1.Migration_DECOMMISSIONED:
		return fmt.Errorf("migration %s of namespace %s: abort after DECOMMISSIONED", next.GetId(), next.GetNamespace())
	case np == configv1.Migration_ABORTED:
		return nil
	case np < sp:
		return fmt.Errorf("migration %s of namespace %s: phase %s is older than %s, which this node has applied", next.GetId(), next.GetNamespace(), np, sp)
	}
	return nil
}

// prepareMigration sets a namespace up to serve during its migration: both
// stores must be KeyValue replicas; the Redis cache is left out while two
// backends hold the namespace (a copy or a backfill written past it would
// leave stale entries).
func (s *Server) prepareMigration(ctx context.Context, n *configv1.Namespace, m *configv1.Migration, backends map[string]*configv1.Backend, from *openStore, opened map[storeKey]*openStore, ns *namespace) error {
	name := n.GetNamespace()
	switch n.GetAbstraction() {
	case configv1.Abstraction_KEYVALUE, configv1.Abstraction_TIMESERIES:
	default:
		return fmt.Errorf("namespace %s: migrations of %s namespaces are not supported", name, n.GetAbstraction())
	}
	if m.GetFrom() != n.GetBackend() {
		return fmt.Errorf("namespace %s: migration from %q but the namespace is on %q", name, m.GetFrom(), n.GetBackend())
	}
	tb, ok := backends[m.GetTo()]
	if !ok {
		return fmt.Errorf("namespace %s: migration to unknown backend %q", name, m.GetTo())
	}
	to, err := s.openStore(ctx, storeKey{backend: tb.GetName(), abstraction: n.GetAbstraction()}, tb, opened)
	if err != nil {
		return fmt.Errorf("namespace %s: migration target: %w", name, err)
	}
	mig := &migration{cfg: m, counters: s.migrationCounters(name, m)}
	if m.GetPhase() == configv1.Migration_SHADOW_READ {
		mig.readPercent = m.GetReadPercent()
	}
	if m.GetPhase() == configv1.Migration_PROMOTED {
		ns.backend = m.GetTo()
	}
	if len(ns.fields) > 0 {
		mig.plain = make(map[string]pii.Action, len(ns.fields))
		for _, f := range ns.fields {
			mig.plain[f.Path] = pii.Plain
		}
	}
	ns.mig = mig
	if n.GetAbstraction() == configv1.Abstraction_TIMESERIES {
		if err := s.prepareTSMigration(ctx, n, mig, from, to, ns); err != nil {
			return err
		}
		ns.ts = mig.ts.primary
		return nil
	}
	fromRep, ok := from.store.(kv.Replica)
	if !ok {
		return errNotReplica(name, m.GetFrom())
	}
	toRep, ok := to.store.(kv.Replica)
	if !ok {
		return errNotReplica(name, m.GetTo())
	}
	mig.primary, mig.shadow = fromRep, toRep
	if m.GetPhase() == configv1.Migration_PROMOTED {
		mig.primary, mig.shadow = toRep, fromRep
	}
	ns.kv = mig.primary
	return nil
}

func errNotReplica(ns, backend string) error {
	return fmt.Errorf("namespace %s: backend %s cannot take part in a migration", ns, backend)
}

// migCounters are this node's counts for one migration id and compare
// epoch; they survive config changes that keep both.
type migCounters struct {
	namespace string
	id        string
	epoch     uint64
	phase     atomic.Int32

	shadowWrites, shadowFailures, compared, mismatches atomic.Uint64

	mu           sync.Mutex
	mismatchKeys []string
	failedKeys   []string
}

// migrationCounters returns the counters of m: those in use when the id and
// epoch are unchanged, new ones otherwise.
func (s *Server) migrationCounters(ns string, m *configv1.Migration) *migCounters {
	s.migMu.Lock()
	defer s.migMu.Unlock()
	c := s.migs[ns]
	if c == nil || c.id != m.GetId() || c.epoch != m.GetCompareEpoch() {
		c = &migCounters{namespace: ns, id: m.GetId(), epoch: m.GetCompareEpoch()}
	}
	return c
}

// installMigrations makes the counters of a new state the reported ones and
// remembers the phases acted on. Apply holds applyMu.
func (s *Server) installMigrations(next *state, cfg []*configv1.Migration) {
	s.migMu.Lock()
	defer s.migMu.Unlock()
	s.migs = map[string]*migCounters{}
	for name, ns := range next.namespaces {
		if ns.mig != nil {
			ns.mig.counters.phase.Store(int32(ns.mig.cfg.GetPhase()))
			s.migs[name] = ns.mig.counters
		}
	}
	for _, m := range cfg {
		seen := s.migSeen[m.GetNamespace()]
		if ns := next.namespaces[m.GetNamespace()]; ns != nil && ns.mig != nil && ns.mig.ts == nil && (seen == nil || seen.GetId() != m.GetId()) {
			// The migration starts here: entries filled from the source
			// before it would miss the writes that now bypass the cache.
			s.flushCache(m.GetNamespace(), m.GetFrom(), ns.mig.primary)
			s.flushCache(m.GetNamespace(), m.GetTo(), ns.mig.shadow)
		}
		s.migSeen[m.GetNamespace()] = m
	}
}

// endMigrations forgets the tombstones of migrations that this config ends
// (decommissioned or aborted), on both backends: they only guard copies of
// the migration, and a later migration to the same backend must not have
// its backfill refused by them. Apply holds applyMu, before the stores in
// force are replaced, so that both stores are still at hand.
func (s *Server) endMigrations(cfg []*configv1.Migration, opened map[storeKey]*openStore) {
	for _, m := range cfg {
		seen := s.migSeen[m.GetNamespace()]
		if seen == nil || seen.GetId() != m.GetId() || !activeMigration(seen.GetPhase()) || activeMigration(m.GetPhase()) {
			continue
		}
		for _, backend := range []string{m.GetFrom(), m.GetTo()} {
			key := storeKey{backend: backend, abstraction: configv1.Abstraction_KEYVALUE}
			o := opened[key]
			if o == nil {
				o = s.stores[key]
			}
			if o == nil {
				continue
			}
			r, ok := o.store.(kv.Replica)
			if !ok {
				continue
			}
			ns := m.GetNamespace()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := r.DropTombstones(ctx, ns); err != nil {
					s.log.Warn("dropping a finished migration's tombstones", "namespace", ns, "backend", backend, "err", err)
				}
			}()
			s.flushCache(ns, backend, r)
		}
	}
}

// flushCache forgets a namespace's Redis entries on a backend, once when
// a migration of the namespace starts and once when it ends: in between,
// both backends are written past the cache, and its entries would be stale
// when the namespace is cached again (on either side, after promote or
// abort). Requests racing the flush read the backends, as on a miss.
func (s *Server) flushCache(ns, backend string, st kv.Store) {
	if s.cache == nil {
		return
	}
	c := cache.New(st, s.cache, cache.Options{Backend: backend})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Flush(ctx, ns); err != nil {
			s.log.Warn("flushing the cache of a migrating namespace; entries may be stale until their TTL", "namespace", ns, "backend", backend, "err", err)
		}
	}()
}

// sample keeps key in a bounded sample of distinct keys.
func (c *migCounters) sample(keys *[]string, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(*keys) < keySample && !slices.Contains(*keys, key) {
		*keys = append(*keys, key)
	}
}

// MigrationReport is this node's counters for the migrations it serves, for
// the control plane's promotion gate (xds/report).
func (s *Server) MigrationReport(node string) *configv1.MigrationReport {
	s.migMu.Lock()
	defer s.migMu.Unlock()
	r := &configv1.MigrationReport{Node: node}
	for _, c := range s.migs {
		c.mu.Lock()
		r.Migrations = append(r.Migrations, &configv1.MigrationCounters{
			Namespace:           c.namespace,
			MigrationId:         c.id,
			CompareEpoch:        c.epoch,
			Phase:               configv1.Migration_Phase(c.phase.Load()),
			ShadowWrites:        c.shadowWrites.Load(),
			ShadowWriteFailures: c.shadowFailures.Load(),
			ReadsCompared:       c.compared.Load(),
			Mismatches:          c.mismatches.Load(),
			MismatchKeys:        append([]string(nil), c.mismatchKeys...),
			FailedKeys:          append([]string(nil), c.failedKeys...),
		})
		c.mu.Unlock()
	}
	return r
}

// shadowContext bounds a copy by the namespace's timeout but not by the
// client: a client that hangs up after its write was acknowledged must
// not leave the shadow behind.
func shadowContext(ctx context.Context, c *call) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.ns.timeout)
}

// copied counts the outcome of one copy to the shadow.
func (s *Server) copied(c *call, key string, err error) {
	m := c.ns.mig
	result := "ok"
	if err != nil {
		result = "failed"
		m.counters.shadowFailures.Add(1)
		m.counters.sample(&m.counters.failedKeys, key)
		s.log.Warn("shadow write failed; the repair pass will copy the key", "namespace", c.ns.cfg.GetNamespace(),
			"to", m.cfg.GetTo(), "request_id", c.req.requestID, "err", err)
	} else {
		m.counters.shadowWrites.Add(1)
	}
	s.metrics.shadowWrites.WithLabelValues(c.ns.cfg.GetNamespace(), result).Inc()
}

// shadowPut copies a put the primary acknowledged with version.
func (s *Server) shadowPut(ctx context.Context, c *call, op kv.PutOp, version string) {
	it := kv.Item{Key: op.Key, Value: op.Value, ContentType: op.ContentType, Version: version}
	if op.TTL > 0 {
		it.ExpiresAt = time.Now().Add(op.TTL)
	}
	sctx, cancel := shadowContext(ctx, c)
	defer cancel()
	sctx, span := s.startSpan(sctx, "shadow put", attribute.String("prism.backend", c.ns.mig.shadowName()))
	_, err := c.ns.mig.shadow.PutVersion(sctx, c.ns.cfg.GetNamespace(), it)
	endSpan(span, err)
	s.copied(c, op.Key, err)
}

// shadowDelete copies a delete the primary made at version.
func (s *Server) shadowDelete(ctx context.Context, c *call, key, version string) {
	sctx, cancel := shadowContext(ctx, c)
	defer cancel()
	sctx, span := s.startSpan(sctx, "shadow delete", attribute.String("prism.backend", c.ns.mig.shadowName()))
	_, err := c.ns.mig.shadow.DeleteVersion(sctx, c.ns.cfg.GetNamespace(), key, version)
	endSpan(span, err)
	s.copied(c, key, err)
}

// deleteKV deletes on the namespace's primary and, in a migration, copies
// the delete with its version.
func (s *Server) deleteKV(ctx context.Context, c *call, key string, cond kv.Cond) error {
	m := c.ns.mig
	if m == nil {
		return c.ns.kv.Delete(ctx, c.ns.cfg.GetNamespace(), key, cond)
	}
	v, err := m.primary.DeleteVersioned(ctx, c.ns.cfg.GetNamespace(), key, cond)
	if err != nil {
		return err
	}
	s.shadowDelete(ctx, c, key, v)
	return nil
}

// batchKV applies a batch on the primary and, in a migration, copies each
// op with its version. Deletes answer an empty version, as without one.
func (s *Server) batchKV(ctx context.Context, c *call, ops []kv.Op) ([]string, error) {
	m := c.ns.mig
	if m == nil {
		return c.ns.kv.Batch(ctx, c.ns.cfg.GetNamespace(), ops)
	}
	versions, err := m.primary.BatchVersioned(ctx, c.ns.cfg.GetNamespace(), ops)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(versions))
	for i, op := range ops {
		if op.Delete {
			s.shadowDelete(ctx, c, op.Put.Key, versions[i])
			continue
		}
		out[i] = versions[i]
		s.shadowPut(ctx, c, op.Put, versions[i])
	}
	return out, nil
}

// compareRead compares, for read_percent of gets, what the primary
// answered with the shadow's copy, after the answer and off the request
// path. Both sides are read again when they differ by version, so a write
// landing between the two reads is not taken for a divergence.
func (s *Server) compareRead(c *call, key string, it kv.Item, err error) {
	m := c.ns.mig
	if m == nil || m.readPercent <= 0 || rand.Float64()*100 >= m.readPercent {
		return
	}
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return // nothing to compare
	}
	ns, sch := c.ns.cfg.GetNamespace(), c.ns.pii
	s.offPath(m, ns, key, c.ns.timeout, func(ctx context.Context) string {
		return s.compare(ctx, m, sch, ns, key, it, err)
	})
}

// offPath runs one shadow-read comparison after the answer, off the request
// path, at most maxComparisons at a time (more are skipped), and counts its
// result: "match", "mismatch" (key sampled, never the value) or "skipped".
func (s *Server) offPath(m *migration, ns, key string, timeout time.Duration, compare func(context.Context) string) {
	select {
	case s.comparisons <- struct{}{}:
	default:
		s.metrics.shadowReads.WithLabelValues(ns, "skipped").Inc()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.comparisons }()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		result := compare(ctx)
		s.metrics.shadowReads.WithLabelValues(ns, result).Inc()
		switch result {
		case "match":
			m.counters.compared.Add(1)
		case "mismatch":
			m.counters.compared.Add(1)
			m.counters.mismatches.Add(1)
			m.counters.sample(&m.counters.mismatchKeys, key)
			s.log.Warn("shadow read mismatch", "namespace", ns, "migration", m.cfg.GetId()) // the key is in the sample, never the value
		}
	}()
}

// compare reads the shadow (and the primary again when needed) and
// answers "match", "mismatch" or "skipped" (a side could not be read).
func (s *Server) compare(ctx context.Context, m *migration, sch *pii.Schema, ns, key string, p kv.Item, perr error) string {
	for attempt := 1; ; attempt++ {
		sh, serr := m.shadow.Get(ctx, ns, key)
		if serr != nil && !errors.Is(serr, kv.ErrNotFound) {
			return "skipped"
		}
		pFound, sFound := perr == nil, serr == nil
		if !pFound && !sFound {
			return "match"
		}
		if pFound && sFound && sameItem(ctx, sch, m.plain, key, p, sh) {
			return "match"
		}
		if pFound && sFound && p.Version == sh.Version {
			return "mismatch" // same write, different content: no race explains it
		}
		if attempt == compareAttempts {
			return "mismatch"
		}
		if !rereadPause(ctx, attempt) {
			return "skipped"
		}
		p, perr = m.primary.Get(ctx, ns, key)
		if perr != nil && !errors.Is(perr, kv.ErrNotFound) {
			return "skipped"
		}
	}
}

// rereadPause waits before a comparison reads both sides again, longer
// at each attempt, so that a write in flight can land; false when ctx ends
// first.
func rereadPause(ctx context.Context, attempt int) bool {
	select {
	case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		return true
	case <-ctx.Done():
		return false
	}
}

// sameItem compares two copies of a value: content type, and the bytes —
// for a namespace with a PII schema the decrypted documents, since the same
// plaintext may be sealed differently (a re-encryption after a key
// rotation). Values are never logged.
func sameItem(ctx context.Context, sch *pii.Schema, plain map[string]pii.Action, key string, a, b kv.Item) bool {
	if a.ContentType != b.ContentType {
		return false
	}
	if bytes.Equal(a.Value, b.Value) {
		return true
	}
	if sch == nil {
		return false
	}
	da, _, err := sch.Apply(ctx, key, a.Value, plain)
	if err != nil {
		return false
	}
	db, _, err := sch.Apply(ctx, key, b.Value, plain)
	return err == nil && bytes.Equal(da, db)
}

// migrationMetrics are the shadow traffic metrics.
type migrationMetrics struct {
	shadowWrites *prometheus.CounterVec
	shadowReads  *prometheus.CounterVec
}

func newMigrationMetrics() migrationMetrics {
	return migrationMetrics{
		shadowWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_shadow_writes_total",
			Help: "Writes copied to the shadow backend of a migrating namespace, by result (ok, failed).",
		}, []string{"namespace", "result"}),
		shadowReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_shadow_reads_total",
			Help: "Reads compared with the shadow backend of a migrating namespace, by result (match, mismatch, skipped).",
		}, []string{"namespace", "result"}),
	}
}
