package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prism-gw/prism/backends/ts/internal/logscan"
)

// source is one series of a stream as a logscan.Source, as of the
// snapshot of its first and last message taken by newSource.
type source struct {
	s       *Store
	sp      *space
	subject string
	first   uint64    // 0 when the subject has no message
	firstAt time.Time // when first was stored
	last    uint64
}

// newSource takes the snapshot: two direct gets.
func (s *Store) newSource(ctx context.Context, sp *space, series string) (*source, error) {
	src := &source{s: s, sp: sp, subject: sp.subject(series)}
	first, err := sp.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(src.subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return src, nil
	}
	if err != nil {
		return nil, err
	}
	last, err := sp.stream.GetLastMsgForSubject(ctx, src.subject)
	if err != nil {
		return nil, err
	}
	src.first, src.firstAt, src.last = first.Sequence, first.Time, last.Sequence
	return src, nil
}

func (src *source) empty() bool { return src.first == 0 }

// Scan reads the subject with an ephemeral consumer starting at from.
func (src *source) Scan(ctx context.Context, from time.Time, stop int64, yield func(logscan.Record) bool) (int64, bool, error) {
	atStart := !from.After(src.firstAt)
	cfg := readerConfig(src.subject)
	if atStart {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = src.first
	} else {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &from
	}
	first := int64(-1)
	_, err := src.s.consume(ctx, src.sp, cfg, -1, func(r logscan.Record) bool {
		if uint64(r.Pos) > src.last || stop >= 0 && r.Pos >= stop {
			return false
		}
		if first < 0 {
			first = r.Pos
		}
		return yield(r)
	})
	return first, atStart, err
}

// readerConfig is an ephemeral consumer that reads subject once: no acks,
// state in memory, removed by the server soon after it goes idle should
// deleting it fail.
func readerConfig(subject string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		FilterSubject:     subject,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 30 * time.Second,
	}
}

// fetchBatch is the most messages one pull request asks for.
const fetchBatch = 1000

// consume creates an ephemeral consumer with cfg and calls fn with its
// messages in order until fn returns false, max messages were read (max <
// 0: no limit) or the messages that matched when it was created are used
// up; it then deletes the consumer. It returns the number of messages read.
//
// The count of pending messages comes with the consumer's creation, so each
// pull asks for exactly as many as exist and never waits for more.
func (s *Store) consume(ctx context.Context, sp *space, cfg jetstream.ConsumerConfig, max int, fn func(logscan.Record) bool) (int, error) {
	cons, err := sp.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer func() {
		// Not ctx: a cancelled caller must not leave the consumer behind
		// for its inactivity threshold.
		dctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		_ = sp.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := int(cons.CachedInfo().NumPending)
	if max >= 0 {
		pending = min(pending, max)
	}
	read := 0
	for read < pending {
		n := min(pending-read, fetchBatch)
		got, stopped, err := s.fetch(ctx, cons, n, func(r logscan.Record) bool {
			read++
			return fn(r)
		})
		if err != nil || stopped {
			return read, err
		}
		if got < n {
			// Messages removed meanwhile (retention): nothing more to
			// wait for.
			return read, nil
		}
	}
	return read, nil
}

// fetch pulls n messages and calls fn with each until it returns false. It
// returns how many messages arrived and whether fn stopped.
func (s *Store) fetch(ctx context.Context, cons jetstream.Consumer, n int, fn func(logscan.Record) bool) (int, bool, error) {
	fctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return 0, false, err
	}
	got, stopped := 0, false
	var failed error
	for m := range batch.Messages() {
		got++
		if stopped || failed != nil {
			continue // drain what was already sent
		}
		md, err := m.Metadata()
		if err != nil {
			failed = fmt.Errorf("message metadata: %w", err)
			continue
		}
		r, err := decode(m.Data(), md.Sequence.Stream, md.Timestamp)
		if err != nil {
			failed = err
			continue
		}
		stopped = !fn(r)
	}
	if failed != nil {
		return got, stopped, failed
	}
	return got, stopped, batch.Error()
}
