// Package backfill copies a KeyValue or TimeSeries namespace from a
// migration's source backend to its target while shadow writes keep the
// target current: the job behind `prism migrate backfill`. Every key copy
// goes through kv.Replica.PutVersion with the source's version, so a copy
// never overwrites a newer value a shadow write has already put on the
// target; every event copy goes through ts.Replica.Copy at the source's
// position, so a copy of an event already there is skipped (ts.go). Either
// job can be killed and resumed from its checkpoint at any time.
//
// The package also holds Handover, which seals and unseals the two stores
// of a TimeSeries migration for the control plane when it is promoted.
package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/prism-gw/prism/backends/kv"
)

// Progress is what the job has done; the control plane persists it so that
// a restarted job resumes at Checkpoint.
type Progress struct {
	// Checkpoint is the last key copied (keys are copied in byte order).
	Checkpoint   string `json:"checkpoint"`
	KeysDone     uint64 `json:"keys_done"`
	KeysTotal    uint64 `json:"keys_total"`
	Copied       uint64 `json:"copied"`
	SkippedNewer uint64 `json:"skipped_newer"`
	// Moved counts TimeSeries events stored at another position than the
	// source's (ts.Replica.Copy); always 0 for keys.
	Moved uint64 `json:"moved,omitempty"`
	Done  bool   `json:"done"`
}

