// Package sqlitedb holds what the SQLite drivers of every backend family
// share: the DSN options common to them and the opening of a database file
// as one writer connection plus a pool of read-only readers, in WAL mode.
//
// Error messages start with the driver's prefix ("sqlite kv", "sqlite ts",
// ...), so a driver's errors read as they always did.
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Options are the settings every SQLite driver has; see the drivers'
// Options for their meaning.
type Options struct {
	Synchronous string
	BusyTimeout time.Duration
	Readers     int
}

// WithDefaults fills in the zero fields: synchronous "full" (lower-cased
// otherwise), a 5s busy timeout and max(4, GOMAXPROCS) readers.
func (o Options) WithDefaults() Options {
	if o.Synchronous == "" {
		o.Synchronous = "full"
	}
	o.Synchronous = strings.ToLower(o.Synchronous)
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.Readers <= 0 {
		o.Readers = max(4, runtime.GOMAXPROCS(0))
	}
	return o
}

// Validate checks o (after WithDefaults) and the database path.
func (o Options) Validate(prefix, path string) error {
	switch o.Synchronous {
	case "off", "normal", "full", "extra":
	default:
		return fmt.Errorf("%s: synchronous %q: want off, normal, full or extra", prefix, o.Synchronous)
	}
	switch {
	case path == "":
		return fmt.Errorf("%s: empty database path", prefix)
	case path == ":memory:" || strings.Contains(path, "mode=memory"):
		// The writer and the readers are separate connections; each would
		// get its own empty in-memory database.
		return fmt.Errorf("%s: in-memory databases are not supported; use a file path", prefix)
	case strings.ContainsRune(path, '?'):
		return fmt.Errorf("%s: database path %q contains '?'", prefix, path)
	}
	return nil
}

// ParseDSN splits a DSN of the form "path[?name=value&...]" into the file
// path and options. It knows synchronous, busy_timeout and readers and hands
// every other parameter to extra, which reports whether it knows the name
// (and any error parsing the value); extra may be nil. Unknown parameters
// are rejected, listing have, so that a typo does not silently weaken
// durability.
func ParseDSN(prefix, dsn, have string, extra func(name, value string) (bool, error)) (string, Options, error) {
	path, query, _ := strings.Cut(dsn, "?")
	var o Options
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", o, fmt.Errorf("%s: DSN parameters: %w", prefix, err)
	}
	for name, values := range params {
		v := values[len(values)-1]
		switch name {
		case "synchronous":
			o.Synchronous = v
		case "busy_timeout":
			o.BusyTimeout, err = time.ParseDuration(v)
		case "readers":
			o.Readers, err = strconv.Atoi(v)
		default:
			known := false
			if extra != nil {
				known, err = extra(name, v)
			}
			if !known {
				return "", o, fmt.Errorf("%s: unknown DSN parameter %q (have %s)", prefix, name, have)
			}
		}
		if err != nil {
			return "", o, fmt.Errorf("%s: DSN parameter %s: %w", prefix, name, err)
		}
	}
	if path == "" {
		return "", o, fmt.Errorf("%s: DSN %q has no database path", prefix, dsn)
	}
	return path, o, nil
}

// WriterDSN configures the writer connection for modernc.org/sqlite: WAL so
// readers never block it, IMMEDIATE transactions so a write never has to
// upgrade a read lock, and the requested durability. extra adds or
// overrides connection parameters (nil for none).
func WriterDSN(path string, o Options, extra url.Values) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	// Without a limit the WAL file keeps the size of its largest burst
	// after each checkpoint.
	q.Set("_pragma", "journal_size_limit(67108864)")
	q.Set("_synchronous", o.Synchronous)
	q.Set("_txlock", "immediate")
	for k, v := range extra {
		q[k] = v
	}
	return path + "?" + q.Encode()
}

// ReaderDSN configures the read pool; query_only guards against a write
// slipping onto a reader connection.
func ReaderDSN(path string, o Options) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10))
	q.Set("_query_only", "1")
	return path + "?" + q.Encode()
}

// Open opens the database file at path: the writer, a pool of exactly one
// connection (SQLite has one writer) configured by WriterDSN with
// writerExtra, then, once schemaSQL has run on the writer (the schema must
// exist before the readers prepare their statements), the reader pool of
// o.Readers connections. o must have its defaults. A failure to run
// schemaSQL is wrapped by fail with op "create schema in "+path; on error
// nothing is left open.
func Open(ctx context.Context, prefix, path string, o Options, writerExtra url.Values, schemaSQL string,
	fail func(ctx context.Context, op string, err error) error) (w, r *sql.DB, err error) {
	w, err = sql.Open("sqlite", WriterDSN(path, o, writerExtra))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: open %s: %w", prefix, path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, schemaSQL); err != nil {
		w.Close()
		return nil, nil, fail(ctx, "create schema in "+path, err)
	}
	r, err = sql.Open("sqlite", ReaderDSN(path, o))
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("%s: open %s: %w", prefix, path, err)
	}
	r.SetMaxOpenConns(o.Readers)
	r.SetMaxIdleConns(o.Readers)
	return w, r, nil
}
