// Package kafka is the TimeSeries driver for Apache Kafka (franz-go),
// registered as "kafka". The DSN is described at ParseDSN.
//
// # Layout
//
// Each namespace is a topic, Options.TopicPrefix + the escaped namespace
// (package internal/escape), with NamespaceOptions.Partitions partitions
// (default Options.Partitions) and retention.ms from the namespace's
// Retention. An event is one record: key = the series, so a series lives
// in one partition (Kafka's default murmur2 partitioning, as any Kafka
// producer keying by series would choose); value = the event's JSON
// (package internal/wire); timestamp = the time of the append, in
// milliseconds; header "prism-id" = the event id, when it has one. Other
// Kafka clients can read the topic as it is.
//
// Appends use the idempotent producer (acks from all in-sync replicas, no
// duplicates from the producer's own retries). The records of one append
// that fall into one partition are produced together.
//
// # Positions and cursors
//
// An event's position is its partition offset. A tail cursor holds
// (partition, offset of the last record read); a query cursor holds (event
// time, offset) of the last event of the page. Both are bound to the
// series, whose partition is fixed while the topic's partition count is
// (a cursor naming another partition is rejected).
//
// # Time queries
//
// Record timestamps are append times, so Kafka's ListOffsets by timestamp
// seeks by append time; package internal/logscan turns that into event
// time order, given that events lie within the namespace's TimeWindow
// (default 5m) of their append. A page reads the partition from the offset
// for (its earliest time - window) until no later record can belong to it,
// skipping records of other series in the partition; descending pages read
// backwards in chunks of doubling time. The cost of a page grows with the
// partition's append rate times 2×TimeWindow.
//
// # De-duplication, and its limits
//
// Kafka has no de-duplication by key, so the driver keeps, per partition,
// an in-memory index of the (series, id) of the records appended within
// the namespace's DuplicateWindow (default 2m). Appends with ids to a
// partition are serialized in this process; each first catches the index
// up by reading the partition from where the index ends to the high
// watermark — on first use from the offset of (now - window), seeding it
// from what every gateway wrote — then drops the events already indexed
// (or repeated in the batch), produces the rest and indexes them.
//
// So duplicates are caught within the window whichever gateway appended
// the first copy, as long as the two appends do not race: two gateways
// appending the same (series, id) at the same moment, each before reading
// the other's record, both store it. Ids older than the window are
// forgotten, and so are the oldest when a partition's index holds more
// than Options.DedupEntries. The catch-up costs one fetch per append that
// carries ids (appends without ids skip it).
//
// # Tails
//
// A tail reads its partition after its offset with fetch requests that do
// not wait, skipping other series; the cursor it returns moves past them
// too. To wait, it blocks on an in-process notifier fed by one consumer
// client per store that follows every partition of the namespaces with
// waiting tails from their end, long-polling the brokers (fetch max wait
// 500ms); a record appended by any gateway wakes the tails of its series.
// Waiting tails also re-read every Options.PollInterval (default 5s).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/internal/escape"
	"github.com/prism-gw/prism/backends/ts/internal/logscan"
	"github.com/prism-gw/prism/backends/ts/internal/notify"
	"github.com/prism-gw/prism/backends/ts/internal/nsopts"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	ts.Register("kafka", func(ctx context.Context, dsn string) (ts.Store, error) {
		opts, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return Open(ctx, opts)
	})
}

// idHeader carries the event id on a record.
const idHeader = "prism-id"

// maxRecordBytes bounds a record's value: the producer's default batch
// limit and the brokers' default message.max.bytes, less room for the key
// and headers.
const maxRecordBytes = 1<<20 - 4<<10

// Store is a ts.Store on Kafka.
type Store struct {
	cl   *kgo.Client
	adm  *kadm.Client
	opts Options
	hub  notify.Hub

	mu      sync.Mutex
	spaces  map[string]*space
	byTopic map[string]string // topic → namespace, for the watcher

	watchMu  sync.Mutex // serializes starting watches
	watcher  *kgo.Client
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
	closeOne sync.Once
}

