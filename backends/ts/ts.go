// Package ts defines the TimeSeries abstraction that every TimeSeries driver
// implements, the registry that opens drivers by name, the errors the data
// API maps to its status codes, and the validation of arguments that all
// drivers share.
//
// # Model
//
// A namespace holds series; a series holds events. An event has a time
// (nanosecond precision, returned in UTC), an optional idempotency id, JSON
// data and string tags. Each stored event also has a driver-assigned
// position in its series' append order (a sequence number, a stream
// sequence, a partition offset), which is what Tail follows and what breaks
// ties between events of equal time.
//
// # Cursors
//
// Cursors (Page.NextCursor, Event.Cursor, QueryArgs.Cursor, TailArgs.After)
// are opaque strings made by the driver that issued them. They are already
// URL-safe (unpadded base64url, at most MaxCursorBytes long), so the API
// layer passes them through unchanged in JSON and query strings. A cursor
// names its format (the SQL drivers share one, log drivers have their
// own), its kind (tail, ascending or descending query) and a digest of its
// namespace and series: a cursor that is malformed, forged, from another
// format, namespace, series or order is rejected with ErrInvalidCursor,
// never a panic. Cursors are positions, not snapshots: they stay valid
// across restarts and gateways, and across a migration between Replica
// drivers (copies keep their positions), but not across DropNamespace
// (positions start again in a re-created namespace).
//
// # Namespaces
//
// A namespace must be provisioned with EnsureNamespace before use, once per
// Store (each gateway process calls it when it receives the namespace's
// config; it is idempotent and cheap when nothing changed). Operations on a
// namespace the Store was not told about fail with ErrNotFound. The options
// are kept by the Store in memory; drivers that provision server-side
// objects (a NATS stream, a Kafka topic) also apply them there.
//
// # Guarantees every driver gives (checked by package tstest)
//
//   - Query returns exactly the events with Start <= Time < End of one
//     series, in time order (ties by position, in the query's direction),
//     and paging with NextCursor covers each of them exactly once.
//   - Appending an event whose (Series, ID) was appended before, within at
//     least the namespace's DuplicateWindow, stores nothing and counts it
//     as a duplicate; this holds inside one batch too. Events without ID
//     are never de-duplicated.
//   - Tail returns the events appended after its cursor in append order, as
//     soon as any exist, or an empty page when the wait ends; it always
//     returns a cursor, and consecutive tails see every event exactly once.
//   - A call with a cancelled or expired context fails with an error that
//     matches both ErrUnavailable and the context's error.
package ts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Limits of the data API. Validate* enforce them; drivers call those
// functions too, so a bad argument never reaches a server.
const (
	// DefaultLimit is the page size when a query or tail gives none.
	DefaultLimit = 100
	// MaxLimit is the largest page.
	MaxLimit = 1000
	// MaxWait is the longest a tail may wait.
	MaxWait = 30 * time.Second
	// MaxBatch is the most events one Append may carry.
	MaxBatch = 1000
	// MaxSeriesBytes bounds a series name (see ValidateSeries for its
	// characters).
	MaxSeriesBytes = 256
	// MaxNamespaceBytes bounds a namespace name.
	MaxNamespaceBytes = 200
	// MaxIDBytes bounds an event id.
	MaxIDBytes = 256
	// MaxTags bounds the number of tags of one event.
	MaxTags = 64
	// MaxTagKeyBytes and MaxTagValueBytes bound one tag.
	MaxTagKeyBytes   = 128
	MaxTagValueBytes = 1024
	// MaxDataBytes bounds an event's JSON data. A driver may have a lower
	// limit (a broker's maximum message size) and reports it as
	// ErrTooLarge.
	MaxDataBytes = 1 << 20
	// MaxCursorBytes bounds a cursor string; longer input is rejected
	// before it is decoded.
	MaxCursorBytes = 128
)

// Defaults of NamespaceOptions.
const (
	// DefaultDuplicateWindow is how long log drivers remember event ids
	// when a namespace gives no window (NATS JetStream's own default).
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultLogTimeWindow is the TimeWindow of log drivers (nats, kafka)
	// when a namespace gives none. SQL drivers default to no window.
	DefaultLogTimeWindow = 5 * time.Minute
)

