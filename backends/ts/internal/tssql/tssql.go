// Package tssql holds what the SQL TimeSeries drivers share and must agree
// on: how a query and its cursor become index bounds, how rows become a
// page, the cursors of both, and what a migration's copy (ts.Replica) takes.
//
// Cursors: a query cursor holds the (time, seq) of the last event of its
// page; a tail cursor holds a seq. seq is the driver's position of an event
// in its series' append order. Both drivers issue cursors under one driver
// id (cursor.SQL) and accept the ids they issued before (cursor.SQLite,
// cursor.Postgres) from either driver: a migration copies events keeping
// their seq, so during and after it a cursor of one store names the same
// event in the other, whichever format the client holds.
package tssql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
	"github.com/prism-gw/prism/backends/ts/internal/wire"
)

// accepted are the driver ids of the cursors a SQL driver decodes.
var accepted = []cursor.Driver{cursor.SQL, cursor.SQLite, cursor.Postgres}

// Query is a validated query as SQL bounds: time >= Lo AND time < Hi AND
// the cursor condition, (time > CurT OR seq > CurSeq) ascending and
// (time < CurT OR seq < CurSeq) descending. Without a cursor CurT is the
// open extreme, so the condition always holds.
type Query struct {
	Tag          cursor.Tag
	Series       string
	Limit        int
	Desc         bool
	Lo, Hi       int64
	CurT, CurSeq int64
}

// PlanQuery validates q and turns it into bounds.
func PlanQuery(ns string, q ts.QueryArgs) (Query, error) {
	if err := q.Validate(); err != nil {
		return Query{}, err
	}
	p := Query{Tag: cursor.TagOf(ns, q.Series), Series: q.Series, Limit: ts.PageLimit(q.Limit), Desc: q.Desc,
		Lo: math.MinInt64, Hi: math.MaxInt64, CurT: math.MinInt64}
	if q.Desc {
		p.CurT = math.MaxInt64
	}
	if !q.Start.IsZero() {
		p.Lo = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		p.Hi = q.End.UnixNano()
	}
	if q.Cursor == "" {
		return p, nil
	}
	f, err := cursor.DecodeAny(q.Cursor, accepted, cursor.QueryKind(q.Desc), p.Tag, 2)
	if err != nil {
		return Query{}, err
	}
	p.CurT, p.CurSeq = f[0], f[1]
	if q.Desc {
		if p.CurT < math.MaxInt64 {
			p.Hi = min(p.Hi, p.CurT+1)
		}
	} else {
		p.Lo = max(p.Lo, p.CurT)
	}
	return p, nil
}

// Empty reports whether the bounds hold no time at all.
func (q Query) Empty() bool { return q.Lo >= q.Hi }

// Row is one event row.
type Row struct {
	Seq, Time int64
	ID        *string
	Data      []byte
	Tags      []byte
}

// Event converts a row of series (with tag) into an event.
func Event(tag cursor.Tag, series string, r Row) (ts.Event, error) {
	tags, err := wire.UnmarshalTags(r.Tags)
	if err != nil {
		return ts.Event{}, err
	}
	e := ts.Event{Series: series, Time: timeOf(r.Time), Data: ts.DataOrNull(r.Data), Tags: tags, Cursor: TailCursor(tag, r.Seq), Seq: r.Seq}
	if r.ID != nil {
		e.ID = *r.ID
	}
	return e, nil
}

// Pager collects the rows of a query, which asks for Limit+1 rows: the
// extra one only tells that more remain.
type Pager struct {
	q      Query
	events []ts.Event
	last   [2]int64
	more   bool
}

// NewPager starts a page of q.
func NewPager(q Query) *Pager { return &Pager{q: q, events: make([]ts.Event, 0, min(q.Limit, 128))} }

// Add adds a row and reports whether more rows are wanted.
func (p *Pager) Add(r Row) (bool, error) {
	if len(p.events) == p.q.Limit {
		p.more = true
		return false, nil
	}
	e, err := Event(p.q.Tag, p.q.Series, r)
	if err != nil {
		return false, err
	}
	p.events = append(p.events, e)
	p.last = [2]int64{r.Time, r.Seq}
	return true, nil
}

// Page returns the page, with a next cursor when more rows remain.
func (p *Pager) Page() ts.Page {
	pg := ts.Page{Events: p.events}
	if p.more {
		pg.NextCursor = cursor.Encode(cursor.SQL, cursor.QueryKind(p.q.Desc), p.q.Tag, p.last[0], p.last[1])
	}
	return pg
}

