package tssql

import (
	"fmt"

	"github.com/prism-gw/prism/backends/ts"
	"github.com/prism-gw/prism/backends/ts/internal/cursor"
)

// Both drivers append through one function that returns the seq each event
// of the batch was stored at (0 for a duplicate), so that Append and
// AppendEvents cannot drift apart; these turn that answer into theirs.

// AppendResult is Append's answer from the seqs its batch got (or the
// error that stored nothing).
func AppendResult(events []ts.Event, seqs []int64, err error) (appended, duplicates int, _ error) {
	if err != nil {
		return 0, 0, err
	}
	appended = Appended(seqs)
	return appended, len(events) - appended, nil
}

// AppendEventsResult is AppendEvents' answer from the seqs its batch got.
func AppendEventsResult(ns string, events []ts.Event, seqs []int64, err error) (stored []ts.Event, duplicates int, _ error) {
	if err != nil {
		return nil, 0, err
	}
	stored = Stored(ns, events, seqs)
	return stored, len(events) - len(stored), nil
}

// Appended counts the events stored: those with a seq.
func Appended(seqs []int64) int {
	n := 0
	for _, seq := range seqs {
		if seq > 0 {
			n++
		}
	}
	return n
}

// Stored returns the events of ns that were stored (seqs[i] > 0), in the
// order given, as a read returns them: with Seq and tail Cursor, the time in
// UTC and empty data as null.
func Stored(ns string, events []ts.Event, seqs []int64) []ts.Event {
	stored := make([]ts.Event, 0, Appended(seqs))
	var tag cursor.Tag
	series := ""
	for i, seq := range seqs {
		if seq <= 0 {
			continue
		}
		e := events[i]
		if e.Series != series || series == "" { // batches are usually one series
			tag, series = cursor.TagOf(ns, e.Series), e.Series
		}
		e.Time = e.Time.UTC()
		e.Data = ts.DataOrNull(e.Data)
		e.Seq = seq
		e.Cursor = TailCursor(tag, seq)
		stored = append(stored, e)
	}
	return stored
}

// ValidateCopy checks a batch for ts.Replica.Copy: what Append checks, and
// a position on every event. The namespace's time window is not applied:
// a copy carries an event the other store accepted, maybe long ago.
func ValidateCopy(events []ts.Event) error {
	if err := ts.ValidateEvents(events); err != nil {
		return err
	}
	for i, e := range events {
		if e.Seq <= 0 {
			return fmt.Errorf("event %d: %w: a copy needs the position (Seq > 0) the event has in its store, got %d", i, ts.ErrInvalidArgument, e.Seq)
		}
	}
	return nil
}

// ValidateFloor checks the floor given to ts.Replica.Unseal.
func ValidateFloor(floor int64) error {
	if floor < 0 {
		return fmt.Errorf("%w: negative floor %d", ts.ErrInvalidArgument, floor)
	}
	return nil
}
