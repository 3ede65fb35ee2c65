package pgerr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

var errSentinel = errors.New("unavailable")

func TestUnavailable(t *testing.T) {
	for code, want := range map[string]bool{
		"08006": true, "40001": true, "40P01": true, "53300": true, "57014": true, "57P01": true,
		"58030": true, "55P03": true, "23505": false, "42P01": false, "3F000": false, "55000": false,
	} {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code})
		if got := Unavailable(err); got != want {
			t.Errorf("Unavailable(SQLSTATE %s) = %v, want %v", code, got, want)
		}
	}
	if !Unavailable(errors.New("dial tcp: connection refused")) {
		t.Error("a non-server error is not unavailable")
	}
}

func TestWrap(t *testing.T) {
	definite := &pgconn.PgError{Code: "23505"}
	ctx := context.Background()
	if err := Wrap(ctx, "p: ", errSentinel, definite); errors.Is(err, errSentinel) || !errors.Is(err, definite) || err.Error() != "p: "+definite.Error() {
		t.Errorf("definite error wrapped as %v", err)
	}
	if err := Wrap(ctx, "p: ", errSentinel, &pgconn.PgError{Code: "57P01"}); !errors.Is(err, errSentinel) {
		t.Errorf("admin_shutdown wrapped as %v, want the sentinel", err)
	}
	if err := Wrap(ctx, "p: ", errSentinel, fmt.Errorf("batch: %w: %w", errSentinel, definite)); !errors.Is(err, errSentinel) {
		t.Errorf("an error already carrying the sentinel wrapped as %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err := Wrap(cancelled, "p: ", errSentinel, &pgconn.PgError{Code: "57014"})
	if !errors.Is(err, errSentinel) || !errors.Is(err, context.Canceled) {
		t.Errorf("query cancelled by ctx wrapped as %v, want the sentinel and context.Canceled", err)
	}
	if err := Wrap(cancelled, "p: ", errSentinel, definite); !errors.Is(err, errSentinel) {
		t.Errorf("error under a done ctx wrapped as %v, want the sentinel", err)
	}
}
