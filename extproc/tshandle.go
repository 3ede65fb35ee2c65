package extproc

import (
	"context"
	"net/http"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/policies"
)

type appendResult struct {
	Appended   int `json:"appended"`
	Duplicates int `json:"duplicates"`
}

type eventsResult struct {
	Events     []tsEvent `json:"events"`
	NextCursor string    `json:"next_cursor"`
}

// runTS performs one TimeSeries call on the namespace's store. On a namespace
// with a policy it is decided first; on one with a PII schema, each event's
// data is encrypted (bound to its series) before the store sees it and read
// events get the policy's field actions.
func (s *Server) runTS(ctx context.Context, c *call, body []byte) (*reply, error) {
	switch c.ts.op {
	case tsAppend:
		a, err := s.authorize(ctx, c, policies.OpAppend, "")
		if err != nil {
			return nil, err
		}
		events, e := decodeAppend(body, time.Now())
		if e != nil {
			return nil, e
		}
		var touched []string
		seen := map[string]bool{}
		for i := range events {
			if events[i].Data, touched, err = c.sealDoc(ctx, events[i].Series, events[i].Data, touched, seen); err != nil {
				return nil, err
			}
		}
		if err := s.auditAccess(ctx, c, a, touched); err != nil {
			return nil, err
		}
		appended, dups, err := s.appendTS(ctx, c, events)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, appendResult{Appended: appended, Duplicates: dups}), nil
	case tsQuery:
		a, err := s.authorize(ctx, c, policies.OpQuery, c.ts.query.Series)
		if err != nil {
			return nil, err
		}
		page, err := s.queryTS(ctx, c, c.ts.query)
		if err != nil {
			return nil, err
		}
		return s.eventsReply(ctx, c, a, page.Events, page.NextCursor)
	case tsTail:
		a, err := s.authorize(ctx, c, policies.OpTail, c.ts.tail.Series)
		if err != nil {
			return nil, err
		}
		page, err := s.tailTS(ctx, c, c.ts.tail)
		if err != nil {
			return nil, err
		}
		return s.eventsReply(ctx, c, a, page.Events, page.NextCursor)
	}
	return nil, invalid("unsupported operation")
}

// eventsReply answers a query or tail: each event's data gets the policy's
// field actions, audited once for the request before the answer.
func (s *Server) eventsReply(ctx context.Context, c *call, a *access, events []ts.Event, next string) (*reply, error) {
	var touched []string
	seen := map[string]bool{}
	var err error
	for i := range events {
		if events[i].Data, touched, err = c.openDoc(ctx, a, events[i].Series, events[i].Data, touched, seen); err != nil {
			return nil, err
		}
	}
	if err := s.auditAccess(ctx, c, a, touched); err != nil {
		return nil, err
	}
	return jsonReply(http.StatusOK, toEventsResult(events, next)), nil
}

func toEventsResult(events []ts.Event, next string) eventsResult {
	out := eventsResult{Events: make([]tsEvent, len(events)), NextCursor: next}
	for i, e := range events {
		out.Events[i] = toTSEvent(e)
	}
	return out
}
