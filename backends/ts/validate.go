package ts

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// ValidateNamespace checks a namespace name: 1..MaxNamespaceBytes of valid
// UTF-8 without control characters. Drivers encode it safely into their own
// object names.
func ValidateNamespace(ns string) error {
	if err := checkText(ns, MaxNamespaceBytes); err != nil {
		return fmt.Errorf("%w: namespace: %s", ErrInvalidArgument, err)
	}
	return nil
}

// ValidateSeries checks a series name: 1..MaxSeriesBytes of ASCII letters,
// digits and the characters . _ : / @ -.
func ValidateSeries(s string) error {
	if s == "" {
		return fmt.Errorf("%w: series is required", ErrInvalidArgument)
	}
	if len(s) > MaxSeriesBytes {
		return fmt.Errorf("%w: series is %d bytes long, the limit is %d", ErrInvalidArgument, len(s), MaxSeriesBytes)
	}
	for i := 0; i < len(s); i++ {
		if !seriesChar(s[i]) {
			return fmt.Errorf("%w: series %q: character %q at byte %d is not allowed (letters, digits and . _ : / @ -)",
				ErrInvalidArgument, s, s[i], i)
		}
	}
	return nil
}

func seriesChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '.', '_', ':', '/', '@', '-':
		return true
	}
	return false
}

// ValidateEvents checks a batch for Append: its size and every event's
// series, time, id, data and tags.
func ValidateEvents(events []Event) error {
	if len(events) > MaxBatch {
		return fmt.Errorf("%w: %d events in one append, the limit is %d", ErrInvalidArgument, len(events), MaxBatch)
	}
	for i := range events {
		if err := validateEvent(&events[i]); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	return nil
}

func validateEvent(e *Event) error {
	if err := ValidateSeries(e.Series); err != nil {
		return err
	}
	if err := checkEventTime(e.Time); err != nil {
		return err
	}
	if e.ID != "" {
		if err := checkText(e.ID, MaxIDBytes); err != nil {
			return fmt.Errorf("%w: id: %s", ErrInvalidArgument, err)
		}
	}
	if len(e.Data) > MaxDataBytes {
		return fmt.Errorf("%w: data is %d bytes, the limit is %d", ErrTooLarge, len(e.Data), MaxDataBytes)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return fmt.Errorf("%w: data is not valid JSON", ErrInvalidArgument)
	}
	if len(e.Tags) > MaxTags {
		return fmt.Errorf("%w: %d tags, the limit is %d", ErrInvalidArgument, len(e.Tags), MaxTags)
	}
	for k, v := range e.Tags {
		if err := checkText(k, MaxTagKeyBytes); err != nil {
			return fmt.Errorf("%w: tag key: %s", ErrInvalidArgument, err)
		}
		if v != "" {
			if err := checkText(v, MaxTagValueBytes); err != nil {
				return fmt.Errorf("%w: tag %q: %s", ErrInvalidArgument, k, err)
			}
		}
	}
	return nil
}

// minTime and maxTime bound event times: representable in int64 unix
// nanoseconds, with both extremes left free for drivers to use as open
// bounds.
var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64-1)
)

func checkEventTime(t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%w: time is required", ErrInvalidArgument)
	}
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("%w: time %s is outside the years 1678..2262", ErrInvalidArgument, t.Format(time.RFC3339Nano))
	}
	return nil
}

// checkBound checks a query bound: zero (open) or a valid event time.
func checkBound(name string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("%w: %s %s is outside the years 1678..2262", ErrInvalidArgument, name, t.Format(time.RFC3339Nano))
	}
	return nil
}

// checkText accepts 1..limit bytes of valid UTF-8 without control
// characters; it returns a message, not an error, for the caller to wrap.
func checkText(s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > limit:
		return fmt.Errorf("%d bytes long, the limit is %d", len(s), limit)
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}

// Validate checks q and reports ErrInvalidArgument for a bad series, bounds
// outside the representable range, End before Start, a limit out of range or
// an overlong cursor. Whether the cursor is one of the driver's is checked
// by the driver.
func (q QueryArgs) Validate() error {
	if err := ValidateSeries(q.Series); err != nil {
		return err
	}
	if err := checkBound("start", q.Start); err != nil {
		return err
	}
	if err := checkBound("end", q.End); err != nil {
		return err
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return fmt.Errorf("%w: end %s is before start %s", ErrInvalidArgument,
			q.End.Format(time.RFC3339Nano), q.Start.Format(time.RFC3339Nano))
	}
	if err := checkLimit(q.Limit); err != nil {
		return err
	}
	return checkCursorSize(q.Cursor)
}

// Validate checks t like QueryArgs.Validate, and that Wait is within
// 0..MaxWait.
func (t TailArgs) Validate() error {
	if err := ValidateSeries(t.Series); err != nil {
		return err
	}
	if err := checkLimit(t.Limit); err != nil {
		return err
	}
	if t.Wait < 0 || t.Wait > MaxWait {
		return fmt.Errorf("%w: wait %v is outside 0..%v", ErrInvalidArgument, t.Wait, MaxWait)
	}
	return checkCursorSize(t.After)
}

func checkLimit(n int) error {
	if n < 0 || n > MaxLimit {
		return fmt.Errorf("%w: limit %d is outside 1..%d", ErrInvalidArgument, n, MaxLimit)
	}
	return nil
}

func checkCursorSize(c string) error {
	if len(c) > MaxCursorBytes {
		return fmt.Errorf("%w: %d bytes long", ErrInvalidCursor, len(c))
	}
	return nil
}

// PageLimit returns the page size a limit of n asks for (n validated).
func PageLimit(n int) int {
	if n == 0 {
		return DefaultLimit
	}
	return n
}

// Validate checks that no duration is negative and Partitions is not.
func (o NamespaceOptions) Validate() error {
	switch {
	case o.Retention < 0:
		return fmt.Errorf("%w: negative retention %v", ErrInvalidArgument, o.Retention)
	case o.DuplicateWindow < 0:
		return fmt.Errorf("%w: negative duplicate window %v", ErrInvalidArgument, o.DuplicateWindow)
	case o.TimeWindow < 0:
		return fmt.Errorf("%w: negative time window %v", ErrInvalidArgument, o.TimeWindow)
	case o.Partitions < 0:
		return fmt.Errorf("%w: negative partitions %d", ErrInvalidArgument, o.Partitions)
	}
	return nil
}

// CheckTimeWindow returns ErrTimeOutOfWindow for the first event whose time
// lies further than window from now; a window <= 0 accepts any time.
func CheckTimeWindow(events []Event, now time.Time, window time.Duration) error {
	if window <= 0 {
		return nil
	}
	for i, e := range events {
		if d := e.Time.Sub(now); d > window || d < -window {
			return fmt.Errorf("event %d: %w: time %s is %v from now, the window is ±%v", i, ErrTimeOutOfWindow,
				e.Time.UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), window)
		}
	}
	return nil
}

// DataOrNull returns d, or the JSON null for empty data.
func DataOrNull(d json.RawMessage) json.RawMessage {
	if len(d) == 0 {
		return json.RawMessage("null")
	}
	return d
}
