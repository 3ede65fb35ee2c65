// Package nats is the TimeSeries driver for NATS JetStream (package
// jetstream of nats.go), registered as "nats". The DSN is described at
// ParseDSN.
//
// # Layout
//
// Each namespace is a stream, Options.StreamPrefix + the escaped namespace
// (see package internal/escape: letters, digits and '-' kept, any other byte as _XX), holding
// the subjects <SubjectPrefix>.<namespace>.<series>, each escaped into one
// token. A message is one event, its body the JSON of package
// internal/wire, so other NATS clients can read the stream. The stream
// keeps messages for the namespace's Retention (MaxAge, by append time) in
// file storage with Options.Replicas replicas, and allows direct gets.
//
// # De-duplication
//
// An event with an id is published with Nats-Msg-Id = digest(series, id):
// JetStream de-duplicates message ids per stream, so the series is part of
// the id. The server remembers ids for the stream's duplicate window — the
// namespace's DuplicateWindow (default 2m, capped at Retention as
// JetStream requires) — across all gateways. An event re-appended after the
// window is stored again.
//
// # Positions and cursors
//
// An event's position is its stream sequence. A tail cursor holds the
// stream sequence of the last event seen; a query cursor holds the (event
// time, stream sequence) of the last event of the page. Without a cursor,
// a tail starts after the stream's last sequence.
//
// # Time queries
//
// JetStream indexes messages by the time it stored them, not by event time.
// Queries use package internal/logscan: events must lie within the
// namespace's TimeWindow (default 5m) of their append, a page starts an
// ephemeral consumer filtered on the series' subject at DeliverByStartTime =
// (the page's earliest time - window) and reads until no later message can
// belong to the page. A descending page reads backwards in time chunks of
// doubling length, each one such consumer stopping at the sequence where
// the previous chunk began, and keeps the newest events.
//
// # Tails
//
// A tail reads the messages of its subject after its sequence with direct
// gets (next message by subject), and a consumer when there are many. To
// wait, it blocks on an in-process notifier fed by one ordered,
// headers-only consumer per namespace (DeliverNew), started by the first
// waiting tail and shared by all: an append by any gateway wakes the tails
// of its series once the server has stored it. Waiting tails re-read every
// Options.PollInterval (default 5s) in case that consumer missed something
// while it was re-created.
//
// # Durability
//
// Append returns after JetStream acknowledged every message: stored on a
// majority of the stream's replicas. A single-server stream's durability
// across power loss depends on the server's sync_interval.
package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/internal/logscan"
	"github.com/prism-gw/prism/backends/ts/internal/notify"
	"github.com/prism-gw/prism/backends/ts/internal/nsopts"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
)

func init() {
	ts.Register("nats", func(ctx context.Context, dsn string) (ts.Store, error) {
		opts, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return Open(ctx, opts)
	})
}

// Store is a ts.Store on NATS JetStream.
type Store struct {
	nc   *natsio.Conn
	js   jetstream.JetStream
	opts Options
	hub  notify.Hub

	mu     sync.Mutex
	spaces map[string]*space

	closeOnce sync.Once
}

var _ ts.Store = (*Store)(nil)

// space is a provisioned namespace.
type space struct {
	ns       string
	stream   jetstream.Stream
	name     string // the stream's name
	subjects string // subject prefix of its series, ending in '.'
	window   time.Duration

	watchMu sync.Mutex
	watch   jetstream.ConsumeContext // nil until a tail waits
}

func (sp *space) subject(series string) string { return sp.subjects + token(series) }

// Open connects to the NATS servers of opts.URL.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	nc, err := natsio.Connect(opts.URL,
		natsio.Name("prism-ts"),
		natsio.Timeout(opts.Timeout),
		natsio.MaxReconnects(-1),
		natsio.RetryOnFailedConnect(false),
	)
	if err != nil {
		return nil, fmt.Errorf("nats ts: connect %s: %w: %w", opts.URL, ts.ErrUnavailable, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithDefaultTimeout(opts.Timeout),
		jetstream.WithPublishAsyncTimeout(opts.Timeout),
		jetstream.WithPublishAsyncMaxPending(4*ts.MaxBatch),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats ts: %w", err)
	}
	s := &Store{nc: nc, js: js, opts: opts, spaces: map[string]*space{}}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return nil, fail(ctx, "JetStream account", err)
	}
	return s, nil
}

// Close stops the notification consumers and closes the connection. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		for _, sp := range s.spaces {
			sp.stopWatch()
		}
		s.mu.Unlock()
		s.nc.Close()
		s.hub.NotifyAll()
	})
	return nil
}

// streamName is the stream of ns.
func (s *Store) streamName(ns string) string { return s.opts.StreamPrefix + nsToken(ns) }

