package notify

import (
	"context"
	"time"
)

// WaitFor runs read until it reports events, fails, wait has passed or ctx
// ends (returning ctx.Err()). Between reads it blocks until key is
// notified or fallback() has passed, whichever is first: fallback bounds
// how late a notification that cannot reach this hub (an append by another
// process without a shared channel, a listener being down) is noticed. read
// always runs at least once.
func (h *Hub) WaitFor(ctx context.Context, key string, wait time.Duration, fallback func() time.Duration, read func() (bool, error)) error {
	deadline := time.Now().Add(wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Watch before reading: an append that commits after the read
		// finds the channel and closes it.
		woken, release := h.Watch(key)
		found, err := read()
		if err != nil || found {
			release()
			return err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			release()
			return nil
		}
		d := min(remaining, fallback())
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
			release()
			return ctx.Err()
		}
		release()
	}
}
