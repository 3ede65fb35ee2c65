package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/migration"
	"github.com/prism-gw/prism/xds/migration/backfill"
)

const migrateUsage = `usage: prism migrate COMMAND NS [flags]   (a client of the admin API)

  start NS --to BACKEND [--read-percent 10] [--mismatch-threshold 0.001] [--min-sample 1000]
  advance NS            SHADOW_WRITE → BACKFILL → SHADOW_READ; PROMOTED → DECOMMISSIONED (moves NS to the target)
  promote NS [--force]  SHADOW_READ → PROMOTED when the mismatch gate allows it
  abort NS              end the migration; NS stays on its source backend
  reset-compare NS      start a new shadow-read comparison window
  status [NS] [--json]  one migration in detail, or all of them
  backfill NS [--rate N] [--workers 4] [--repair] [--start T] [--end T]
                        copy NS from source to target (resumes from the stored checkpoint);
                        --repair compares both ways, fixes the target and resets the comparison;
                        a timeseries NS copies events (--rate is events/s), --start/--end (RFC 3339)
                        bound them by event time, and --repair copies what is missing and reports
                        events that differ at the same position (events are immutable: not rewritten)

Common flags: --admin URL (env PRISM_ADMIN, default http://127.0.0.1:8081, prism dev's admin API),
              --admin-token TOKEN (env PRISM_ADMIN_TOKEN)
`

// runMigrate runs `prism migrate ...`: every step is a call to the admin
// API; backfill also opens both backends itself, with the configs the
// admin API gives.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, migrateUsage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("prism migrate "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateUsage) }
	adminURL := fs.String("admin", envOr("PRISM_ADMIN", "http://127.0.0.1:8081"), "admin API base URL (env PRISM_ADMIN)")
	token := fs.String("admin-token", os.Getenv("PRISM_ADMIN_TOKEN"), "admin bearer token (env PRISM_ADMIN_TOKEN)")
	to := fs.String("to", "", "start: the target backend")
	readPercent := fs.Float64("read-percent", migration.DefaultReadPercent, "start: percent of reads shadowed in SHADOW_READ")
	threshold := fs.Float64("mismatch-threshold", migration.DefaultMismatchThreshold, "start: the largest mismatch rate that allows promotion")
	minSample := fs.Uint64("min-sample", migration.DefaultMinSample, "start: compared reads promotion requires")
	force := fs.Bool("force", false, "promote: ignore the mismatch gate")
	asJSON := fs.Bool("json", false, "status: print the admin API's JSON")
	rate := fs.Float64("rate", 0, "backfill: keys (timeseries: events) per second at most (0: unbounded)")
	repair := fs.Bool("repair", false, "backfill: compare source and target both ways and fix the target")
	workers := fs.Int("workers", 4, "backfill: keys (timeseries: batches of events) copied concurrently")
	var tr timeRange
	fs.Func("start", "backfill of a timeseries namespace: copy events at or after this time (RFC 3339)", tr.set(&tr.start))
	fs.Func("end", "backfill of a timeseries namespace: copy events before this time (RFC 3339)", tr.set(&tr.end))
	ns, err := parseWithName(fs, rest)
	if err != nil {
		return err
	}
	c := &adminClient{base: strings.TrimRight(*adminURL, "/"), token: *token, http: &http.Client{Timeout: 30 * time.Second}}
	if ns == "" && !(cmd == "status") {
		fmt.Fprint(stderr, migrateUsage)
		return fmt.Errorf("migrate %s: the namespace is missing", cmd)
	}
	step := func(body map[string]any) error {
		var s migration.Status
		if err := c.do(ctx, http.MethodPost, migrationPath(ns), body, &s); err != nil {
			return fmt.Errorf("migrate %s %s: %w", cmd, ns, err)
		}
		return printStatus(stdout, s)
	}
	switch cmd {
	case "start":
		body := map[string]any{"action": "start", "to": *to, "read_percent": *readPercent, "mismatch_threshold": *threshold, "min_sample": *minSample}
		return step(body)
	case "advance", "abort":
		return step(map[string]any{"action": cmd})
	case "reset-compare":
		return step(map[string]any{"action": "reset_compare"})
	case "promote":
		return step(map[string]any{"action": "promote", "force": *force})
	case "status":
		return migrateStatus(ctx, c, ns, *asJSON, stdout)
	case "backfill":
		return migrateBackfill(ctx, c, ns, backfill.Options{Namespace: ns, Rate: *rate, Workers: *workers, Out: stderr}, tr, *repair, stdout)
	}
	fmt.Fprint(stderr, migrateUsage)
	return fmt.Errorf("migrate: unknown command %q", cmd)
}

