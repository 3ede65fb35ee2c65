package nats

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// startWatch starts the namespace's notification consumer unless it runs:
// an ordered consumer of the whole stream from its end, headers only, that
// wakes the tails waiting for each stored message's subject. It returns
// once the server has created the consumer.
func (s *Store) startWatch(ctx context.Context, sp *space) error {
	sp.watchMu.Lock()
	defer sp.watchMu.Unlock()
	if sp.watch != nil {
		return nil
	}
	cons, err := sp.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
		HeadersOnly:   true,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		s.hub.Notify(m.Subject())
	}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {
		// The ordered consumer re-creates itself; tails poll meanwhile.
	}))
	if err != nil {
		return err
	}
	sp.watch = cc
	return nil
}

// stopWatch stops the notification consumer, if any.
func (sp *space) stopWatch() {
	sp.watchMu.Lock()
	defer sp.watchMu.Unlock()
	if sp.watch != nil {
		sp.watch.Stop()
		sp.watch = nil
	}
}