// TailCursor is the tail cursor after seq.
func TailCursor(tag cursor.Tag, seq int64) string {
	return cursor.Encode(cursor.SQL, cursor.Tail, tag, seq)
}

// TailAfter decodes a tail cursor; ok is false when after is empty.
func TailAfter(tag cursor.Tag, after string) (seq int64, ok bool, err error) {
	if after == "" {
		return 0, false, nil
	}
	f, err := cursor.DecodeAny(after, accepted, cursor.Tail, tag, 1)
	if err != nil {
		return 0, false, err
	}
	if f[0] < 0 {
		return 0, false, fmt.Errorf("%w: negative position", ts.ErrInvalidCursor)
	}
	return f[0], true, nil
}

// CursorSeq is ts.Replica.CursorSeq of both drivers: the position a tail
// cursor of (ns, series) names.
func CursorSeq(ns, series, c string) (int64, error) {
	if c == "" {
		return 0, fmt.Errorf("%w: empty", ts.ErrInvalidCursor)
	}
	seq, _, err := TailAfter(cursor.TagOf(ns, series), c)
	return seq, err
}

// SeqCursor is ts.Replica.SeqCursor of both drivers.
func SeqCursor(ns, series string, seq int64) string {
	return TailCursor(cursor.TagOf(ns, series), seq)
}

// NullableID returns the id as a SQL value: nil (NULL) when empty.
func NullableID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// Export positions are "series@seq" of the last event of a page: events
// are exported in (series, seq) order, which both SQL schemas index.

// ExportPosition is the position after the event seq of series.
func ExportPosition(series string, seq int64) string {
	return series + "@" + strconv.FormatInt(seq, 10)
}

// ParseExportPosition reads a position; empty is the start (series "" and
// seq 0 sort before every event).
func ParseExportPosition(p string) (series string, seq int64, err error) {
	if p == "" {
		return "", 0, nil
	}
	i := strings.LastIndexByte(p, '@')
	if i <= 0 {
		return "", 0, fmt.Errorf("%w: export position %q", ts.ErrInvalidCursor, p)
	}
	series = p[:i]
	seq, err = strconv.ParseInt(p[i+1:], 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != p[i+1:] || ts.ValidateSeries(series) != nil {
		return "", 0, fmt.Errorf("%w: export position %q", ts.ErrInvalidCursor, p)
	}
	return series, seq, nil
}

// ExportBounds are the time bounds of an export in nanoseconds, with open
// sides at the extremes.
func ExportBounds(start, end time.Time) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !start.IsZero() {
		lo = start.UnixNano()
	}
	if !end.IsZero() {
		hi = end.UnixNano()
	}
	return lo, hi
}

// Rows is what *sql.Rows and pgx.Rows share.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ReadRows feeds rows (seq, time, id, data, tags) to add until it declines
// or they end. Rows are stepped lazily, so stopping early reads no
// further; the caller closes rows.
func ReadRows(rows Rows, add func(Row) (bool, error)) error {
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Seq, &r.Time, &r.ID, &r.Data, &r.Tags); err != nil {
			return err
		}
		more, err := add(r)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	return rows.Err()
}

// Export is a validated export as SQL arguments: after (Series, Seq),
// Lo <= time < Hi, pages of Limit (the query asks for Limit+1 rows).
type Export struct {
	Series      string
	Seq, Lo, Hi int64
	Limit       int
}

// PlanExport validates the arguments of an export.
func PlanExport(q ts.ExportArgs) (Export, error) {
	limit, err := q.Validate()
	if err != nil {
		return Export{}, err
	}
	series, seq, err := ParseExportPosition(q.After)
	if err != nil {
		return Export{}, err
	}
	lo, hi := ExportBounds(q.Start, q.End)
	return Export{Series: series, Seq: seq, Lo: lo, Hi: hi, Limit: limit}, nil
}

// ReadExport reads the rows of an export query (series, seq, time, id,
// data, tags) into the page and the position after it, empty when no row
// remains; the caller closes rows.
func ReadExport(ns string, rows Rows, limit int) ([]ts.Event, string, error) {
	var events []ts.Event
	var last Row
	var lastSeries string
	for rows.Next() {
		if len(events) == limit {
			return events, ExportPosition(lastSeries, last.Seq), nil // the extra row: more remain
		}
		var series string
		var r Row
		if err := rows.Scan(&series, &r.Seq, &r.Time, &r.ID, &r.Data, &r.Tags); err != nil {
			return nil, "", err
		}
		e, err := Event(cursor.TagOf(ns, series), series, r)
		if err != nil {
			return nil, "", err
		}
		events = append(events, e)
		last, lastSeries = r, series
	}
	return events, "", rows.Err()
}
