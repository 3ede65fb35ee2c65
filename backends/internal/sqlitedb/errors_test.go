package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"testing"
)

var errSentinel = errors.New("unavailable")

func TestWrapMarksOnlyTransientErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	plain := errors.New("constraint failed")
	tests := []struct {
		name  string
		ctx   context.Context
		err   error
		also  []error
		marks bool
	}{
		{"definite error", context.Background(), plain, nil, false},
		{"closed connection", context.Background(), sql.ErrConnDone, nil, true},
		{"done context", canceled, plain, nil, true},
		{"driver's own transient error", context.Background(), sql.ErrTxDone, []error{sql.ErrTxDone}, true},
		{"not the driver's transient error", context.Background(), sql.ErrTxDone, nil, false},
	}
	for _, tt := range tests {
		got := Wrap(tt.ctx, "p: ", errSentinel, tt.err, tt.also...)
		if errors.Is(got, errSentinel) != tt.marks || !errors.Is(got, tt.err) {
			t.Errorf("%s: Wrap = %v; marked %v, want %v, and the cause kept", tt.name, got, errors.Is(got, errSentinel), tt.marks)
		}
	}
	if got := Wrap(canceled, "p: ", errSentinel, plain); !errors.Is(got, context.Canceled) {
		t.Errorf("Wrap under a done context = %v, want the context error visible", got)
	}
}