// Errors returned by drivers. They are mapped to API codes in one place
// (extproc); drivers wrap them with %w.
var (
	// ErrInvalidArgument: the request can never succeed as given (400
	// INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidCursor: a cursor that this driver did not issue for this
	// namespace, series and kind. It matches ErrInvalidArgument.
	ErrInvalidCursor = wrapped{ErrInvalidArgument, "invalid cursor"}
	// ErrTimeOutOfWindow: an event's time lies further from the time of
	// its append than the namespace's TimeWindow. It matches
	// ErrInvalidArgument.
	ErrTimeOutOfWindow = wrapped{ErrInvalidArgument, "event time outside the namespace's time window"}
	// ErrTooLarge: an event is larger than the backend accepts (413
	// TOO_LARGE).
	ErrTooLarge = errors.New("event too large")
	// ErrNotFound: the namespace was not provisioned in this store (404
	// NOT_FOUND).
	ErrNotFound = errors.New("namespace not found")
	// ErrUnavailable: the backend could not be reached or timed out (503
	// UNAVAILABLE). For Append see Store.Append on what may have been
	// stored.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrSealed: the namespace is sealed in this store for a migration
	// handover (Replica.Seal): it takes copies, not appends. extproc then
	// appends to the other store of the migration; a client sees it only
	// as 503 UNAVAILABLE when neither store takes the append.
	ErrSealed = wrapped{ErrUnavailable, "namespace sealed in this backend for a migration handover"}
)

// wrapped is a sentinel error that also matches a more general one.
type wrapped struct {
	parent error
	msg    string
}

func (e wrapped) Error() string { return e.msg }
func (e wrapped) Unwrap() error { return e.parent }

// Event is one event of a series.
type Event struct {
	// Series names the series, 1..MaxSeriesBytes of [A-Za-z0-9._:/@-].
	Series string
	// Time is the event's time; required (the API layer defaults it to
	// now). Nanoseconds are kept; it is returned in UTC.
	Time time.Time
	// ID is the optional idempotency id: an event whose (Series, ID) was
	// already appended is not stored again.
	ID string
	// Data is any JSON value. Empty means null. Drivers return it
	// semantically equal (whitespace may differ).
	Data json.RawMessage
	// Tags are optional string labels.
	Tags map[string]string
	// Cursor is set on events a driver returns: the event's position in its
	// series' append order. Tail with After set to it returns the events
	// appended after this one. Ignored by Append.
	Cursor string
	// Seq is the event's position as a number, set on events returned by
	// drivers that implement Replica (0 otherwise). Replica.Copy stores an
	// event at this position. Ignored by Append.
	Seq int64
}

// QueryArgs selects the events of one series with Start <= Time < End.
type QueryArgs struct {
	Series string
	// Start is inclusive and End exclusive; a zero value leaves that side
	// open. End before Start is ErrInvalidArgument.
	Start, End time.Time
	// Limit is the page size: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor resumes after the last event of the previous page; it is the
	// NextCursor of a query of the same series and order.
	Cursor string
	// Desc returns the newest events first.
	Desc bool
}

// TailArgs follows one series in append order.
type TailArgs struct {
	Series string
	// After is a cursor from a previous Tail's NextCursor or an
	// Event.Cursor. Empty starts at the current end of the series: only
	// events appended after the call began are returned.
	After string
	// Limit is the page size: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// Wait is how long to wait for an event when none is there yet: 0
	// returns at once, at most MaxWait.
	Wait time.Duration
}

// Page is one page of a query or a tail.
type Page struct {
	Events []Event
	// NextCursor continues after the last event of the page. For Query it
	// is empty on the last page. Tail always sets it, also on an empty
	// page.
	NextCursor string
}

// NamespaceOptions is a namespace's TimeSeries configuration. The zero
// value of each field selects its default.
type NamespaceOptions struct {
	// Retention is how long events are kept; 0 keeps them forever. SQL
	// drivers expire by event time, log drivers by append time (the
	// difference is at most TimeWindow).
	Retention time.Duration
	// DuplicateWindow is how long (at least) an event id is remembered
	// for de-duplication. Default DefaultDuplicateWindow. SQL drivers
	// remember ids for as long as the event is kept, whatever the window.
	DuplicateWindow time.Duration
	// TimeWindow, when positive, rejects events whose time lies further
	// than this from the time they are appended (ErrTimeOutOfWindow), in
	// either direction. Log drivers index events by append time and need
	// such a bound to answer time-ordered queries; the cost of a query
	// page grows with the number of events appended within 2×TimeWindow.
	// Zero selects DefaultLogTimeWindow for log drivers and no bound for
	// SQL drivers.
	TimeWindow time.Duration
	// Partitions is the number of partitions of drivers that shard a
	// namespace (kafka), e.g. derived from the namespace's estimated write
	// rate; 0 selects the driver's default. It applies when the namespace
	// is first created: changing it later would move series between
	// partitions, so later values are ignored.
	Partitions int
}

