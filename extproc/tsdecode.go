package extproc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prism-gw/prism/backends/ts"
)

// tsOp is a TimeSeries operation of the data API.
type tsOp int

const (
	tsAppend tsOp = iota
	tsQuery
	tsTail
)

// defaultTailWait is the wait of a tail that gives none: a long poll that
// returns at once by default would make clients spin.
const defaultTailWait = 10 * time.Second

// tsRequest is a decoded TimeSeries request; an append's events are decoded
// from the body once it arrives.
type tsRequest struct {
	op    tsOp
	query ts.QueryArgs
	tail  ts.TailArgs
}

// decodeTS decodes /v1/ts/{ns}/events and /v1/ts/{ns}/tail.
func decodeTS(r *httpRequest, rt route) (tsRequest, *apiError) {
	q, err := url.ParseQuery(r.rawQuery)
	if err != nil {
		return tsRequest{}, invalid("malformed query string: %v", err)
	}
	switch rt.rest {
	case "events":
		switch r.method {
		case http.MethodPost:
			return tsRequest{op: tsAppend}, onlyParams(q)
		case http.MethodGet:
			return decodeTSQuery(q)
		}
		return tsRequest{}, methodNotAllowed(r.method, "events (GET to query, POST to append)")
	case "tail":
		if r.method != http.MethodGet {
			return tsRequest{}, methodNotAllowed(r.method, "tail (use GET)")
		}
		return decodeTSTail(q)
	}
	return tsRequest{}, notFound("no TimeSeries route %q: want events or tail", rt.rest)
}

func decodeTSQuery(q url.Values) (tsRequest, *apiError) {
	if e := onlyParams(q, "series", "start", "end", "limit", "cursor", "order"); e != nil {
		return tsRequest{}, e
	}
	a := ts.QueryArgs{Series: q.Get("series"), Cursor: q.Get("cursor")}
	var e *apiError
	if a.Start, e = parseTime("start", q.Get("start")); e != nil {
		return tsRequest{}, e
	}
	if a.End, e = parseTime("end", q.Get("end")); e != nil {
		return tsRequest{}, e
	}
	if a.Limit, e = parseLimit(q.Get("limit"), ts.MaxLimit); e != nil {
		return tsRequest{}, e
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		a.Desc = true
	default:
		return tsRequest{}, invalid(`order must be "asc" or "desc", got %q`, q.Get("order"))
	}
	if err := a.Validate(); err != nil {
		return tsRequest{}, invalid("%v", err)
	}
	return tsRequest{op: tsQuery, query: a}, nil
}

func decodeTSTail(q url.Values) (tsRequest, *apiError) {
	if e := onlyParams(q, "series", "after", "wait", "limit"); e != nil {
		return tsRequest{}, e
	}
	a := ts.TailArgs{Series: q.Get("series"), After: q.Get("after"), Wait: defaultTailWait}
	if w := q.Get("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d < 0 || d > ts.MaxWait {
			return tsRequest{}, invalid("wait must be a Go duration from 0s to %v, got %q", ts.MaxWait, w)
		}
		a.Wait = d
	}
	var e *apiError
	if a.Limit, e = parseLimit(q.Get("limit"), ts.MaxLimit); e != nil {
		return tsRequest{}, e
	}
	if err := a.Validate(); err != nil {
		return tsRequest{}, invalid("%v", err)
	}
	return tsRequest{op: tsTail, tail: a}, nil
}

// parseTime reads an RFC 3339 time (nanoseconds allowed); empty is zero.
func parseTime(name, s string) (time.Time, *apiError) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("%s must be an RFC 3339 time such as 2026-01-02T15:04:05.123456789Z, got %q", name, s)
	}
	return t, nil
}

// parseLimit reads a page size; empty is 0 (the default of the operation).
func parseLimit(s string, max int) (int, *apiError) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, invalid("limit must be an integer from 1 to %d, got %q", max, s)
	}
	return n, nil
}

// tsEvent is an event as the data API writes and reads it.
type tsEvent struct {
	Series string            `json:"series"`
	Time   string            `json:"time,omitempty"`
	ID     string            `json:"id,omitempty"`
	Data   json.RawMessage   `json:"data,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

type appendBody struct {
	Events []tsEvent `json:"events"`
}

// decodeAppend decodes an append body; events without time get now.
func decodeAppend(body []byte, now time.Time) ([]ts.Event, *apiError) {
	var b appendBody
	if e := decodeJSONBody(body, &b); e != nil {
		return nil, e
	}
	if len(b.Events) == 0 {
		return nil, invalid("events must hold 1 to %d events", ts.MaxBatch)
	}
	events := make([]ts.Event, len(b.Events))
	for i, in := range b.Events {
		t := now
		if in.Time != "" {
			var e *apiError
			if t, e = parseTime("time", in.Time); e != nil {
				e.Message = "events[" + strconv.Itoa(i) + "]: " + e.Message
				return nil, e
			}
		}
		events[i] = ts.Event{Series: in.Series, Time: t, ID: in.ID, Data: in.Data, Tags: in.Tags}
	}
	if err := ts.ValidateEvents(events); err != nil {
		return nil, toAPIError(err)
	}
	return events, nil
}

// toTSEvent renders a stored event.
func toTSEvent(e ts.Event) tsEvent {
	return tsEvent{Series: e.Series, Time: e.Time.UTC().Format(time.RFC3339Nano), ID: e.ID, Data: ts.DataOrNull(e.Data), Tags: e.Tags}
}