var _ ts.Store = (*Store)(nil)

// space is a provisioned namespace.
type space struct {
	ns, topic  string
	topicID    [16]byte
	partitions int32
	window     time.Duration // TimeWindow
	dupWindow  time.Duration
	parts      []*partition
	hasher     kgo.TopicPartitioner
	leaders    atomic.Pointer[[]int32] // by partition, refreshed when a fetch finds it moved
	watching   bool                    // guarded by Store.watchMu
}

// partition is the append state of one partition.
type partition struct {
	mu    sync.Mutex
	dedup dedup
	lastA time.Time // the last append time stamped, so stamps never go back
}

// partition returns the partition of series.
func (sp *space) partition(series string) int32 {
	return int32(sp.hasher.Partition(&kgo.Record{Key: []byte(series)}, int(sp.partitions)))
}

// Open connects to the cluster.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.ClientID("prism-ts"),
		kgo.DialTimeout(opts.Timeout),
		kgo.RetryTimeout(opts.Timeout),
		kgo.RecordDeliveryTimeout(opts.Timeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.UnknownTopicRetries(2),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka ts: %w", err)
	}
	s := &Store{cl: cl, adm: kadm.NewClient(cl), opts: opts, spaces: map[string]*space{}, byTopic: map[string]string{}}
	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fail(ctx, "connect "+fmt.Sprint(opts.Brokers), err)
	}
	return s, nil
}

// Close stops the notification consumer and closes the clients. It is safe
// to call more than once.
func (s *Store) Close() error {
	s.closeOne.Do(func() {
		s.watchMu.Lock()
		if s.watcher != nil {
			s.stopBg()
			s.watcher.Close()
		}
		s.watchMu.Unlock()
		s.bg.Wait()
		s.cl.Close()
		s.hub.NotifyAll()
	})
	return nil
}

// topicName is the topic of ns.
func (s *Store) topicName(ns string) string { return s.opts.TopicPrefix + escape.Name(ns) }

// EnsureNamespace creates the namespace's topic, or updates its retention.
func (s *Store) EnsureNamespace(ctx context.Context, ns string, opts ts.NamespaceOptions) error {
	if err := nsopts.Check(ns, opts); err != nil {
		return fmt.Errorf("kafka ts: ensure namespace: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctx, "ensure namespace", err)
	}
	topic := s.topicName(ns)
	retention := "-1"
	if opts.Retention > 0 {
		retention = strconv.FormatInt(max(opts.Retention.Milliseconds(), 1), 10)
	}
	partitions := opts.Partitions
	if partitions == 0 {
		partitions = s.opts.Partitions
	}
	_, err := s.adm.CreateTopic(ctx, int32(partitions), int16(s.opts.ReplicationFactor), map[string]*string{"retention.ms": &retention}, topic)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		var resp kadm.AlterConfigsResponses
		resp, err = s.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention}}, topic)
		if err == nil {
			for _, r := range resp {
				if r.Err != nil {
					err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
				}
			}
		}
	}
	if err != nil {
		return fail(ctx, "ensure namespace: topic "+topic, err)
	}
	id, leaders, err := s.topicMeta(ctx, topic)
	if err != nil {
		return fail(ctx, "ensure namespace: topic "+topic, err)
	}
	sp := &space{ns: ns, topic: topic, topicID: id, partitions: int32(len(leaders)),
		window: opts.TimeWindow, dupWindow: opts.DuplicateWindow, hasher: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
	sp.leaders.Store(&leaders)
	if sp.window == 0 {
		sp.window = ts.DefaultLogTimeWindow
	}
	if sp.dupWindow == 0 {
		sp.dupWindow = ts.DefaultDuplicateWindow
	}
	s.watchMu.Lock() // for watching; taken before mu, as startWatch does
	defer s.watchMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.spaces[ns]
	if old != nil && old.topicID == sp.topicID && old.partitions == sp.partitions {
		sp.parts = old.parts // keep the de-duplication indexes
		sp.watching = old.watching
	} else {
		if old != nil {
			s.forget(topic) // re-created by someone else
			delete(s.byTopic, topic)
		}
		for range sp.partitions {
			sp.parts = append(sp.parts, &partition{dedup: dedup{cap: s.opts.DedupEntries}})
		}
	}
	s.spaces[ns] = sp
	return nil
}