// EnsureNamespace creates or updates the namespace's stream.
func (s *Store) EnsureNamespace(ctx context.Context, ns string, opts ts.NamespaceOptions) error {
	if err := nsopts.Check(ns, opts); err != nil {
		return fmt.Errorf("nats ts: ensure namespace: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "ensure namespace", err)
	}
	dup := opts.DuplicateWindow
	if dup == 0 {
		dup = ts.DefaultDuplicateWindow
	}
	if opts.Retention > 0 && dup > opts.Retention {
		dup = opts.Retention // JetStream requires Duplicates <= MaxAge
	}
	window := opts.TimeWindow
	if window == 0 {
		window = ts.DefaultLogTimeWindow
	}
	name := s.streamName(ns)
	subjects := s.opts.SubjectPrefix + "." + nsToken(ns) + "."
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "Prism TimeSeries namespace " + ns,
		Subjects:    []string{subjects + ">"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      opts.Retention,
		Duplicates:  dup,
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
		AllowDirect: true,
	}
	// Size limits belong to the operator (prism ns apply sets them from the
	// namespace's capacity plan): an update keeps those of the stream
	// rather than resetting them to unlimited.
	if cur, err := s.js.Stream(ctx, name); err == nil {
		have := cur.CachedInfo().Config
		cfg.MaxBytes, cfg.MaxMsgs, cfg.MaxMsgSize = have.MaxBytes, have.MaxMsgs, have.MaxMsgSize
	}
	stream, err := s.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fail(ctx, "ensure namespace: stream "+name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.spaces[ns]; old != nil {
		old.stopWatch()
	}
	s.spaces[ns] = &space{ns: ns, stream: stream, name: name, subjects: subjects, window: window}
	return nil
}

// DropNamespace deletes the namespace's stream.
func (s *Store) DropNamespace(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "drop namespace", err)
	}
	s.mu.Lock()
	if sp := s.spaces[ns]; sp != nil {
		sp.stopWatch()
		delete(s.spaces, ns)
	}
	s.mu.Unlock()
	if err := ts.ValidateNamespace(ns); err != nil {
		return nil // never provisioned
	}
	err := s.js.DeleteStream(ctx, s.streamName(ns))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fail(ctx, "drop namespace", err)
	}
	return nil
}

// space returns the provisioned namespace ns.
func (s *Store) space(ns string) (*space, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaces[ns]
	if sp == nil {
		return nil, fmt.Errorf("%w: %q (not provisioned in this store)", ts.ErrNotFound, ns)
	}
	return sp, nil
}

// Append publishes each event as a message and waits for all
// acknowledgements.
func (s *Store) Append(ctx context.Context, ns string, events []ts.Event) (appended, duplicates int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fail(ctx, "append", err)
	}
	sp, err := s.space(ns)
	if err != nil {
		return 0, 0, fmt.Errorf("nats ts: append: %w", err)
	}
	if err := ts.ValidateEvents(events); err != nil {
		return 0, 0, fmt.Errorf("nats ts: append: %w", err)
	}
	if err := ts.CheckTimeWindow(events, time.Now(), sp.window); err != nil {
		return 0, 0, fmt.Errorf("nats ts: append: %w", err)
	}
	// Build every message first, so a bad event publishes nothing.
	msgs := make([]*natsio.Msg, len(events))
	limit := s.nc.MaxPayload()
	for i := range events {
		e := &events[i]
		body, err := wire.Marshal(e)
		if err != nil {
			return 0, 0, fmt.Errorf("nats ts: append: %w", err)
		}
		m := natsio.NewMsg(sp.subject(e.Series))
		m.Data = body
		if e.ID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID(e.Series, e.ID))
		}
		if int64(len(body)+256) > limit {
			return 0, 0, fmt.Errorf("nats ts: append: event %d: %w: %d bytes, the server accepts %d", i, ts.ErrTooLarge, len(body), limit)
		}
		msgs[i] = m
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(sp.name))
		if err != nil {
			return appended, duplicates, fail(ctx, "append", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				duplicates++
			} else {
				appended++
			}
		case err := <-f.Err():
			return appended, duplicates, fail(ctx, "append", err)
		case <-ctx.Done():
			return appended, duplicates, fail(ctx, "append", ctx.Err())
		}
	}
	// The namespace's notification consumer wakes tails too, also on other
	// gateways; this saves local tails its round trip.
	if appended > 0 {
		for _, m := range msgs {
			s.hub.Notify(m.Subject)
		}
	}
	return appended, duplicates, nil
}

// Query returns one page of a series' events in time order.
func (s *Store) Query(ctx context.Context, ns string, q ts.QueryArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	sp, err := s.space(ns)
	if err != nil {
		return ts.Page{}, fmt.Errorf("nats ts: query: %w", err)
	}
	if err := q.Validate(); err != nil {
		return ts.Page{}, fmt.Errorf("nats ts: query: %w", err)
	}
	tag := cursor.TagOf(ns, q.Series)
	lq, err := logscan.QueryOf(q, cursor.NATS, tag, sp.window, time.Now())
	if err != nil {
		return ts.Page{}, fmt.Errorf("nats ts: query: %w", err)
	}
	src, err := s.newSource(ctx, sp, q.Series)
	if err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	if src.empty() {
		return ts.Page{}, nil
	}
	recs, more, err := logscan.Page(ctx, src, lq)
	if err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	return logscan.PageOf(recs, more, cursor.NATS, q.Desc, tag, func(r logscan.Record) []int64 { return []int64{r.Pos} }), nil
}

