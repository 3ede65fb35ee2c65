package ts

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateEvents(t *testing.T) {
	now := time.Now()
	good := Event{Series: "sensor-7.a:b/c@d_e", Time: now, ID: "id-1", Data: json.RawMessage(`{"a":1}`), Tags: map[string]string{"k": "v", "empty": ""}}
	if err := ValidateEvents([]Event{good, {Series: "s", Time: now}}); err != nil {
		t.Fatalf("ValidateEvents(good) = %v", err)
	}
	for name, tc := range map[string]struct {
		e    Event
		want error
	}{
		"series with space":   {Event{Series: "a b", Time: now}, ErrInvalidArgument},
		"series with star":    {Event{Series: "a*", Time: now}, ErrInvalidArgument},
		"series too long":     {Event{Series: strings.Repeat("s", MaxSeriesBytes+1), Time: now}, ErrInvalidArgument},
		"no series":           {Event{Time: now}, ErrInvalidArgument},
		"no time":             {Event{Series: "s"}, ErrInvalidArgument},
		"time out of range":   {Event{Series: "s", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, ErrInvalidArgument},
		"bad JSON":            {Event{Series: "s", Time: now, Data: json.RawMessage(`{`)}, ErrInvalidArgument},
		"data too large":      {Event{Series: "s", Time: now, Data: make(json.RawMessage, MaxDataBytes+1)}, ErrTooLarge},
		"id with control":     {Event{Series: "s", Time: now, ID: "a\x00"}, ErrInvalidArgument},
		"id not UTF-8":        {Event{Series: "s", Time: now, ID: "\xff"}, ErrInvalidArgument},
		"empty tag key":       {Event{Series: "s", Time: now, Tags: map[string]string{"": "v"}}, ErrInvalidArgument},
		"tag value too large": {Event{Series: "s", Time: now, Tags: map[string]string{"k": strings.Repeat("v", MaxTagValueBytes+1)}}, ErrInvalidArgument},
	} {
		err := ValidateEvents([]Event{good, tc.e})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: ValidateEvents = %v, want %v", name, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "event 1:") {
			t.Errorf("%s: error %q does not name the event's index", name, err)
		}
	}
	if err := ValidateEvents(make([]Event, MaxBatch+1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a batch over MaxBatch: %v", err)
	}
}

func TestValidateArgs(t *testing.T) {
	now := time.Now()
	for name, q := range map[string]QueryArgs{
		"no series":        {},
		"end before start": {Series: "s", Start: now, End: now.Add(-1)},
		"limit":            {Series: "s", Limit: MaxLimit + 1},
		"cursor too long":  {Series: "s", Cursor: strings.Repeat("A", MaxCursorBytes+1)},
	} {
		if err := q.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("QueryArgs %s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if err := (QueryArgs{Series: "s", Start: now, End: now}).Validate(); err != nil {
		t.Errorf("an empty range is valid: %v", err)
	}
	for name, a := range map[string]TailArgs{
		"wait over max":  {Series: "s", Wait: MaxWait + 1},
		"negative wait":  {Series: "s", Wait: -1},
		"negative limit": {Series: "s", Limit: -1},
	} {
		if err := a.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("TailArgs %s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if !errors.Is(ErrInvalidCursor, ErrInvalidArgument) || !errors.Is(ErrTimeOutOfWindow, ErrInvalidArgument) {
		t.Error("ErrInvalidCursor and ErrTimeOutOfWindow must match ErrInvalidArgument")
	}
}

func TestCheckTimeWindow(t *testing.T) {
	now := time.Now()
	evs := []Event{{Time: now.Add(-time.Minute)}, {Time: now.Add(time.Minute)}}
	if err := CheckTimeWindow(evs, now, time.Minute); err != nil {
		t.Errorf("events at the window's edges: %v", err)
	}
	if err := CheckTimeWindow(evs, now, time.Minute-1); !errors.Is(err, ErrTimeOutOfWindow) {
		t.Errorf("events past the window: %v", err)
	}
	if err := CheckTimeWindow(evs, now, 0); err != nil {
		t.Errorf("no window: %v", err)
	}
}