// Options configure a run. From, To and Namespace are required.
type Options struct {
	Namespace string
	From      kv.Store
	To        kv.Replica
	// Rate bounds the keys copied per second; 0 is unbounded.
	Rate float64
	// Resume is the progress of an earlier run; the copy continues after
	// its checkpoint.
	Resume Progress
	// Report is called every ReportEvery and once at the end (the admin
	// API's PUT .../migration/backfill). A failed report is retried at the
	// next interval; only the final one fails the run.
	Report      func(ctx context.Context, p Progress) error
	ReportEvery time.Duration
	// Out receives a progress line per ReportEvery; nil: none.
	Out io.Writer
	// PageSize is the number of keys read per scan (default 500).
	PageSize int
	// Workers copy the keys of a page concurrently (default 4): a copy is
	// one round trip to the target, and keys are independent. The
	// checkpoint moves a page at a time, so a resumed run may copy up to a
	// page again (those count as skipped: the target already has them).
	Workers int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() error {
	if o.Namespace == "" || o.From == nil || o.To == nil {
		return errors.New("backfill: namespace, source and target are required")
	}
	if o.Rate < 0 {
		return fmt.Errorf("backfill: rate %v must be >= 0", o.Rate)
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = time.Second
	}
	if o.PageSize <= 0 || o.PageSize > kv.MaxScanLimit {
		o.PageSize = 500
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Report == nil {
		o.Report = func(context.Context, Progress) error { return nil }
	}
	return nil
}

// Run copies every key of the source after o.Resume's checkpoint to the
// target. It first counts the source's keys (for the total and the ETA). On
// cancellation it reports the progress made so far (with a short
// context of its own) and returns the context's error.
func Run(ctx context.Context, o Options) (Progress, error) {
	if err := o.defaults(); err != nil {
		return Progress{}, err
	}
	applied := make([]bool, o.PageSize)
	return run(ctx, job{
		ns: o.Namespace, unit: "keys", rate: o.Rate, resume: o.Resume, report: o.Report, reportEvery: o.ReportEvery, out: o.Out, now: o.Now,
		count: func(ctx context.Context) (uint64, error) { return Count(ctx, o.From, o.Namespace, o.PageSize) },
		page: func(ctx context.Context, lim *limiter, after string) (pageDone, error) {
			page, err := o.From.Scan(ctx, o.Namespace, kv.ScanQuery{After: after, Limit: o.PageSize})
			if err != nil {
				return pageDone{}, fmt.Errorf("backfill %s: scan source after %q: %w", o.Namespace, after, err)
			}
			if err := copyPage(ctx, o, lim, page.Items, applied); err != nil {
				return pageDone{}, err
			}
			n := len(page.Items)
			d := pageDone{n: uint64(n), last: !page.More || n == 0}
			for i := range page.Items {
				if applied[i] {
					d.copied++
				} else {
					d.skipped++
				}
			}
			if n > 0 {
				d.next = page.Items[n-1].Key
			}
			return d, nil
		},
	})
}

// job is a backfill run as the KeyValue and the TimeSeries copy share it:
// the count, the reports, the limiter and the checkpoint; page is what
// differs.
type job struct {
	ns string
	// unit names what is copied in the progress line: keys or events.
	unit        string
	rate        float64
	resume      Progress
	report      func(ctx context.Context, p Progress) error
	reportEvery time.Duration
	out         io.Writer
	now         func() time.Time
	// sleep is the limiter's wait (tests count it instead of waiting).
	sleep func(ctx context.Context, d time.Duration) error
	count func(ctx context.Context) (uint64, error)
	// page reads the page of the source after the checkpoint `after` and
	// copies all of it to the target, or fails.
	page func(ctx context.Context, lim *limiter, after string) (pageDone, error)
}

// pageDone is one page read from the source and copied to the target.
type pageDone struct {
	n, copied, skipped, moved uint64
	// next is the checkpoint after the page; empty keeps the one before.
	next string
	// last: no page follows.
	last bool
}

// run copies page after page from j.resume's checkpoint on. The checkpoint
// only moves past a page once every item of it is copied, so a run killed
// at any point resumes without a gap (repeating at most a page, whose
// copies the target then skips).
func run(ctx context.Context, j job) (Progress, error) {
	p := j.resume
	p.Done = false
	total, err := j.count(ctx)
	if err != nil {
		return p, err
	}
	p.KeysTotal = max(total, p.KeysDone)
	lim := newLimiter(j.rate, j.now)
	if j.sleep != nil {
		lim.sleep = j.sleep
	}
	started, startDone := j.now(), p.KeysDone
	lastReport := started
	report := func(ctx context.Context, final bool) error {
		lastReport = j.now()
		if j.out != nil {
			fmt.Fprintln(j.out, progressLine(j.ns, j.unit, p, started, startDone, lastReport))
		}
		err := j.report(ctx, p)
		if err != nil && !final && j.out != nil {
			fmt.Fprintf(j.out, "backfill %s: reporting progress failed (retrying): %v\n", j.ns, err)
		}
		return err
	}
	stop := func(cause error) (Progress, error) {
		if ctx.Err() != nil {
			cause = ctx.Err() // a kill, whatever the store made of it
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = report(rctx, true)
		return p, cause
	}
	// A first report says the job runs, with the total, and gives the
	// control plane the baseline of its rate.
	_ = report(ctx, false)
	for {
		d, err := j.page(ctx, lim, p.Checkpoint)
		if err != nil {
			return stop(err)
		}
		p.Copied += d.copied
		p.SkippedNewer += d.skipped
		p.Moved += d.moved
		p.KeysDone += d.n
		p.KeysTotal = max(p.KeysTotal, p.KeysDone)
		if d.next != "" {
			p.Checkpoint = d.next
		}
		if j.now().Sub(lastReport) >= j.reportEvery {
			_ = report(ctx, false)
		}
		if d.last {
			break
		}
	}
	p.Done = true
	if err := report(ctx, true); err != nil {
		return p, fmt.Errorf("backfill %s: copied everything but the final report failed (run again to report): %w", j.ns, err)
	}
	return p, nil
}

// copyPage copies items to the target with o.Workers at a time, setting
// applied[i] for each; on error the page counts as not copied.
func copyPage(ctx context.Context, o Options, lim *limiter, items []kv.Item, applied []bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	for i, it := range items {
		g.Go(func() error {
			if err := lim.wait(gctx, 1); err != nil {
				return err
			}
			ok, err := o.To.PutVersion(gctx, o.Namespace, it)
			if err != nil {
				return fmt.Errorf("backfill %s: copy key %q: %w", o.Namespace, it.Key, err)
			}
			applied[i] = ok
			return nil
		})
	}
	return g.Wait()
}

// Count counts the live keys of a namespace with a full scan.
func Count(ctx context.Context, s kv.Store, ns string, pageSize int) (uint64, error) {
	var n uint64
	after := ""
	for {
		page, err := s.Scan(ctx, ns, kv.ScanQuery{After: after, Limit: pageSize})
		if err != nil {
			return n, fmt.Errorf("backfill %s: counting keys: %w", ns, err)
		}
		n += uint64(len(page.Items))
		if !page.More || len(page.Items) == 0 {
			return n, nil
		}
		after = page.Items[len(page.Items)-1].Key
	}
}

// progressLine reads "backfill orders: 1200/5000 keys (24.0%), 850 keys/s,
// ETA 4s, copied 1190, skipped newer 10" (for events: "already there"
// instead of "skipped newer", and the events moved).
func progressLine(ns, unit string, p Progress, started time.Time, startDone uint64, now time.Time) string {
	rate := 0.0
	if dt := now.Sub(started).Seconds(); dt > 0 {
		rate = float64(p.KeysDone-startDone) / dt
	}
	pct := 100.0
	if p.KeysTotal > 0 {
		pct = 100 * float64(p.KeysDone) / float64(p.KeysTotal)
	}
	eta := "-"
	if p.Done {
		eta = "done"
	} else if rate > 0 {
		eta = (time.Duration(float64(p.KeysTotal-p.KeysDone)/rate) * time.Second).Round(time.Second).String()
	}
	line := fmt.Sprintf("backfill %s: %d/%d %s (%.1f%%), %.0f %s/s, ETA %s, copied %d", ns, p.KeysDone, p.KeysTotal, unit, pct, rate, unit, eta, p.Copied)
	if unit == "events" {
		return line + fmt.Sprintf(", already there %d, moved %d", p.SkippedNewer, p.Moved)
	}
	return line + fmt.Sprintf(", skipped newer %d", p.SkippedNewer)
}

// limiter spaces operations 1/rate apart without a burst beyond catching
// up; waits under a millisecond accumulate instead of sleeping.
type limiter struct {
	every time.Duration
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	mu    sync.Mutex
	next  time.Time
}

func newLimiter(rate float64, now func() time.Time) *limiter {
	l := &limiter{now: now, sleep: sleepCtx}
	if rate > 0 {
		l.every = time.Duration(float64(time.Second) / rate)
	}
	return l
}

// wait waits for the turn of n operations done at once (a batch): the
// batch starts at its turn and the next one waits n intervals after it.
func (l *limiter) wait(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.every == 0 || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	if l.next.Before(now) {
		l.next = now
	}
	d := l.next.Sub(now)
	l.next = l.next.Add(time.Duration(n) * l.every)
	l.mu.Unlock()
	if d < time.Millisecond {
		return nil
	}
	return l.sleep(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RepairResult counts what a repair pass found and did.
type RepairResult struct {
	// Compared is the number of source keys looked at.
	Compared uint64 `json:"compared"`
	// Copied source items were missing on the target or older there.
	Copied uint64 `json:"copied"`
	// Rewritten target items held the same version with other content, or
	// a newer version: a versioned copy cannot replace those, so the
	// source item replaced them, If-Match the target's version.
	Rewritten uint64 `json:"rewritten"`
	// Deleted target keys were absent from the source.
	Deleted uint64 `json:"deleted"`
	// Unresolved keys still differ (a write raced the repair, or clocks
	// disagree); the next shadow write or repair settles them.
	Unresolved uint64 `json:"unresolved"`
}

// Repair makes the target equal the source in a full comparison pass both
// ways: it copies source items whose version or content differs on the
// target, and deletes target keys absent from the source (leaving a
// tombstone one above the target's version, so that a late copy of the
// deleted value cannot bring it back). The source is authoritative: run it
// before PROMOTED.
func Repair(ctx context.Context, o Options) (RepairResult, error) {
	if err := o.defaults(); err != nil {
		return RepairResult{}, err
	}
	var r RepairResult
	lim := newLimiter(o.Rate, o.Now)
	ns := o.Namespace
	// Source → target.
	err := scanPages(ctx, o.From, ns, o.PageSize, func(items []kv.Item) error {
		got, err := o.To.MultiGet(ctx, ns, keysOf(items))
		if err != nil {
			return fmt.Errorf("read target: %w", err)
		}
		onTarget := byKey(got)
		for _, it := range items {
			r.Compared++
			t, ok := onTarget[it.Key]
			if ok && t.Version == it.Version && bytes.Equal(t.Value, it.Value) && t.ContentType == it.ContentType {
				continue
			}
			if err := lim.wait(ctx, 1); err != nil {
				return err
			}
			applied, err := o.To.PutVersion(ctx, ns, it)
			if err != nil {
				return fmt.Errorf("copy key %q: %w", it.Key, err)
			}
			if applied {
				r.Copied++
				continue
			}
			if !ok {
				r.Unresolved++ // absent, yet the copy was refused: a newer delete reached the target meanwhile
				continue
			}
			rewritten, err := replace(ctx, o, it, t)
			if err != nil {
				return err
			}
			if rewritten {
				r.Rewritten++
			} else {
				r.Unresolved++
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("repair %s: %w", ns, err)
	}
	// Target → source: keys the source no longer has.
	err = scanPages(ctx, o.To, ns, o.PageSize, func(items []kv.Item) error {
		got, err := o.From.MultiGet(ctx, ns, keysOf(items))
		if err != nil {
			return fmt.Errorf("read source: %w", err)
		}
		onSource := byKey(got)
		for _, it := range items {
			if _, ok := onSource[it.Key]; ok {
				continue
			}
			v, err := nextVersion(it.Version)
			if err != nil {
				return fmt.Errorf("key %q: %w", it.Key, err)
			}
			if err := lim.wait(ctx, 1); err != nil {
				return err
			}
			applied, err := o.To.DeleteVersion(ctx, ns, it.Key, v)
			if err != nil {
				return fmt.Errorf("delete key %q: %w", it.Key, err)
			}
			if applied {
				r.Deleted++
			} else {
				r.Unresolved++
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("repair %s: %w", ns, err)
	}
	return r, nil
}

// replace repairs a target item that a versioned copy cannot fix (the
// same version with other content, or a newer version: a write that never
// happened on the source) with ReplaceVersion, If-Match the target version
// the repair read. The source is not touched, so clients' ETags stay. It
// reports false when the target key changed meanwhile: a shadow write then
// brought a newer write of the source, which is what the target should
// hold.
func replace(ctx context.Context, o Options, it kv.Item, target kv.Item) (bool, error) {
	applied, err := o.To.ReplaceVersion(ctx, o.Namespace, it, target.Version)
	if err != nil {
		return false, fmt.Errorf("replace key %q on the target: %w", it.Key, err)
	}
	return applied, nil
}

// scanPages calls fn with every page of a namespace in key order.
func scanPages(ctx context.Context, s kv.Store, ns string, pageSize int, fn func([]kv.Item) error) error {
	after := ""
	for {
		page, err := s.Scan(ctx, ns, kv.ScanQuery{After: after, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("scan after %q: %w", after, err)
		}
		if len(page.Items) == 0 {
			return nil
		}
		if err := fn(page.Items); err != nil {
			return err
		}
		if !page.More {
			return nil
		}
		after = page.Items[len(page.Items)-1].Key
	}
}

func keysOf(items []kv.Item) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return keys
}

func byKey(items []kv.Item) map[string]kv.Item {
	m := make(map[string]kv.Item, len(items))
	for _, it := range items {
		m[it.Key] = it
	}
	return m
}

// nextVersion is version + 1; versions are decimal numbers (kv.Store).
func nextVersion(version string) (string, error) {
	n, ok := new(big.Int).SetString(version, 10)
	if !ok || n.Sign() < 0 {
		return "", fmt.Errorf("version %q is not a decimal number", version)
	}
	return n.Add(n, big.NewInt(1)).String(), nil
}