// parseWithName parses flags given before or after the one positional
// argument (the namespace).
func parseWithName(fs *flag.FlagSet, args []string) (string, error) {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	switch {
	case fs.NArg() > 1 || (fs.NArg() == 1 && name != ""):
		return "", fmt.Errorf("unexpected arguments %q", fs.Args())
	case fs.NArg() == 1:
		name = fs.Arg(0)
	}
	return name, nil
}

// timeRange is the --start/--end of a timeseries backfill.
type timeRange struct{ start, end time.Time }

func (r *timeRange) set(t *time.Time) func(string) error {
	return func(v string) error {
		x, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", err)
		}
		*t = x
		return nil
	}
}

func (r timeRange) isZero() bool { return r.start.IsZero() && r.end.IsZero() }

func migrationPath(ns string) string {
	return "/v1/admin/namespaces/" + url.PathEscape(ns) + "/migration"
}

func migrateStatus(ctx context.Context, c *adminClient, ns string, asJSON bool, stdout io.Writer) error {
	if ns == "" {
		var list struct {
			Migrations []migration.Status `json:"migrations"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/admin/migrations", nil, &list); err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAMESPACE\tFROM\tTO\tPHASE\tCOMPARED\tMISMATCH RATE\tBACKFILL\tCAN PROMOTE")
		for _, s := range list.Migrations {
			m, err := decodeMigration(s)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.6f\t%s\t%v\n", m.GetNamespace(), m.GetFrom(), m.GetTo(), m.GetPhase(),
				s.Stats.ReadsCompared, s.Stats.MismatchRate, s.Backfill.State, s.Gate.CanPromote)
		}
		return tw.Flush()
	}
	var s migration.Status
	if err := c.do(ctx, http.MethodGet, migrationPath(ns), nil, &s); err != nil {
		return fmt.Errorf("migrate status %s: %w", ns, err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(s)
	}
	return printStatus(stdout, s)
}

func decodeMigration(s migration.Status) (*configv1.Migration, error) {
	m := &configv1.Migration{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(s.Migration, m); err != nil {
		return nil, fmt.Errorf("the admin API sent a migration this prism cannot read: %w", err)
	}
	return m, nil
}

// printStatus renders a migration's status as tables for a terminal.
func printStatus(w io.Writer, s migration.Status) error {
	m, err := decodeMigration(s)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "namespace\t%s\n", m.GetNamespace())
	fmt.Fprintf(tw, "migration\t%s → %s  (id %s)\n", m.GetFrom(), m.GetTo(), m.GetId())
	fmt.Fprintf(tw, "phase\t%s\n", m.GetPhase())
	fmt.Fprintf(tw, "settings\tread_percent %v, mismatch_threshold %v, min_sample %d, compare_epoch %d\n",
		m.GetReadPercent(), m.GetMismatchThreshold(), m.GetMinSample(), m.GetCompareEpoch())
	st := s.Stats
	fmt.Fprintf(tw, "shadow writes\t%d (%d failed)\n", st.ShadowWrites, st.ShadowWriteFailures)
	fmt.Fprintf(tw, "shadow reads\t%d compared, %d mismatched (rate %.6f)\n", st.ReadsCompared, st.Mismatches, st.MismatchRate)
	if len(st.MismatchKeys) > 0 {
		fmt.Fprintf(tw, "mismatched keys\t%s\n", strings.Join(st.MismatchKeys, " "))
	}
	if len(st.FailedKeys) > 0 {
		fmt.Fprintf(tw, "failed keys\t%s\n", strings.Join(st.FailedKeys, " "))
	}
	b := s.Backfill
	fmt.Fprintf(tw, "backfill\t%s", b.State)
	switch {
	case b.State == "idle":
	case isTimeSeries(s):
		fmt.Fprintf(tw, ", %d/%d events, copied %d, already there %d, moved %d, %.0f events/s, checkpoint %q",
			b.KeysDone, b.KeysTotal, b.Copied, b.SkippedNewer, b.Moved, b.Rate, b.Checkpoint)
	default:
		fmt.Fprintf(tw, ", %d/%d keys, copied %d, skipped newer %d, %.0f keys/s, checkpoint %q", b.KeysDone, b.KeysTotal, b.Copied, b.SkippedNewer, b.Rate, b.Checkpoint)
	}
	fmt.Fprintln(tw)
	if f := m.GetHandoverFloor(); f != 0 {
		fmt.Fprintf(tw, "handover floor\t%d (positions above it were assigned by the store now taking appends)\n", f)
	}
	verdict := "no"
	if s.Gate.CanPromote {
		verdict = "yes"
	}
	fmt.Fprintf(tw, "can promote\t%s: %s\n", verdict, s.Gate.Reason)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Nodes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tPHASE\tSHADOW WRITES\tFAILED\tCOMPARED\tMISMATCHES\tREPORTED")
		nodes := make([]string, 0, len(st.Nodes))
		for n := range st.Nodes {
			nodes = append(nodes, n)
		}
		slices.Sort(nodes)
		for _, n := range nodes {
			x := st.Nodes[n]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", n, x.Phase, x.ShadowWrites, x.ShadowWriteFailures, x.ReadsCompared, x.Mismatches, x.ReportedAt.Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(s.History) > 0 {
		fmt.Fprintln(w, "\nhistory:")
		for _, h := range s.History {
			fmt.Fprintf(w, "  %s  %-13s %s (compare epoch %d)\n", h.At.Format(time.RFC3339), h.Action, h.Phase, h.CompareEpoch)
		}
	}
	return nil
}

// waitFleetCopying waits until every connected extproc node reports that
// it acts on a phase that copies writes (BACKFILL or later) for the
// migration of ns. A node's ACK of the current config is not enough: right
// after a step the control plane may not have sent the new phase yet, and
// the nodes' reports (every 2 s) name the phase they act on.
func (c *adminClient) waitFleetCopying(ctx context.Context, ns string, wait time.Duration, out io.Writer) error {
	deadline := time.Now().Add(wait)
	for said := false; ; {
		var fleet struct {
			Nodes []struct {
				ID        string `json:"id"`
				Class     string `json:"class"`
				Connected bool   `json:"connected"`
			} `json:"nodes"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/admin/nodes", nil, &fleet); err != nil {
			return err
		}
		var s migration.Status
		if err := c.do(ctx, http.MethodGet, migrationPath(ns), nil, &s); err != nil {
			return err
		}
		var behind []string
		for _, n := range fleet.Nodes {
			if n.Class != "extproc" || !n.Connected {
				continue
			}
			switch s.Stats.Nodes[n.ID].Phase {
			case migration.PhaseName(migration.Backfill), migration.PhaseName(migration.ShadowRead):
			default:
				behind = append(behind, n.ID)
			}
		}
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("extproc nodes %v do not report acting on BACKFILL after %s; backfilling now could miss their writes", behind, wait)
		}
		if !said {
			fmt.Fprintf(out, "waiting for extproc nodes %v to act on the current phase\n", behind)
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// isTimeSeries reports whether a migration moves a timeseries namespace,
// whose backfill copies events rather than keys.
func isTimeSeries(s migration.Status) bool { return s.Abstraction == "timeseries" }

// migrateBackfill runs the backfill job (or, with repair, the repair pass)
// of ns here, reporting to the admin API.
func migrateBackfill(ctx context.Context, c *adminClient, ns string, opts backfill.Options, tr timeRange, repair bool, stdout io.Writer) error {
	var s migration.Status
	if err := c.do(ctx, http.MethodGet, migrationPath(ns), nil, &s); err != nil {
		return fmt.Errorf("migrate backfill %s: %w", ns, err)
	}
	m, err := decodeMigration(s)
	if err != nil {
		return err
	}
	if !tr.isZero() && !isTimeSeries(s) {
		return fmt.Errorf("migrate backfill %s: --start and --end bound the events of a timeseries namespace; %s serves %s", ns, ns, s.Abstraction)
	}
	if p := m.GetPhase(); p != migration.Backfill && p != migration.ShadowRead {
		return fmt.Errorf("migrate backfill %s: the migration is in %s; backfill runs in BACKFILL or SHADOW_READ (advance it once every extproc node shadows writes)", ns, p)
	}
	// A node that does not copy writes yet could write a key behind the
	// copy's back; start only when every extproc node acts on the phase.
	if err := c.waitFleetCopying(ctx, ns, 30*time.Second, stdout); err != nil {
		return fmt.Errorf("migrate backfill %s: %w", ns, err)
	}
	unit, skipped := "keys", "skipped newer"
	if isTimeSeries(s) {
		unit, skipped = "events", "already there"
	}
	// A time range asks for a copy of those events even after a backfill
	// is done (of another range, maybe).
	if !repair && s.Backfill.State == "done" && tr.isZero() {
		fmt.Fprintf(stdout, "backfill of %s is already done: %d %s, copied %d, %s %d\n", ns, s.Backfill.KeysDone, unit, s.Backfill.Copied, skipped, s.Backfill.SkippedNewer)
		if isTimeSeries(s) {
			fmt.Fprintf(stdout, "  (--start/--end copy a time range again; --repair copies whatever is missing)\n")
		}
		return nil
	}
	from, err := c.backend(ctx, m.GetFrom())
	if err != nil {
		return err
	}
	to, err := c.backend(ctx, m.GetTo())
	if err != nil {
		return err
	}
	var resume backfill.Progress
	if b := s.Backfill; b.State == "running" && !repair {
		resume = backfill.Progress{Checkpoint: b.Checkpoint, KeysDone: b.KeysDone, KeysTotal: b.KeysTotal, Copied: b.Copied, SkippedNewer: b.SkippedNewer, Moved: b.Moved}
		fmt.Fprintf(opts.Out, "backfill %s: resuming after %q (%d %s done)\n", ns, b.Checkpoint, b.KeysDone, unit)
	}
	job := backfillJobName()
	update := func(p backfill.Progress) migration.BackfillUpdate {
		return migration.BackfillUpdate{MigrationID: m.GetId(), Job: job, Checkpoint: p.Checkpoint, KeysDone: p.KeysDone, KeysTotal: p.KeysTotal,
			Copied: p.Copied, SkippedNewer: p.SkippedNewer, Moved: p.Moved, Done: p.Done}
	}
	report := func(ctx context.Context, p backfill.Progress) error {
		return c.do(ctx, http.MethodPut, migrationPath(ns)+"/backfill", update(p), nil)
	}
	if !repair {
		if err := c.claimBackfill(ctx, ns, update(resume), stdout); err != nil {
			return fmt.Errorf("migrate backfill %s: %w", ns, err)
		}
	}
	if isTimeSeries(s) {
		o := backfill.TSOptions{Namespace: ns, Start: tr.start, End: tr.end, Rate: opts.Rate, Workers: opts.Workers, Out: opts.Out, Resume: resume, Report: report}
		return backfillTS(ctx, c, from, to, o, repair, stdout)
	}
	src, dst, err := backfill.Open(ctx, from, to)
	if err != nil {
		return fmt.Errorf("migrate backfill %s: %w", ns, err)
	}
	defer src.Close()
	defer dst.Close()
	opts.From, opts.To = src, dst
	if repair {
		r, err := backfill.Repair(ctx, opts)
		fmt.Fprintf(stdout, "repair %s: compared %d source keys, copied %d, rewrote %d (same or newer version on the target), deleted %d from the target, %d unresolved\n",
			ns, r.Compared, r.Copied, r.Rewritten, r.Deleted, r.Unresolved)
		if err != nil {
			return err
		}
		return c.resetAfterRepair(ctx, ns, stdout)
	}
	opts.Resume, opts.Report = resume, report
	p, err := backfill.Run(ctx, opts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("backfill %s interrupted after %q (%d keys); run it again to resume", ns, p.Checkpoint, p.KeysDone)
		}
		return err
	}
	fmt.Fprintf(stdout, "backfill %s done: %d keys, copied %d, skipped %d that shadow writes had already made newer\n", ns, p.KeysDone, p.Copied, p.SkippedNewer)
	return nil
}

// backfillJobName names this backfill job in its reports (host/pid/random).
func backfillJobName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%04x", host, os.Getpid(), rand.Uint32()&0xffff)
}