// Tail returns the events appended after t.After, waiting up to t.Wait.
func (s *Store) Tail(ctx context.Context, ns string, t ts.TailArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	sp, err := s.space(ns)
	if err != nil {
		return ts.Page{}, fmt.Errorf("nats ts: tail: %w", err)
	}
	if err := t.Validate(); err != nil {
		return ts.Page{}, fmt.Errorf("nats ts: tail: %w", err)
	}
	tag := cursor.TagOf(ns, t.Series)
	var after uint64
	if t.After != "" {
		f, err := cursor.Decode(t.After, cursor.NATS, cursor.Tail, tag, 1)
		if err != nil {
			return ts.Page{}, fmt.Errorf("nats ts: tail: %w", err)
		}
		if f[0] < 0 {
			return ts.Page{}, fmt.Errorf("nats ts: tail: %w: negative sequence", ts.ErrInvalidCursor)
		}
		after = uint64(f[0])
	}
	subject := sp.subject(t.Series)
	if t.Wait > 0 {
		// Running before the first read, so that a message stored after
		// that read is delivered to it.
		if err := s.startWatch(ctx, sp); err != nil {
			return ts.Page{}, fail(ctx, "tail: watch", err)
		}
	}
	if t.After == "" {
		// Every message stored later has a greater sequence.
		info, err := sp.stream.Info(ctx)
		if err != nil {
			return ts.Page{}, fail(ctx, "tail: end", err)
		}
		after = info.State.LastSeq
	}
	limit := ts.PageLimit(t.Limit)
	var events []ts.Event
	read := func() (bool, error) {
		recs, err := s.readAfter(ctx, sp, subject, after, limit)
		for _, r := range recs {
			e := r.Event
			e.Cursor = cursor.Encode(cursor.NATS, cursor.Tail, tag, r.Pos)
			events = append(events, e)
			after = uint64(r.Pos)
		}
		return len(events) > 0, err
	}
	poll := func() time.Duration { return s.opts.PollInterval }
	if err := s.hub.WaitFor(ctx, subject, t.Wait, poll, read); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	return ts.Page{Events: events, NextCursor: cursor.Encode(cursor.NATS, cursor.Tail, tag, int64(after))}, nil
}

// readAfter returns up to limit messages of subject after sequence after.
// The first two come by direct get, which is what a tail mostly needs (one
// new event, and that there is no other); more are read by a consumer.
func (s *Store) readAfter(ctx context.Context, sp *space, subject string, after uint64, limit int) ([]logscan.Record, error) {
	var recs []logscan.Record
	for len(recs) < min(limit, 2) {
		m, err := sp.stream.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		r, err := decode(m.Data, m.Sequence, m.Time)
		if err != nil {
			return recs, err
		}
		recs = append(recs, r)
		after = m.Sequence
	}
	if len(recs) == limit {
		return recs, nil
	}
	cfg := readerConfig(subject)
	cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
	cfg.OptStartSeq = after + 1
	_, err := s.consume(ctx, sp, cfg, limit-len(recs), func(r logscan.Record) bool {
		recs = append(recs, r)
		return true
	})
	return recs, err
}

// decode makes a record of a message body.
func decode(body []byte, seq uint64, stored time.Time) (logscan.Record, error) {
	e, err := wire.Unmarshal(body)
	if err != nil {
		return logscan.Record{}, fmt.Errorf("message %d: %w", seq, err)
	}
	return logscan.Record{Pos: int64(seq), Appended: stored, Event: e}, nil
}

// fail wraps err from NATS. A context that ended, a connection that is
// down, a timeout or a missing responder (JetStream not reachable) are
// ts.ErrUnavailable; a stream that does not exist is ts.ErrNotFound.
func fail(ctx context.Context, op string, err error) error {
	prefix := "nats ts: " + op + ": "
	ctxErr := ctx.Err()
	switch {
	case ctxErr != nil && !errors.Is(err, ctxErr):
		return fmt.Errorf("%s%w: %w: %w", prefix, ts.ErrUnavailable, ctxErr, err)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%s%w: %w", prefix, ts.ErrNotFound, err)
	case ctxErr != nil || unavailable(err):
		return fmt.Errorf("%s%w: %w", prefix, ts.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s%w", prefix, err)
	}
}

// unavailable reports whether err means the server could not be reached or
// did not answer in time.
func unavailable(err error) bool {
	for _, target := range []error{
		context.Canceled, context.DeadlineExceeded, natsio.ErrTimeout, natsio.ErrConnectionClosed,
		natsio.ErrConnectionDraining, natsio.ErrConnectionReconnecting, natsio.ErrNoServers,
		natsio.ErrNoResponders, natsio.ErrDisconnected, natsio.ErrStaleConnection,
		jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout, jetstream.ErrJetStreamNotEnabled,
		jetstream.ErrNoHeartbeat, jetstream.ErrJetStreamPublisherClosed, jetstream.ErrTooManyStalledMsgs,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	return strings.Contains(err.Error(), "i/o timeout")
}
