// Package notify wakes waiting tails when their series may have new events.
//
// A Hub holds one channel per key (a series) that has waiters; all waiters
// of a key share it, and a notification closes it. A waiting tail costs a
// map entry and a goroutine parked in select, nothing per poll, so
// thousands of concurrent tails are cheap. Notifications may be spurious
// (the waiter re-reads and waits again); what matters is that none is lost
// between a waiter's read and its wait, which is why Watch is called
// before the read.
package notify

import "sync"

// Hub wakes waiters by key. The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	ch   chan struct{}
	refs int
}

// Watch returns a channel that is closed by the next Notify(key) or
// NotifyAll after this call, and a release function to call when the caller
// stops waiting (it frees the entry once no one waits for key).
func (h *Hub) Watch(key string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys == nil {
		h.keys = make(map[string]*entry)
	}
	e := h.keys[key]
	if e == nil {
		e = &entry{ch: make(chan struct{})}
		h.keys[key] = e
	}
	e.refs++
	released := false
	return e.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if released {
			return
		}
		released = true
		e.refs--
		if e.refs == 0 && h.keys[key] == e {
			delete(h.keys, key)
		}
	}
}

// Notify wakes everyone waiting for key.
func (h *Hub) Notify(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.keys[key]; e != nil {
		close(e.ch)
		delete(h.keys, key)
	}
}

// NotifyAll wakes every waiter, e.g. after notifications may have been
// lost (a listener reconnected).
func (h *Hub) NotifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, e := range h.keys {
		close(e.ch)
		delete(h.keys, key)
	}
}

// Waiting reports whether anyone waits for key.
func (h *Hub) Waiting(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keys[key] != nil
}

// Len returns the number of keys with waiters.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.keys)
}
