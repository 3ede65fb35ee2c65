package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/prism-gw/prism/xds/resource"
)

// errRestart ends a session so that the next one announces the versions of
// a set installed meanwhile (the cache).
var errRestart = errors.New("restarting the xds stream after installing the cached config")

// maxErrorDetail bounds a NACK's message; the admin API shows it.
const maxErrorDetail = 4096

type adsStream = discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient

// event is what the reading goroutine hands to the session: the opened
// stream, a response, or the error that ended the stream.
type event struct {
	stream adsStream
	resp   *discoveryv3.DeltaDiscoveryResponse
	err    error
}

// session is one ADS stream. All its methods run on Run's goroutine, which
// alone sends on the stream; another goroutine only receives.
type session struct {
	c      *Client
	stream adsStream
	// received is what the control plane believes this node has.
	received set
	// subscribed and seen are per type: subscription sent, first response
	// handled.
	subscribed, seen map[string]bool
	// last is the nonce of the latest response of each type; nacked the
	// nonce of each type's NACKed response whose resources are not in force
	// yet, to ACK when they are.
	last, nacked map[string]string
	gotResponse  bool
	sentNode     bool
	synced       bool
	retry        <-chan time.Time
	retryWait    time.Duration
}

// runSession runs one stream until it fails or ctx ends. It reports
// whether the control plane answered at all, which resets the backoff.
func (c *Client) runSession(ctx context.Context) (gotResponse bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := grpc.NewClient(c.opts.Addr, c.dial...)
	if err != nil {
		return false, fmt.Errorf("xds dial %s: %w", c.opts.Addr, err)
	}
	defer conn.Close()
	events := make(chan event)
	go read(sctx, discoveryv3.NewAggregatedDiscoveryServiceClient(conn), events)

	s := &session{
		c: c, subscribed: map[string]bool{}, seen: map[string]bool{},
		last: map[string]string{}, nacked: map[string]string{},
	}
	for {
		select {
		case <-ctx.Done():
			return s.gotResponse, ctx.Err()
		case <-c.fallback:
			c.log.Warn("the control plane has not sent a full config in time", "addr", c.opts.Addr, "waited", c.opts.InitialTimeout.String())
			if c.tryCache(ctx) && s.stream != nil {
				return s.gotResponse, errRestart
			}
		case <-s.retry:
			if err := s.retryInstall(ctx); err != nil {
				return s.gotResponse, err
			}
		case ev := <-events:
			switch {
			case ev.err != nil:
				return s.gotResponse, ev.err
			case ev.stream != nil:
				s.stream = ev.stream
				s.received = c.applied.clone()
				// Backends first: the others wait for its first response.
				if err := s.subscribe(resource.BackendType); err != nil {
					return false, err
				}
			default:
				s.gotResponse = true
				if err := s.handle(ctx, ev.resp); err != nil {
					return true, err
				}
			}
		}
	}
}

// read opens the stream and receives on it until it fails.
func read(ctx context.Context, client discoveryv3.AggregatedDiscoveryServiceClient, events chan<- event) {
	deliver := func(ev event) bool {
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	stream, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		deliver(event{err: fmt.Errorf("opening the ADS stream: %w", err)})
		return
	}
	if !deliver(event{stream: stream}) {
		return
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			err = errors.New("the control plane closed the ADS stream")
		}
		if err != nil {
			deliver(event{err: err})
			return
		}
		if !deliver(event{resp: resp}) {
			return
		}
	}
}

// subscribe asks for every resource of a type, announcing the versions in
// hand so that the server sends only what differs (and what was removed).
func (s *session) subscribe(typeURL string) error {
	req := &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:                 typeURL,
		ResourceNamesSubscribe:  []string{"*"},
		InitialResourceVersions: s.received.versions(typeURL),
	}
	s.withNode(req)
	s.subscribed[typeURL] = true
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("subscribing to %s: %w", typeURL, err)
	}
	return nil
}

// withNode names the node on the first request of the stream; the server
// remembers it for the others.
func (s *session) withNode(req *discoveryv3.DeltaDiscoveryRequest) {
	if !s.sentNode {
		req.Node, s.sentNode = s.c.node, true
	}
}

