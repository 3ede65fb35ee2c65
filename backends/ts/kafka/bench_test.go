package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
	"github.com/prism-gw/prism/backends/ts/tstest"
)

// BenchmarkAppend1 and BenchmarkAppend100 run the driver ("driver") and a
// direct franz-go producer of the same records ("direct") against the same
// kfake cluster in the same run: the ratio of their numbers is the
// driver's cost.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1) }

func BenchmarkAppend100(b *testing.B) { benchAppend(b, 100) }

func benchAppend(b *testing.B, size int) {
	opts := testCluster(b)
	b.Run("driver", func(b *testing.B) { tstest.BenchAppend(b, openStore(b, opts), size) })
	b.Run("direct", func(b *testing.B) { benchDirect(b, opts, size) })
}

var directTopics atomic.Int64

// benchDirect produces the events of tstest.BenchAppend as the driver's
// records (value encoded as the driver encodes it, key the series, the id
// in a header), with ProduceSync and the driver's producer settings, to a
// fresh topic created as the driver creates a namespace's.
func benchDirect(b *testing.B, opts Options, size int) {
	opts = opts.withDefaults()
	ctx := context.Background()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.DialTimeout(opts.Timeout),
		kgo.RetryTimeout(opts.Timeout),
		kgo.RecordDeliveryTimeout(opts.Timeout),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.UnknownTopicRetries(2),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	topic := fmt.Sprintf("%sdirect-%d", opts.TopicPrefix, directTopics.Add(1))
	retention := "-1"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(opts.Partitions), int16(opts.ReplicationFactor), map[string]*string{"retention.ms": &retention}, topic); err != nil {
		b.Fatal(err)
	}
	batch := make([]ts.Event, size)
	recs := make([]*kgo.Record, size)
	n := 0
	tstest.Measure(b, size, func() error {
		now := time.Now()
		tstest.FillBatch(batch, &n, now)
		for i := range batch {
			e := &batch[i]
			body, err := wire.Marshal(e)
			if err != nil {
				return err
			}
			// The default partitioner hashes the key as the driver's.
			recs[i] = &kgo.Record{Topic: topic, Key: []byte(e.Series), Value: body, Timestamp: now,
				Headers: []kgo.RecordHeader{{Key: idHeader, Value: []byte(e.ID)}}}
		}
		return cl.ProduceSync(ctx, recs...).FirstErr()
	})
}

// BenchmarkQuery100 pages through 2000 events appended in one burst: all
// of them lie within the time window of every page, so each page reads the
// whole series — the worst case of a log driver's query (see package
// internal/logscan, whose tests show a page of a long series reading only
// its window).
func BenchmarkQuery100(b *testing.B) {
	tstest.BenchQuery(b, openStore(b, testCluster(b)), 100, ts.NamespaceOptions{})
}