// Store is a TimeSeries backend. Namespaces share a store; events of
// different namespaces or series never meet. Implementations are safe for
// concurrent use.
type Store interface {
	// EnsureNamespace provisions ns (creating server-side objects as
	// needed) and records its options in the store. It is idempotent; a
	// second call with other options updates what the backend allows to
	// change.
	EnsureNamespace(ctx context.Context, ns string, opts NamespaceOptions) error
	// DropNamespace deletes all events of ns and forgets it. Dropping an
	// unknown namespace is not an error.
	DropNamespace(ctx context.Context, ns string) error
	// Append stores events and reports how many were stored and how many
	// were duplicates of events already stored (or earlier in the batch).
	// SQL drivers store a batch atomically. Log drivers store each event
	// on its own: after an ErrUnavailable a part of the batch may be
	// stored, and retrying stores events with an ID once but events
	// without ID again.
	Append(ctx context.Context, ns string, events []Event) (appended, duplicates int, err error)
	// Query returns one page of a series' events in time order.
	Query(ctx context.Context, ns string, q QueryArgs) (Page, error)
	// Tail returns the events appended to a series after t.After, in
	// append order, waiting up to t.Wait for the first one. It blocks on
	// notifications, not by polling the backend in a loop; a cancelled
	// context ends the wait with an error.
	Tail(ctx context.Context, ns string, t TailArgs) (Page, error)
	// Close releases the store's connections and stops its background
	// work. It is safe to call more than once.
	Close() error
}

// ExportArgs select one page of Exporter.Export.
type ExportArgs struct {
	// Start is inclusive and End exclusive; a zero value leaves that side
	// open.
	Start, End time.Time
	// After is the position Export returned with the previous page; empty
	// starts at the first event.
	After string
	// Limit is the page size, 1..MaxLimit; 0 means DefaultLimit.
	Limit int
}

// Exporter is a Store that lists every event of a namespace across its
// series, for the backfill of a migration: a job copies page after page and,
// after a crash, resumes from the position it saved. Events come in series
// order, then append order within a series, with their IDs, so a copy
// appended to another store deduplicates against copies made meanwhile.
type Exporter interface {
	// Export returns one page of ns's events and the position after its
	// last event; next is empty when no event remains after the page. A
	// position that Export did not make is ErrInvalidCursor.
	Export(ctx context.Context, ns string, q ExportArgs) (events []Event, next string, err error)
	// Count is the number of events Export would list, for progress.
	Count(ctx context.Context, ns string, start, end time.Time) (int64, error)
}

// Validate checks the arguments and returns the page size to use.
func (q ExportArgs) Validate() (int, error) {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return 0, fmt.Errorf("%w: export limit %d is not within 1..%d", ErrInvalidArgument, q.Limit, MaxLimit)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return 0, fmt.Errorf("%w: export end %s is before start %s", ErrInvalidArgument, q.End, q.Start)
	}
	if q.Limit == 0 {
		return DefaultLimit, nil
	}
	return q.Limit, nil
}

// Replica is a Store that can take part in a migration of a TimeSeries
// namespace to or from another Replica (the SQL drivers).
//
// Positions are what make a migration invisible to clients: a copy keeps
// the position (Event.Seq) the event has in the store it comes from, and
// the SQL drivers share one cursor format, so a cursor issued by one store
// resumes at the same place in the other. Exactly one of the two stores
// assigns positions at a time: the migration's handover seals the old one
// (Seal) and lets the new one assign positions above every position the
// old one gave (Unseal with its floor).
type Replica interface {
	Store
	Exporter
	// AppendEvents is Append that also returns the events it stored, in
	// the order given, with their Seq (and Cursor) set, so a migration can
	// copy them to the other store. Duplicates are not returned. On a
	// sealed namespace it stores nothing and fails with ErrSealed.
	AppendEvents(ctx context.Context, ns string, events []Event) (stored []Event, duplicates int, err error)
	// Copy stores events (each with Seq > 0) at their Seq in their series.
	// An event whose position or (Series, ID) is already taken in its series
	// is skipped: it is the same event, copied before (positions are
	// assigned by one store at a time). A driver whose positions cannot hold
	// the event's Seq (a position taken by another series) stores it at a
	// new position after every existing one and counts it in moved.
	// Copy works on a sealed namespace too, and never lowers the position a
	// later append gets. Copies of one batch are stored atomically.
	Copy(ctx context.Context, ns string, events []Event) (stored, moved int, err error)
	// Seal stops appends to ns in this store, after those in flight have
	// committed, and returns the highest position the store has given in
	// ns (its floor for the other store). While sealed, Tail returns no
	// event past that position (copies above it are visible to Query and
	// Export only). Sealing twice returns the same floor.
	Seal(ctx context.Context, ns string) (floor int64, err error)
	// Unseal lets appends to ns resume, every new position above floor.
	Unseal(ctx context.Context, ns string, floor int64) error
	// CursorSeq returns the position a tail cursor of (ns, series) names;
	// it accepts the cursors of every Replica driver.
	CursorSeq(ns, series, cursor string) (int64, error)
	// SeqCursor makes the tail cursor of position seq in (ns, series).
	SeqCursor(ns, series string, seq int64) string
}