// claimBackfill reports the job's starting point under its name before it
// copies anything: the control plane refuses it while another job of the
// migration reports, since two jobs would interleave their checkpoints. A
// job killed without a word holds the backfill until its lease lapses
// (migration.JobLease after its last report), so that one is waited out; a
// job that keeps reporting is not.
func (c *adminClient) claimBackfill(ctx context.Context, ns string, u migration.BackfillUpdate, out io.Writer) error {
	deadline := time.Now().Add(migration.JobLease + 3*time.Second)
	for said := false; ; {
		err := c.do(ctx, http.MethodPut, migrationPath(ns)+"/backfill", u, nil)
		if err == nil {
			return nil
		}
		var s migration.Status
		if c.do(ctx, http.MethodGet, migrationPath(ns), nil, &s) != nil || time.Now().After(deadline) {
			return err
		}
		b := s.Backfill
		if b.State != "running" || b.Job == "" || b.Job == u.Job || b.UpdatedAt == nil {
			return err // refused for another reason
		}
		if !said {
			fmt.Fprintf(out, "backfill job %s holds %s (last report at %s); waiting up to %s for its lease to lapse\n",
				b.Job, ns, b.UpdatedAt.Format(time.RFC3339), migration.JobLease)
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// backfillTS is the backfill (or repair pass) of a timeseries namespace:
// events are copied at their source positions.
func backfillTS(ctx context.Context, c *adminClient, from, to *configv1.Backend, o backfill.TSOptions, repair bool, stdout io.Writer) error {
	ns := o.Namespace
	src, dst, err := backfill.OpenTS(ctx, ns, from, to)
	if err != nil {
		return fmt.Errorf("migrate backfill %s: %w", ns, err)
	}
	defer src.Close()
	defer dst.Close()
	o.From, o.To = src, dst
	if repair {
		r, err := backfill.RepairTS(ctx, o)
		fmt.Fprintf(stdout, "repair %s: compared %d source events, copied %d missing (%d at another position), %d differ at the same position\n",
			ns, r.Compared, r.Copied, r.Moved, r.Diverged)
		if r.Diverged > 0 {
			fmt.Fprintf(stdout, "  events are immutable, so those are reported, not rewritten: %s\n", strings.Join(r.Sample, " "))
		}
		if err != nil {
			return err
		}
		return c.resetAfterRepair(ctx, ns, stdout)
	}
	p, err := backfill.RunTS(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("backfill %s interrupted after %q (%d events); run it again to resume", ns, p.Checkpoint, p.KeysDone)
		}
		return err
	}
	fmt.Fprintf(stdout, "backfill %s done: %d events, copied %d, skipped %d the target already had\n", ns, p.KeysDone, p.Copied, p.SkippedNewer)
	if p.Moved > 0 {
		fmt.Fprintf(stdout, "  %d events could not keep their position on %s (taken by another series): cursors naming them resume elsewhere\n", p.Moved, to.GetName())
	}
	return nil
}

// resetAfterRepair opens a new comparison window once a repair has fixed
// the target.
func (c *adminClient) resetAfterRepair(ctx context.Context, ns string, stdout io.Writer) error {
	var s migration.Status
	if err := c.do(ctx, http.MethodPost, migrationPath(ns), map[string]any{"action": "reset_compare"}, &s); err != nil {
		return fmt.Errorf("migrate backfill %s: repaired, but resetting the comparison failed (run prism migrate reset-compare %s): %w", ns, ns, err)
	}
	fmt.Fprintf(stdout, "comparison reset: shadow reads are compared afresh from now on\n")
	return nil
}

// backend reads a backend's config from the admin API.
func (c *adminClient) backend(ctx context.Context, name string) (*configv1.Backend, error) {
	var resp struct {
		Backend json.RawMessage `json:"backend"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/admin/backends/"+url.PathEscape(name), nil, &resp); err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	b := &configv1.Backend{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(resp.Backend, b); err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	return b, nil
}
