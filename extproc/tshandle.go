package extproc

import (
	"context"
	"github.com/prism-gw/prism/backends/ts"
	"net/http"
	"time"
)

type appendResult struct {
	Appended   int `json:"appended"`
	Duplicates int `json:"duplicates"`
}

type eventsResult struct {
	Events     []tsEvent `json:"events"`
	NextCursor string    `json:"next_cursor"`
}

// runTS performs one TimeSeries call on the namespace's store.
func (s *Server) runTS(ctx context.Context, c *call, body []byte) (*reply, error) {
	ns, store := c.ns.cfg.GetNamespace(), c.ns.ts
	switch c.ts.op {
	case tsAppend:
		events, e := decodeAppend(body, time.Now())
		if e != nil {
			return nil, e
		}
		appended, dups, err := store.Append(ctx, ns, events)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, appendResult{Appended: appended, Duplicates: dups}), nil
	case tsQuery:
		page, err := store.Query(ctx, ns, c.ts.query)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, toEventsResult(page.Events, page.NextCursor)), nil
	case tsTail:
		page, err := store.Tail(ctx, ns, c.ts.tail)
		if err != nil {
			return nil, err
		}
		return jsonReply(http.StatusOK, toEventsResult(page.Events, page.NextCursor)), nil
	}
	return nil, invalid("unsupported operation")
}

func toEventsResult(events []ts.Event, next string) eventsResult {
	out := eventsResult{Events: make([]tsEvent, len(events)), NextCursor: next}
	for i, e := range events {
		out.Events[i] = toTSEvent(e)
	}
	return out
}
