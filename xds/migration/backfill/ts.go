package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/prism-gw/prism/backends/ts"
)

// TSOptions configure the backfill (RunTS) or the repair pass (RepairTS) of
// a TimeSeries namespace. Namespace, From and To are required.
//
// Events are copied at the position they have in the source
// (ts.Replica.Copy), so the order of the copies does not matter: a page is
// split into batches copied concurrently, and an event already on the
// target (a shadow copy, or a page repeated after a resume) is skipped.
type TSOptions struct {
	Namespace string
	From      ts.Exporter
	To        ts.Replica
	// Start and End bound the events copied by event time (Start
	// inclusive, End exclusive); zero values leave that side open.
	Start, End time.Time
	// Rate bounds the events copied per second; 0 is unbounded.
	Rate float64
	// Resume is the progress of an earlier run; the copy continues after
	// its checkpoint (an export position).
	Resume Progress
	// Report is called every ReportEvery and once at the end, as for Run;
	// RepairTS never calls it (the backfill's progress stays as it was).
	Report      func(ctx context.Context, p Progress) error
	ReportEvery time.Duration
	// Out receives a progress line per ReportEvery; nil: none.
	Out io.Writer
	// PageSize is the number of events exported per page (default 500, at
	// most ts.MaxLimit). The checkpoint moves a page at a time.
	PageSize int
	// Workers copy the batches a page is split into concurrently (default
	// 4): each is one transaction on the target. A page is split only
	// between series, so a page of one series is one batch.
	Workers int
	// Now is the clock; default time.Now.
	Now func() time.Time

	// sleep replaces the limiter's wait in tests.
	sleep func(ctx context.Context, d time.Duration) error
}

