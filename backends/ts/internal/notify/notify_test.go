package notify

import (
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNotifyWakesWaitersOfTheKeyOnly(t *testing.T) {
	var h Hub
	a1, rela1 := h.Watch("a")
	a2, rela2 := h.Watch("a")
	b, relb := h.Watch("b")
	defer rela1()
	defer rela2()
	defer relb()
	h.Notify("a")
	if !closed(a1) || !closed(a2) {
		t.Fatal("Notify(a) did not wake both waiters of a")
	}
	if closed(b) {
		t.Fatal("Notify(a) woke a waiter of b")
	}
	a3, rela3 := h.Watch("a")
	defer rela3()
	if closed(a3) {
		t.Fatal("a Watch after Notify is already closed")
	}
	h.NotifyAll()
	if !closed(b) || !closed(a3) {
		t.Fatal("NotifyAll did not wake everyone")
	}
}

func TestReleaseFreesEntries(t *testing.T) {
	var h Hub
	_, r1 := h.Watch("a")
	_, r2 := h.Watch("a")
	r1()
	r1() // idempotent
	if h.Len() != 1 {
		t.Fatalf("after one of two releases Len = %d, want 1", h.Len())
	}
	r2()
	if h.Len() != 0 {
		t.Fatalf("after all releases Len = %d, want 0", h.Len())
	}
	// A release after the key was notified must not remove a newer entry.
	_, r3 := h.Watch("b")
	h.Notify("b")
	ch, r4 := h.Watch("b")
	r3()
	h.Notify("b")
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("stale release removed the newer waiter's entry")
	}
	r4()
}
