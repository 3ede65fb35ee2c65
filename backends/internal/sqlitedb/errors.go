package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	modsqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Unavailable reports whether err means the operation could not be carried
// out now but may succeed when retried: a done context, a closed connection,
// or an SQLite result code of contention (busy, locked), interruption or
// resources (I/O, full disk, memory, read-only or unopenable file).
func Unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var e *modsqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL,
		sqlite3.SQLITE_READONLY:
		return true
	}
	return false
}

// Wrap prefixes err with prefix and marks it with sentinel (the family's
// ErrUnavailable) when ctx is done, when Unavailable(err), or when err is
// one of alsoUnavailable (errors a driver knows to be transient too).
func Wrap(ctx context.Context, prefix string, sentinel, err error, alsoUnavailable ...error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		// SQLite reports an interrupted statement as SQLITE_INTERRUPT; keep
		// the cause visible to errors.Is.
		return fmt.Errorf("%s%w: %w: %w", prefix, sentinel, ctxErr, err)
	}
	transient := Unavailable(err)
	for _, also := range alsoUnavailable {
		transient = transient || errors.Is(err, also)
	}
	if transient {
		return fmt.Errorf("%s%w: %w", prefix, sentinel, err)
	}
	return fmt.Errorf("%s%w", prefix, err)
}
