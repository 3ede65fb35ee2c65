package neptune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/prism-gw/prism/backends/graph"
)

// Error is an error response of the Neptune engine. Error() leaves out
// Message: Neptune may quote the request in it (IDs, props), which must not
// reach logs; read it through errors.As when debugging.
type Error struct {
	Status    int
	Code      string // e.g. "ConcurrentModificationException"
	RequestID string
	Message   string
}

// Error names the code, the HTTP status and Neptune's request ID.
func (e *Error) Error() string {
	return fmt.Sprintf("neptune %s (HTTP %d, request %s)", e.Code, e.Status, e.RequestID)
}

// errBadResponse marks a response Neptune sent but the driver could not
// read: a definite failure, not an outage.
var errBadResponse = errors.New("unreadable response")

// retryable reports whether Neptune documents the error as worth retrying
// (Graph Engine Error Messages and Codes), or it is a server-side or
// throttling status without a code.
func (e *Error) retryable() bool {
	switch e.Code {
	case "CancelledByUserException", "ConcurrentModificationException", "ConstraintViolationException",
		"InternalFailureException", "MemoryLimitExceededException", "QueryLimitExceededException",
		"ThrottlingException", "TimeLimitExceededException", "TooManyRequestsException",
		"FailureByQueryException":
		return true
	case "ReadOnlyViolationException":
		// A write reached a reader: during a failover the cluster endpoint
		// points at the old writer for a while.
		return true
	}
	return e.Code == "" && (e.Status >= 500 || e.Status == http.StatusTooManyRequests)
}

// query runs one openCypher query with params and decodes the rows of its
// results into []T. Retryable failures are retried up to opts.Retries
// times; what still fails is wrapped by fail.
func query[T any](ctx context.Context, s *Store, q string, params map[string]any) ([]T, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode parameters: %w", err)
	}
	body := []byte(url.Values{"query": {q}, "parameters": {string(p)}}.Encode())
	for attempt := 0; ; attempt++ {
		rows, err := roundTrip[T](ctx, s, body)
		var nerr *Error
		if err == nil || attempt >= s.opts.Retries || ctx.Err() != nil ||
			(errors.As(err, &nerr) && !nerr.retryable()) {
			return rows, err
		}
		// 50ms, 100ms, 200ms... with full jitter.
		backoff := time.Duration(rand.Int64N(int64(50*time.Millisecond) << attempt))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, err
		}
	}
}

// roundTrip sends one request.
func roundTrip[T any](ctx context.Context, s *Store, body []byte) ([]T, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.signer != nil {
		if err := s.signer.sign(ctx, req, body); err != nil {
			return nil, err
		}
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > s.opts.MaxResponseBytes {
		return nil, fmt.Errorf("%w: over %d bytes", errBadResponse, s.opts.MaxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-RequestId")}
		var wire struct {
			Code            string `json:"code"`
			RequestID       string `json:"requestId"`
			DetailedMessage string `json:"detailedMessage"`
		}
		if json.Unmarshal(data, &wire) == nil {
			e.Code, e.Message = wire.Code, wire.DetailedMessage
			if wire.RequestID != "" {
				e.RequestID = wire.RequestID
			}
		}
		return nil, e
	}
	var out struct {
		Results []T `json:"results"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadResponse, err)
	}
	return out.Results, nil
}

// fail wraps an error of query. Anything but a definite answer of Neptune —
// a network failure, a timeout, a cancelled context, an error Neptune calls
// retryable — is marked graph.ErrUnavailable.
func fail(ctx context.Context, op string, err error) error {
	prefix := "neptune graph: " + op + ": "
	var nerr *Error
	ctxErr := ctx.Err()
	switch {
	case ctxErr != nil && !errors.Is(err, ctxErr):
		return fmt.Errorf("%s%w: %w: %w", prefix, graph.ErrUnavailable, ctxErr, err)
	case ctxErr != nil:
		return fmt.Errorf("%s%w: %w", prefix, graph.ErrUnavailable, err)
	case errors.As(err, &nerr):
		if nerr.retryable() {
			return fmt.Errorf("%s%w: %w", prefix, graph.ErrUnavailable, err)
		}
		return fmt.Errorf("%s%w", prefix, err)
	case errors.Is(err, errBadResponse):
		return fmt.Errorf("%s%w", prefix, err)
	default: // transport: refused, reset, TLS, timeout of one request
		return fmt.Errorf("%s%w: %w", prefix, graph.ErrUnavailable, err)
	}
}