// topicMeta reads the ID and partition leaders of topic from the cluster
// (not a cache: a topic re-created under the same name has a new ID),
// waiting briefly for a topic just created to show its partitions.
func (s *Store) topicMeta(ctx context.Context, topic string) ([16]byte, []int32, error) {
	deadline := time.Now().Add(s.opts.Timeout)
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, s.cl)
		if err != nil {
			return [16]byte{}, nil, err
		}
		err = kerr.UnknownTopicOrPartition
		for _, t := range resp.Topics {
			if t.Topic == nil || *t.Topic != topic {
				continue
			}
			if err = kerr.ErrorForCode(t.ErrorCode); err != nil || len(t.Partitions) == 0 {
				break
			}
			leaders := make([]int32, len(t.Partitions))
			for _, p := range t.Partitions {
				if int(p.Partition) < len(leaders) {
					leaders[p.Partition] = p.Leader
				}
			}
			return t.TopicID, leaders, nil
		}
		if err == nil {
			err = kerr.LeaderNotAvailable
		}
		if time.Now().After(deadline) {
			return [16]byte{}, nil, err
		}
		select {
		case <-ctx.Done():
			return [16]byte{}, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DropNamespace deletes the namespace's topic.
func (s *Store) DropNamespace(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, "drop namespace", err)
	}
	topic := s.topicName(ns)
	s.mu.Lock()
	delete(s.spaces, ns)
	delete(s.byTopic, topic)
	s.mu.Unlock()
	s.watchMu.Lock()
	s.forget(topic)
	s.watchMu.Unlock()
	if ts.ValidateNamespace(ns) != nil {
		return nil // never provisioned
	}
	_, err := s.adm.DeleteTopic(ctx, topic)
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.UnknownTopicID) {
		return fail(ctx, "drop namespace", err)
	}
	return nil
}

// forget drops what the clients cached about topic (its ID above all),
// so that a topic re-created under the name is produced to and followed
// afresh. Call with watchMu held.
func (s *Store) forget(topic string) {
	s.cl.PurgeTopicsFromClient(topic)
	if s.watcher != nil {
		s.watcher.PurgeTopicsFromClient(topic)
	}
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

// item is an event of an append, encoded.
type item struct {
	e    *ts.Event
	body []byte
}

// Append produces the events, partition by partition.
func (s *Store) Append(ctx context.Context, ns string, events []ts.Event) (appended, duplicates int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fail(ctx, "append", err)
	}
	sp, err := s.space(ns)
	if err != nil {
		return 0, 0, fmt.Errorf("kafka ts: append: %w", err)
	}
	if err := ts.ValidateEvents(events); err != nil {
		return 0, 0, fmt.Errorf("kafka ts: append: %w", err)
	}
	if err := ts.CheckTimeWindow(events, time.Now(), sp.window); err != nil {
		return 0, 0, fmt.Errorf("kafka ts: append: %w", err)
	}
	byPart := map[int32][]item{}
	for i := range events {
		e := &events[i]
		body, err := wire.Marshal(e)
		if err != nil {
			return 0, 0, fmt.Errorf("kafka ts: append: %w", err)
		}
		if len(body) > maxRecordBytes {
			return 0, 0, fmt.Errorf("kafka ts: append: event %d: %w: %d bytes, records hold %d", i, ts.ErrTooLarge, len(body), maxRecordBytes)
		}
		p := sp.partition(e.Series)
		byPart[p] = append(byPart[p], item{e, body})
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		a, d, err := s.appendPartition(ctx, sp, p, byPart[p])
		appended, duplicates = appended+a, duplicates+d
		if err != nil {
			return appended, duplicates, fail(ctx, "append", err)
		}
	}
	if appended > 0 {
		// The watcher wakes tails too, also on other gateways; this saves
		// local tails its round trip.
		for i := range events {
			s.hub.Notify(cursor.TagOf(ns, events[i].Series).String())
		}
	}
	return appended, duplicates, nil
}

