package logscan

import (
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
)

// QueryOf turns a query of the data API into a page request for a log
// driver d: the query cursor (event time, position) is decoded for the
// series' tag, and the namespace's time window (plus Slack) bounds the scan.
func QueryOf(q ts.QueryArgs, d cursor.Driver, tag cursor.Tag, window time.Duration, now time.Time) (Query, error) {
	lq := Query{Start: q.Start, End: q.End, Desc: q.Desc, Limit: ts.PageLimit(q.Limit), Window: window + Slack, Now: now}
	if q.Cursor != "" {
		f, err := cursor.Decode(q.Cursor, d, cursor.QueryKind(q.Desc), tag, 2)
		if err != nil {
			return Query{}, err
		}
		lq.After = &Key{T: f[0], Pos: f[1]}
	}
	return lq, nil
}

// PageOf turns the records of a page into the data API's page: each event
// carries its tail cursor (tailFields names its position in the log), and
// when more records follow, NextCursor resumes after the last one in the
// query's order.
func PageOf(recs []Record, more bool, d cursor.Driver, desc bool, tag cursor.Tag, tailFields func(Record) []int64) ts.Page {
	page := ts.Page{Events: make([]ts.Event, len(recs))}
	for i, r := range recs {
		page.Events[i] = r.Event
		page.Events[i].Cursor = cursor.Encode(d, cursor.Tail, tag, tailFields(r)...)
	}
	if more {
		last := recs[len(recs)-1]
		page.NextCursor = cursor.Encode(d, cursor.QueryKind(desc), tag, last.Event.Time.UnixNano(), last.Pos)
	}
	return page
}
