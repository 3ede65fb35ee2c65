package nats

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
	"github.com/prism-gw/prism/backends/ts/tstest"
)

// BenchmarkAppend1 and BenchmarkAppend100 run the driver ("driver") and a
// direct nats.go producer of the same events ("direct") against the same
// server in the same run: the ratio of their numbers is the driver's cost.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1) }

func BenchmarkAppend100(b *testing.B) { benchAppend(b, 100) }

func benchAppend(b *testing.B, size int) {
	opts := testOptions(b)
	b.Run("driver", func(b *testing.B) { tstest.BenchAppend(b, openStore(b, opts), size) })
	b.Run("direct", func(b *testing.B) { benchDirect(b, opts, size) })
}

var directStreams atomic.Int64

// benchDirect publishes the events of tstest.BenchAppend, encoded as the
// driver encodes them and with their ids as Nats-Msg-Id, to a fresh stream
// configured as the driver configures a namespace's: a batch of one with a
// synchronous Publish, a larger batch asynchronously, waiting for every
// acknowledgement, as the driver does.
func benchDirect(b *testing.B, opts Options, size int) {
	opts = opts.withDefaults()
	ctx := context.Background()
	nc, err := natsio.Connect(opts.URL, natsio.Timeout(opts.Timeout))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc,
		jetstream.WithDefaultTimeout(opts.Timeout),
		jetstream.WithPublishAsyncTimeout(opts.Timeout),
		jetstream.WithPublishAsyncMaxPending(4*ts.MaxBatch),
	)
	if err != nil {
		b.Fatal(err)
	}
	// The name starts with the run's stream prefix, so testOptions's
	// cleanup deletes it too; the subjects lie outside the driver's.
	name := fmt.Sprintf("%sDIRECT_%d", opts.StreamPrefix, directStreams.Add(1))
	subject := opts.SubjectPrefix + "_direct." + tstest.BenchSeries
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Subjects:    []string{subject},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  ts.DefaultDuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		AllowDirect: true,
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { js.DeleteStream(context.Background(), name) })

	batch := make([]ts.Event, size)
	msgs := make([]*natsio.Msg, size)
	futures := make([]jetstream.PubAckFuture, size)
	n := 0
	tstest.Measure(b, size, func() error {
		tstest.FillBatch(batch, &n, time.Now())
		for i := range batch {
			body, err := wire.Marshal(&batch[i])
			if err != nil {
				return err
			}
			m := natsio.NewMsg(subject)
			m.Data = body
			m.Header.Set(jetstream.MsgIDHeader, batch[i].ID)
			msgs[i] = m
		}
		if size == 1 {
			ack, err := js.PublishMsg(ctx, msgs[0])
			if err == nil && ack.Duplicate {
				err = fmt.Errorf("message %s: unexpected duplicate", batch[0].ID)
			}
			return err
		}
		for i, m := range msgs {
			if futures[i], err = js.PublishMsgAsync(m); err != nil {
				return err
			}
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					return fmt.Errorf("message %s: unexpected duplicate", f.Msg().Header.Get(jetstream.MsgIDHeader))
				}
			case err := <-f.Err():
				return err
			}
		}
		return nil
	})
}

// BenchmarkQuery100 pages through 2000 events appended in one burst: all
// of them lie within the time window of every page, so each page reads the
// whole series — the worst case of a log driver's query (see package
// internal/logscan, whose tests show a page of a long series reading only
// its window).
func BenchmarkQuery100(b *testing.B) {
	tstest.BenchQuery(b, openStore(b, testOptions(b)), 100, ts.NamespaceOptions{})
}