// appendPartition appends the items of partition p, de-duplicating their
// ids against the partition's index.
func (s *Store) appendPartition(ctx context.Context, sp *space, p int32, items []item) (appended, duplicates int, err error) {
	pt := sp.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	now := time.Now()
	withIDs := slices.ContainsFunc(items, func(it item) bool { return it.e.ID != "" })
	if withIDs {
		if err := s.catchUp(ctx, sp, p, pt, now); err != nil {
			return 0, 0, err
		}
		pt.dedup.expire(now.Add(-sp.dupWindow))
	}
	// The stamp never goes back, so append times grow along the
	// partition as logscan needs.
	at := now
	if at.Before(pt.lastA) {
		at = pt.lastA
	}
	pt.lastA = at
	recs := make([]*kgo.Record, 0, len(items))
	keys := make([]string, 0, len(items))
	inBatch := map[string]bool{}
	for _, it := range items {
		if d := at.Sub(it.e.Time); d > sp.window+logscan.Slack/2 {
			// Waited so long for the partition that the event fell out
			// of its window; retrying is safe.
			return 0, duplicates, fmt.Errorf("%w: the append was delayed past the namespace's time window", ts.ErrUnavailable)
		}
		var key string
		var headers []kgo.RecordHeader
		if it.e.ID != "" {
			key = dedupKey(it.e.Series, it.e.ID)
			if pt.dedup.has(key) || inBatch[key] {
				duplicates++
				continue
			}
			inBatch[key] = true
			headers = []kgo.RecordHeader{{Key: idHeader, Value: []byte(it.e.ID)}}
		}
		recs = append(recs, &kgo.Record{Topic: sp.topic, Partition: p, Key: []byte(it.e.Series), Value: it.body, Timestamp: at, Headers: headers})
		keys = append(keys, key)
	}
	if len(recs) == 0 {
		return 0, duplicates, nil
	}
	results := s.cl.ProduceSync(ctx, recs...)
	for i, r := range results {
		if r.Err != nil {
			continue
		}
		appended++
		if keys[i] != "" {
			pt.dedup.add(keys[i], at)
		}
	}
	if err := results.FirstErr(); err != nil {
		// What was stored is indexed by the next catch-up.
		return appended, duplicates, err
	}
	// Skip re-reading our own records when nothing else came between.
	first, last := recs[0].Offset, recs[len(recs)-1].Offset
	if pt.dedup.seeded && first == pt.dedup.next && last-first == int64(len(recs)-1) {
		pt.dedup.next = last + 1
	}
	return appended, duplicates, nil
}

// catchUp indexes the ids of the records of partition p from where the
// index ends to the high watermark; on first use it starts at the records
// appended within the duplicate window.
func (s *Store) catchUp(ctx context.Context, sp *space, p int32, pt *partition, now time.Time) error {
	d := &pt.dedup
	if !d.seeded {
		from, err := s.listOffset(ctx, sp, p, now.Add(-sp.dupWindow-logscan.Slack).UnixMilli())
		if err != nil {
			return err
		}
		d.next, d.seeded = from, true
	}
	next, err := s.readRange(ctx, sp, p, d.next, math.MaxInt64, func(r *kgo.Record) bool {
		for _, h := range r.Headers {
			if h.Key == idHeader {
				d.add(dedupKey(string(r.Key), string(h.Value)), r.Timestamp)
			}
		}
		return true
	})
	d.next = next
	return err
}