func (o *TSOptions) defaults() error {
	if o.Namespace == "" || o.From == nil || o.To == nil {
		return errors.New("backfill: namespace, source and target are required")
	}
	if o.Rate < 0 {
		return fmt.Errorf("backfill: rate %v must be >= 0", o.Rate)
	}
	if !o.Start.IsZero() && !o.End.IsZero() && !o.End.After(o.Start) {
		return fmt.Errorf("backfill: end %s is not after start %s", o.End.Format(time.RFC3339Nano), o.Start.Format(time.RFC3339Nano))
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = time.Second
	}
	if o.PageSize <= 0 || o.PageSize > ts.MaxLimit {
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

// job makes the shared run of o, its pages compared after the copy when
// compare is set.
func (o *TSOptions) job(compare func(ctx context.Context, events []ts.Event) error) job {
	return job{
		ns: o.Namespace, unit: "events", rate: o.Rate, resume: o.Resume, report: o.Report, reportEvery: o.ReportEvery,
		out: o.Out, now: o.Now, sleep: o.sleep,
		count: func(ctx context.Context) (uint64, error) {
			n, err := o.From.Count(ctx, o.Namespace, o.Start, o.End)
			if err != nil {
				return 0, fmt.Errorf("backfill %s: counting events: %w", o.Namespace, err)
			}
			return uint64(max(n, 0)), nil
		},
		page: func(ctx context.Context, lim *limiter, after string) (pageDone, error) {
			events, next, err := o.From.Export(ctx, o.Namespace, ts.ExportArgs{Start: o.Start, End: o.End, After: after, Limit: o.PageSize})
			if err != nil {
				return pageDone{}, fmt.Errorf("backfill %s: export source after %q: %w", o.Namespace, after, err)
			}
			d, err := o.copyEvents(ctx, lim, events)
			if err != nil {
				return pageDone{}, err
			}
			if compare != nil {
				if err := compare(ctx, events); err != nil {
					return pageDone{}, err
				}
			}
			// The last page has no position after it: the checkpoint stays
			// before it, and the run is done.
			d.next, d.last = next, next == "" || len(events) == 0
			return d, nil
		},
	}
}

// copyEvents copies one exported page in o.Workers batches at once; on
// error the page counts as not copied (a resumed run repeats it, and the
// target skips what it got).
func (o *TSOptions) copyEvents(ctx context.Context, lim *limiter, events []ts.Event) (pageDone, error) {
	batches := split(events, o.Workers)
	type result struct{ stored, moved int }
	results := make([]result, len(batches))
	g, gctx := errgroup.WithContext(ctx)
	for i, b := range batches {
		g.Go(func() error {
			if err := lim.wait(gctx, len(b)); err != nil {
				return err
			}
			stored, moved, err := o.To.Copy(gctx, o.Namespace, b)
			if err != nil {
				return fmt.Errorf("backfill %s: copy %d events from %s: %w", o.Namespace, len(b), position(b[0]), err)
			}
			results[i] = result{stored, moved}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return pageDone{}, err
	}
	d := pageDone{n: uint64(len(events))}
	for _, r := range results {
		d.copied += uint64(r.stored)
		d.moved += uint64(r.moved)
	}
	// Copy counts a moved event as stored (it is, elsewhere); the rest
	// were on the target already.
	d.skipped = d.n - min(d.copied, d.n)
	return d, nil
}

// split cuts a page into at most n batches of about equal size, only
// where the series changes: concurrent copies into one series would
// contend for its position counter (Postgres) and gain nothing.
func split(events []ts.Event, n int) [][]ts.Event {
	if len(events) == 0 {
		return nil
	}
	size := (len(events) + n - 1) / n
	var out [][]ts.Event
	start := 0
	for i := 1; i < len(events); i++ {
		if i-start >= size && events[i].Series != events[i-1].Series {
			out = append(out, events[start:i])
			start = i
		}
	}
	return append(out, events[start:])
}

func position(e ts.Event) string { return e.Series + "@" + strconv.FormatInt(e.Seq, 10) }

// RunTS copies every event of the source in o's time range, after
// o.Resume's checkpoint, to the target at its source position. It first
// counts the events (for the total and the ETA); KeysDone and KeysTotal of
// the progress count events, SkippedNewer the events the target already
// had. On cancellation it reports the progress made so far and returns the
// context's error.
func RunTS(ctx context.Context, o TSOptions) (Progress, error) {
	if err := o.defaults(); err != nil {
		return Progress{}, err
	}
	return run(ctx, o.job(nil))
}

// TSRepairResult counts what a TimeSeries repair pass found and did.
type TSRepairResult struct {
	// Compared is the number of source events looked at.
	Compared uint64 `json:"compared"`
	// Copied events were missing on the target (a failed shadow copy).
	Copied uint64 `json:"copied"`
	// Moved events were copied at another position than the source's.
	Moved uint64 `json:"moved"`
	// Diverged target events sit at a source event's position with other
	// content (time, id, data or tags). Events are immutable and a
	// position is never reassigned, so the repair reports them and does
	// not rewrite them; Sample names some as series@position.
	Diverged uint64   `json:"diverged"`
	Sample   []string `json:"sample"`
}

// maxDivergedSample bounds TSRepairResult.Sample.
const maxDivergedSample = 20

// RepairTS is the repair pass of a TimeSeries migration: a full second
// copy of the source (Copy skips what the target has, so it copies what
// is missing), which then reads the target's events at the positions of
// each page back and compares them. The comparison costs a query per
// series of each page on the target. It ignores o.Resume and never
// reports progress to the control plane.
func RepairTS(ctx context.Context, o TSOptions) (TSRepairResult, error) {
	o.Resume = Progress{}
	o.Report = nil
	if err := o.defaults(); err != nil {
		return TSRepairResult{}, err
	}
	var r TSRepairResult
	p, err := run(ctx, o.job(func(ctx context.Context, events []ts.Event) error {
		return o.compare(ctx, events, &r)
	}))
	r.Compared, r.Copied, r.Moved = p.KeysDone, p.Copied, p.Moved
	if err != nil {
		return r, fmt.Errorf("repair %s: %w", o.Namespace, err)
	}
	return r, nil
}

// compare reads the target's events of each series of a page in the
// page's time span and counts those at a page event's position whose
// content differs. An event absent at its position was moved by Copy (or
// is gone by retention): not a divergence.
func (o *TSOptions) compare(ctx context.Context, events []ts.Event, r *TSRepairResult) error {
	for len(events) > 0 {
		n := 1
		for n < len(events) && events[n].Series == events[0].Series {
			n++
		}
		group := events[:n]
		events = events[n:]
		onTarget, err := o.targetEvents(ctx, group)
		if err != nil {
			return err
		}
		for _, e := range group {
			t, ok := onTarget[e.Seq]
			if !ok || sameEvent(e, t) {
				continue
			}
			r.Diverged++
			if len(r.Sample) < maxDivergedSample {
				r.Sample = append(r.Sample, position(e))
			}
		}
	}
	return nil
}

// targetEvents returns the target's events of one series in the time span
// of group (events of that series), by position.
func (o *TSOptions) targetEvents(ctx context.Context, group []ts.Event) (map[int64]ts.Event, error) {
	lo, hi := group[0].Time, group[0].Time
	for _, e := range group[1:] {
		if e.Time.Before(lo) {
			lo = e.Time
		}
		if e.Time.After(hi) {
			hi = e.Time
		}
	}
	series := group[0].Series
	out := make(map[int64]ts.Event, len(group))
	q := ts.QueryArgs{Series: series, Start: lo, End: hi.Add(time.Nanosecond), Limit: ts.MaxLimit}
	for {
		page, err := o.To.Query(ctx, o.Namespace, q)
		if err != nil {
			return nil, fmt.Errorf("read target series %s: %w", series, err)
		}
		for _, e := range page.Events {
			out[e.Seq] = e
		}
		if page.NextCursor == "" {
			return out, nil
		}
		q.Cursor = page.NextCursor
	}
}

// sameEvent compares what a copy must keep; Data as JSON values, since
// drivers may return it with other whitespace or key order.
func sameEvent(a, b ts.Event) bool {
	return a.Time.Equal(b.Time) && a.ID == b.ID && maps.Equal(a.Tags, b.Tags) && sameJSON(a.Data, b.Data)
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}
