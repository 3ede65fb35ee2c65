package cache

import (
	"bytes"
	"context"
	"sync"

	"github.com/prism-gw/prism/backends/kv"
)

// flights coalesces concurrent reads of one key, like singleflight, with one
// difference that read-your-writes needs: a read joins a flight only while
// that flight has not started reading. A flight that has sent its Redis
// lookup may have read before a write that another process acknowledged
// after the flight started; a read that began after that acknowledgement
// must not take its result. Such a read waits for the next flight instead,
// which starts when the running one ends - by then the running one has
// usually filled the cache, so the next is a hit, and N concurrent misses
// still cost one backend read. At most one flight per key runs and one
// waits; every read arriving meanwhile shares the waiting one.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight // the newest flight of each key
}

// flight is one read of a key shared by the callers that joined it.
type flight struct {
	prev    *flight // running when this one was created; this one waits for it
	done    chan struct{}
	started bool // guarded by flights.mu: reading, closed to new callers
	callers int  // guarded by flights.mu
	it      kv.Item
	err     error
}

// do returns the result of a flight of key that starts reading after this
// call began, running read in a new one if needed. read runs detached from
// the caller's cancellation (other callers may share it) but within its
// deadline. shared reports whether other callers got the same result; the
// item's value is then a copy of its own.
func (fs *flights) do(ctx context.Context, key string, read func(ctx context.Context) (kv.Item, error)) (kv.Item, bool, error) {
	fs.mu.Lock()
	if fs.m == nil {
		fs.m = map[string]*flight{}
	}
	f := fs.m[key]
	if f == nil || f.started {
		f = &flight{prev: f, done: make(chan struct{})}
		fs.m[key] = f
		fctx, cancel := detach(ctx)
		go fs.run(fctx, cancel, key, f, read)
	}
	f.callers++
	fs.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return kv.Item{}, false, unavailable(ctx.Err())
	}
	fs.mu.Lock()
	shared := f.callers > 1
	fs.mu.Unlock()
	it := f.it
	if shared && f.err == nil {
		// Callers own what they get; they may decrypt in place.
		it.Value = bytes.Clone(it.Value)
	}
	return it, shared, f.err
}

func (fs *flights) run(ctx context.Context, cancel context.CancelFunc, key string, f *flight, read func(ctx context.Context) (kv.Item, error)) {
	defer cancel()
	if f.prev != nil {
		select {
		case <-f.prev.done:
		case <-ctx.Done():
		}
	}
	fs.mu.Lock()
	f.started = true
	f.prev = nil
	fs.mu.Unlock()

	f.it, f.err = read(ctx)

	fs.mu.Lock()
	if fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
	close(f.done)
}

// detach returns a context for a flight that serves other callers too: the
// first caller's cancellation must not fail them, its deadline still bounds
// the work.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(d, dl)
	}
	return context.WithCancel(d)
}