// Query returns one page of a series' events in time order.
func (s *Store) Query(ctx context.Context, ns string, q ts.QueryArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	sp, err := s.space(ns)
	if err != nil {
		return ts.Page{}, fmt.Errorf("kafka ts: query: %w", err)
	}
	if err := q.Validate(); err != nil {
		return ts.Page{}, fmt.Errorf("kafka ts: query: %w", err)
	}
	tag := cursor.TagOf(ns, q.Series)
	lq, err := logscan.QueryOf(q, cursor.Kafka, tag, sp.window, time.Now())
	if err != nil {
		return ts.Page{}, fmt.Errorf("kafka ts: query: %w", err)
	}
	src, err := s.newSource(ctx, sp, q.Series)
	if err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	recs, more, err := logscan.Page(ctx, src, lq)
	if err != nil {
		return ts.Page{}, fail(ctx, "query", err)
	}
	return logscan.PageOf(recs, more, cursor.Kafka, q.Desc, tag, func(r logscan.Record) []int64 { return []int64{int64(src.p), r.Pos} }), nil
}

// Tail returns the events appended after t.After, waiting up to t.Wait.
func (s *Store) Tail(ctx context.Context, ns string, t ts.TailArgs) (ts.Page, error) {
	if err := ctx.Err(); err != nil {
		return ts.Page{}, fail(ctx, "tail", err)
	}
	sp, err := s.space(ns)
	if err != nil {
		return ts.Page{}, fmt.Errorf("kafka ts: tail: %w", err)
	}
	if err := t.Validate(); err != nil {
		return ts.Page{}, fmt.Errorf("kafka ts: tail: %w", err)
	}
	tag := cursor.TagOf(ns, t.Series)
	p := sp.partition(t.Series)
	var next int64 // the next offset to read
	if t.After != "" {
		f, err := cursor.Decode(t.After, cursor.Kafka, cursor.Tail, tag, 2)
		if err != nil {
			return ts.Page{}, fmt.Errorf("kafka ts: tail: %w", err)
		}
		if f[0] != int64(p) || f[1] < -1 {
			return ts.Page{}, fmt.Errorf("kafka ts: tail: %w: not a position of this series' partition", ts.ErrInvalidCursor)
		}
		next = f[1] + 1
	}
	if t.Wait > 0 {
		// Running before the first read, so that a record appended after
		// that read wakes this tail.
		if err := s.startWatch(ctx, sp); err != nil {
			return ts.Page{}, fail(ctx, "tail: watch", err)
		}
	}
	if t.After == "" {
		if next, err = s.listOffset(ctx, sp, p, latest); err != nil {
			return ts.Page{}, fail(ctx, "tail: end", err)
		}
	}
	limit := ts.PageLimit(t.Limit)
	var events []ts.Event
	read := func() (bool, error) {
		n, err := s.tailRead(ctx, sp, p, next, t.Series, limit-len(events), func(e ts.Event) {
			events = append(events, e)
		}, tag)
		next = n
		return len(events) > 0, err
	}
	poll := func() time.Duration { return s.opts.PollInterval }
	if err := s.hub.WaitFor(ctx, tag.String(), t.Wait, poll, read); err != nil {
		if errors.Is(err, ts.ErrInvalidCursor) {
			return ts.Page{}, fmt.Errorf("kafka ts: tail: %w", err)
		}
		return ts.Page{}, fail(ctx, "tail", err)
	}
	return ts.Page{Events: events, NextCursor: cursor.Encode(cursor.Kafka, cursor.Tail, tag, int64(p), next-1)}, nil
}

