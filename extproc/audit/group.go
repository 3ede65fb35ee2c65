package audit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// commitFloor bounds one batch's commit when the leader's own context
// allows less: a leader whose client went away must not fail the records
// of the others in its batch.
const commitFloor = 10 * time.Second

// pending is an Append waiting for its batch.
type pending struct {
	rec  Record
	done chan error
}

// group commits concurrent Appends together (group commit), for FileLog
// and SQLLog. The first Append of an idle log leads: in the background it
// commits every batch queued until the queue is empty, while each Append
// waits for its batch's result or for its own deadline — so a slow disk or
// a hanging database never holds a request past that deadline (the record
// may still be written then).
type group struct {
	// commit writes one batch durably, chained in order, or nothing.
	commit func(ctx context.Context, batch []*pending) error

	mu       sync.Mutex
	idle     *sync.Cond // signalled when a flush ends
	queue    []*pending
	flushing bool
	closed   bool // no more appends
}

func newGroup(commit func(ctx context.Context, batch []*pending) error) *group {
	g := &group{commit: commit}
	g.idle = sync.NewCond(&g.mu)
	return g
}

// append queues r (its Time set) and waits for its batch.
func (g *group) append(ctx context.Context, r Record) error {
	p := &pending{rec: canonical(r), done: make(chan error, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.queue = append(g.queue, p)
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		go g.flush(ctx)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: append: %w", ctx.Err())
	}
}

// flush commits queued batches until the queue is empty. The leader's
// context bounds each commit, with commitFloor as its floor.
func (g *group) flush(ctx context.Context) {
	for {
		g.mu.Lock()
		batch := g.queue
		g.queue = nil
		if len(batch) == 0 {
			g.flushing = false
			g.idle.Broadcast()
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitFloor)
		err := g.commit(cctx, batch)
		cancel()
		for _, p := range batch {
			p.done <- err
		}
	}
}

// stop refuses further appends: the log cannot append safely any more.
func (g *group) stop() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// close refuses further appends and waits for a running flush.
func (g *group) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for g.flushing {
		g.idle.Wait()
	}
}
