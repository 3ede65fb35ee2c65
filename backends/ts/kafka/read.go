package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prism-gw/prism/backends/ts/internal/logscan"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special timestamps of ListOffsets.
const (
	latest   = -1 // the high watermark
	earliest = -2 // the log start offset
)

// listOffset returns the offset of partition p that Kafka's ListOffsets
// gives for ts: for a time in milliseconds the first offset whose record
// timestamp is at or after it, or the high watermark when there is none.
func (s *Store) listOffset(ctx context.Context, sp *space, p int32, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = sp.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = p
	rp.Timestamp = ts
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// Client.Request sends ListOffsets to the partition's leader.
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("list offsets: malformed response")
	}
	part := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return 0, fmt.Errorf("list offsets of partition %d: %w", p, err)
	}
	if part.Offset < 0 && ts >= 0 {
		return s.listOffset(ctx, sp, p, latest)
	}
	return part.Offset, nil
}

// fetchMaxBytes bounds one fetch of a partition.
const fetchMaxBytes = 1 << 20

// fetch reads the records of partition p from offset on, as many as one
// response holds, without waiting for new ones. It also returns the
// partition's high watermark and log start offset.
func (s *Store) fetch(ctx context.Context, sp *space, p int32, offset int64) (recs []*kgo.Record, hwm, start int64, err error) {
	leader := (*sp.leaders.Load())[p]
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = fetchMaxBytes
	req.SessionEpoch = -1 // no fetch session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = sp.topic, sp.topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = fetchMaxBytes
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.cl.Broker(int(leader)))
	if err != nil {
		return nil, 0, 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, 0, 0, fmt.Errorf("fetch: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, 0, 0, fmt.Errorf("fetch: malformed response")
	}
	part := &resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		if errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.UnknownLeaderEpoch) {
			// The leader moved: learn where, for the retry.
			if _, leaders, merr := s.topicMeta(ctx, sp.topic); merr == nil && len(leaders) == len(*sp.leaders.Load()) {
				sp.leaders.Store(&leaders)
			}
		}
		return nil, part.HighWatermark, part.LogStartOffset, fmt.Errorf("fetch partition %d at %d: %w", p, offset, err)
	}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: offset, Topic: sp.topic, Partition: p}, part, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		return nil, 0, 0, fmt.Errorf("fetch partition %d at %d: %w", p, offset, fp.Err)
	}
	return fp.Records, fp.HighWatermark, fp.LogStartOffset, nil
}

// readRange calls fn with the records of partition p from offset from up
// to (not including) to, until fn returns false. It returns the offset
// after the last record it passed to fn (or to, when it read them all).
func (s *Store) readRange(ctx context.Context, sp *space, p int32, from, to int64, fn func(*kgo.Record) bool) (int64, error) {
	next := from
	for next < to {
		recs, hwm, _, err := s.fetch(ctx, sp, p, next)
		if err != nil {
			return next, err
		}
		if len(recs) == 0 {
			// Only control records or compacted gaps up to the high
			// watermark.
			return max(next, min(to, hwm)), nil
		}
		for _, r := range recs {
			if r.Offset < next {
				continue
			}
			if r.Offset >= to {
				return to, nil
			}
			next = r.Offset + 1
			if !fn(r) {
				return next, nil
			}
		}
	}
	return next, nil
}

// record decodes a record written by Append.
func record(r *kgo.Record) (logscan.Record, error) {
	e, err := wire.Unmarshal(r.Value)
	if err != nil {
		return logscan.Record{}, fmt.Errorf("record %d/%d: %w", r.Partition, r.Offset, err)
	}
	return logscan.Record{Pos: r.Offset, Appended: r.Timestamp, Event: e}, nil
}

// source is one series of a partition as a logscan.Source, as of the high
// watermark when it was made. The partition holds other series too; they
// are read and skipped.
type source struct {
	s      *Store
	sp     *space
	p      int32
	series string
	start  int64 // log start offset
	hwm    int64
}

func (s *Store) newSource(ctx context.Context, sp *space, series string) (*source, error) {
	p := sp.partition(series)
	start, err := s.listOffset(ctx, sp, p, earliest)
	if err != nil {
		return nil, err
	}
	hwm, err := s.listOffset(ctx, sp, p, latest)
	if err != nil {
		return nil, err
	}
	return &source{s: s, sp: sp, p: p, series: series, start: start, hwm: hwm}, nil
}

// Scan seeks with ListOffsets by timestamp (record timestamps are append
// times, in milliseconds: the seek to the millisecond at or before from
// keeps "everything before was appended before from") and reads forward.
func (src *source) Scan(ctx context.Context, from time.Time, stop int64, yield func(logscan.Record) bool) (int64, bool, error) {
	first := src.start
	if !from.IsZero() {
		var err error
		if first, err = src.s.listOffset(ctx, src.sp, src.p, from.UnixMilli()); err != nil {
			return 0, false, err
		}
		first = max(first, src.start)
	}
	atStart := first <= src.start
	end := src.hwm
	if stop >= 0 {
		end = min(end, stop)
	}
	if first >= end {
		return -1, atStart, nil
	}
	var decodeErr error
	_, err := src.s.readRange(ctx, src.sp, src.p, first, end, func(r *kgo.Record) bool {
		if string(r.Key) != src.series {
			return true
		}
		rec, err := record(r)
		if err != nil {
			decodeErr = err
			return false
		}
		return yield(rec)
	})
	if err == nil {
		err = decodeErr
	}
	return first, atStart, err
}

var _ logscan.Source = (*source)(nil)
