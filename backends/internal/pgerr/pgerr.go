// Package pgerr classifies errors from pgx for the Postgres drivers of every
// backend family: anything but a definite SQL error is "unavailable", and
// each driver marks it with its own family's ErrUnavailable sentinel.
package pgerr

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err is not a definite SQL error: a connection
// that failed or broke, a server shutting down or out of resources, an I/O
// error, a deadlock or serialization failure (rolled back), a lock that
// could not be taken, or anything that is not a server error at all.
func Unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true
	}
	switch pgErr.Code[:2] {
	case "08", // connection exception
		"40", // transaction rollback: serialization failure, deadlock
		"53", // insufficient resources
		"57", // operator intervention: shutdown, query_canceled
		"58": // system error: I/O
		return true
	}
	return pgErr.Code == "55P03" // lock_not_available
}

// Wrap prefixes err with prefix and, unless it is a definite SQL error,
// marks it with sentinel (the family's ErrUnavailable): when ctx is done,
// when err already carries sentinel (it was classified before, e.g. for
// one statement of a batch), or when Unavailable(err).
func Wrap(ctx context.Context, prefix string, sentinel, err error) error {
	ctxErr := ctx.Err()
	switch {
	case ctxErr != nil && !errors.Is(err, ctxErr):
		// pgx reports a query cancelled by ctx as the server's
		// query_canceled error; keep the cause visible to errors.Is.
		return fmt.Errorf("%s%w: %w: %w", prefix, sentinel, ctxErr, err)
	case ctxErr != nil || errors.Is(err, sentinel) || Unavailable(err):
		return fmt.Errorf("%s%w: %w", prefix, sentinel, err)
	default:
		return fmt.Errorf("%s%w", prefix, err)
	}
}
