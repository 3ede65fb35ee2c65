package provision

import (
	"context"
	"errors"
	"fmt"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-gw/prism/backends/ts"
	natsts "github.com/prism-gw/prism/backends/ts/nats"
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/planner"
)

// natsURL is the server list of the backend's URL, without the driver's
// parameters.
func natsURL(b *configv1.Backend) (string, error) {
	o, err := natsts.ParseDSN(b.GetNats().GetUrl())
	return o.URL, err
}

func jetStream(url string) (*natsio.Conn, jetstream.JetStream, error) {
	nc, err := natsio.Connect(url, natsio.Name("prism-provision"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func observeStream(ctx context.Context, b *configv1.Backend, want *planner.Stream) (planner.Observed, error) {
	var have planner.Observed
	url, err := natsURL(b)
	if err != nil {
		return have, err
	}
	nc, js, err := jetStream(url)
	if err != nil {
		return have, err
	}
	defer nc.Close()
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return have, nil
	}
	if err != nil {
		return have, fmt.Errorf("stream %s: %w", want.Name, err)
	}
	c := s.CachedInfo().Config
	have.Stream = &planner.Stream{Name: c.Name, MaxBytes: c.MaxBytes, MaxMsgSize: c.MaxMsgSize, MaxAge: c.MaxAge}
	have.StreamBytes = int64(s.CachedInfo().State.Bytes)
	return have, nil
}

// applyStream lets the driver create or update the stream (subjects,
// retention, de-duplication, as extproc would), then sets its limits.
func applyStream(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, want *planner.Stream) error {
	st, err := ts.Open(ctx, "nats", b.GetNats().GetUrl())
	if err != nil {
		return err
	}
	err = st.EnsureNamespace(ctx, ns.GetNamespace(), ts.NamespaceOptions{Retention: retention(ns)})
	st.Close()
	if err != nil {
		return err
	}
	url, err := natsURL(b)
	if err != nil {
		return err
	}
	nc, js, err := jetStream(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	s, err := js.Stream(ctx, want.Name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", want.Name, err)
	}
	c := s.CachedInfo().Config
	if c.MaxBytes == want.MaxBytes && c.MaxMsgSize == want.MaxMsgSize {
		return nil
	}
	c.MaxBytes, c.MaxMsgSize = want.MaxBytes, want.MaxMsgSize
	if _, err := js.UpdateStream(ctx, c); err != nil {
		return fmt.Errorf("stream %s: setting limits: %w", want.Name, err)
	}
	return nil
}