// tailRead reads partition p from next to its high watermark, passing up to
// limit events of series to add, and returns the offset to continue from.
// A position that retention deleted resumes at the log start; one past the
// high watermark is an invalid cursor.
func (s *Store) tailRead(ctx context.Context, sp *space, p int32, next int64, series string, limit int, add func(ts.Event), tag cursor.Tag) (int64, error) {
	n := 0
	var decodeErr error
	fn := func(r *kgo.Record) bool {
		if string(r.Key) != series {
			return true
		}
		rec, err := record(r)
		if err != nil {
			decodeErr = err
			return false
		}
		rec.Event.Cursor = cursor.Encode(cursor.Kafka, cursor.Tail, tag, int64(p), r.Offset)
		add(rec.Event)
		n++
		return n < limit
	}
	after, err := s.readRange(ctx, sp, p, next, math.MaxInt64, fn)
	if errors.Is(err, kerr.OffsetOutOfRange) {
		start, err := s.listOffset(ctx, sp, p, earliest)
		if err != nil {
			return next, err
		}
		if next >= start {
			return next, fmt.Errorf("%w: ahead of the partition", ts.ErrInvalidCursor)
		}
		after, err = s.readRange(ctx, sp, p, start, math.MaxInt64, fn)
		if err != nil {
			return after, err
		}
	} else if err != nil {
		return after, err
	}
	return after, decodeErr
}

// watchMaxWait is how long the notification consumer's fetches wait at the
// brokers; it also bounds how soon a namespace added to it is followed.
const watchMaxWait = 500 * time.Millisecond

// startWatch makes the notification consumer follow the namespace's
// partitions from their current ends, unless it does.
func (s *Store) startWatch(ctx context.Context, sp *space) error {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if sp.watching {
		return nil
	}
	if s.watcher == nil {
		w, err := kgo.NewClient(
			kgo.SeedBrokers(s.opts.Brokers...),
			kgo.ClientID("prism-ts-watch"),
			kgo.DialTimeout(s.opts.Timeout),
			kgo.FetchMaxWait(watchMaxWait),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		)
		if err != nil {
			return err
		}
		bgCtx, stop := context.WithCancel(context.Background())
		s.watcher, s.stopBg = w, stop
		s.bg.Go(func() { s.watch(bgCtx, w) })
	}
	offsets := map[int32]kgo.Offset{}
	for p := range sp.partitions {
		end, err := s.listOffset(ctx, sp, p, latest)
		if err != nil {
			return err
		}
		offsets[p] = kgo.NewOffset().At(end)
	}
	s.mu.Lock()
	s.byTopic[sp.topic] = sp.ns
	s.mu.Unlock()
	s.watcher.AddConsumePartitions(map[string]map[int32]kgo.Offset{sp.topic: offsets})
	sp.watching = true
	return nil
}

// watch wakes the tails of each record's series until ctx ends.
func (s *Store) watch(ctx context.Context, w *kgo.Client) {
	for {
		fetches := w.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			s.mu.Lock()
			ns, ok := s.byTopic[r.Topic]
			s.mu.Unlock()
			if ok {
				s.hub.Notify(cursor.TagOf(ns, string(r.Key)).String())
			}
		})
	}
}

// fail wraps err from Kafka: a context that ended, a broker that cannot be
// reached or a retriable broker error are ts.ErrUnavailable; an unknown
// topic is ts.ErrNotFound; a record too large is ts.ErrTooLarge.
func fail(ctx context.Context, op string, err error) error {
	prefix := "kafka ts: " + op + ": "
	ctxErr := ctx.Err()
	switch {
	case ctxErr != nil && !errors.Is(err, ctxErr):
		return fmt.Errorf("%s%w: %w: %w", prefix, ts.ErrUnavailable, ctxErr, err)
	case errors.Is(err, ts.ErrUnavailable), errors.Is(err, ts.ErrNotFound), errors.Is(err, ts.ErrTooLarge),
		errors.Is(err, ts.ErrInvalidArgument):
		return fmt.Errorf("%s%w", prefix, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("%s%w: %w", prefix, ts.ErrNotFound, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("%s%w: %w", prefix, ts.ErrTooLarge, err)
	case ctxErr != nil || unavailable(err):
		return fmt.Errorf("%s%w: %w", prefix, ts.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s%w", prefix, err)
	}
}

// unavailable reports whether err may go away when retried.
func unavailable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrRecordRetries) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, net.ErrClosed)
}