func (s *session) ack(typeURL, nonce string) error {
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResponseNonce: nonce}
	s.withNode(req)
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("ACK of %s: %w", typeURL, err)
	}
	return nil
}

func (s *session) nack(typeURL, nonce string, cause error) error {
	msg := cause.Error()
	if len(msg) > maxErrorDetail {
		msg = msg[:maxErrorDetail-3] + "..."
	}
	req := &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl: typeURL, ResponseNonce: nonce,
		ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: msg},
	}
	s.withNode(req)
	if err := s.stream.Send(req); err != nil {
		return fmt.Errorf("NACK of %s: %w", typeURL, err)
	}
	return nil
}

// handle merges one response into the received set, applies the whole set,
// and ACKs or NACKs. Only a failure to talk to the server is returned.
func (s *session) handle(ctx context.Context, resp *discoveryv3.DeltaDiscoveryResponse) error {
	typeURL, nonce, version := resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo()
	if !s.subscribed[typeURL] {
		return s.nack(typeURL, nonce, fmt.Errorf("prism extproc did not subscribe to %s", typeURL))
	}
	first := !s.seen[typeURL]
	s.seen[typeURL] = true
	s.last[typeURL] = nonce
	next, err := merge(s.received[typeURL], resp)
	if err != nil {
		// Undecodable resources never reach the received set: they can
		// never be applied, and the server resends them once they change.
		s.c.log.Warn("xds NACK: a response could not be decoded; keeping the config in force",
			"type", shortType(typeURL), "version", version, "err", err)
		if err := s.nack(typeURL, nonce, err); err != nil {
			return err
		}
	} else {
		s.received[typeURL] = next
		if err := s.install(ctx, typeURL, nonce, version, resp); err != nil {
			return err
		}
	}
	if first && typeURL == resource.BackendType {
		for _, t := range resource.PrismTypes() {
			if !s.subscribed[t] {
				if err := s.subscribe(t); err != nil {
					return err
				}
			}
		}
	}
	s.checkSynced()
	return nil
}

// install applies the received set for a response and answers it.
func (s *session) install(ctx context.Context, typeURL, nonce, version string, resp *discoveryv3.DeltaDiscoveryResponse) error {
	err := s.c.install(ctx, s.received,
		"type", shortType(typeURL), "version", version,
		"updated", len(resp.GetResources()), "removed", len(resp.GetRemovedResources()))
	if err != nil {
		s.nacked[typeURL] = nonce
		s.c.log.Warn("xds NACK: the config cannot be applied; keeping the one in force",
			"type", shortType(typeURL), "version", version, "err", err)
		if err := s.nack(typeURL, nonce, err); err != nil {
			return err
		}
		if s.retry == nil {
			s.retryWait = s.c.opts.RetryInterval
			s.retry = time.After(s.retryWait)
		}
		return nil
	}
	if err := s.ack(typeURL, nonce); err != nil {
		return err
	}
	return s.accepted()
}

// accepted follows a successful install: responses NACKed earlier are in
// force now, as part of the received set, so they are ACKed — the admin
// API then shows the node in sync instead of stuck on an old NACK.
func (s *session) accepted() error {
	s.retry = nil
	for _, t := range resource.PrismTypes() {
		nonce, ok := s.nacked[t]
		if !ok {
			continue
		}
		delete(s.nacked, t)
		if s.last[t] == nonce {
			if err := s.ack(t, nonce); err != nil {
				return err
			}
		}
	}
	return nil
}

// retryInstall applies a rejected set again, backing off while it fails.
func (s *session) retryInstall(ctx context.Context) error {
	s.retry = nil
	if len(s.nacked) == 0 {
		return nil
	}
	if err := s.c.install(ctx, s.received, "retry", true); err != nil {
		s.retryWait = min(2*s.retryWait, 8*s.c.opts.RetryInterval)
		s.retry = time.After(s.retryWait)
		s.c.log.Warn("xds config still cannot be applied; keeping the one in force", "err", err, "retry_in", s.retryWait.String())
		return nil
	}
	return s.accepted()
}

// checkSynced marks the client synced once every type has answered on
// this stream.
func (s *session) checkSynced() {
	if s.synced || slices.ContainsFunc(resource.PrismTypes(), func(t string) bool { return !s.seen[t] }) {
		return
	}
	s.synced = true
	s.c.markSynced()
}
