package kafka

import "time"

// dedup remembers the event ids of one partition for the namespace's
// duplicate window. See the package doc for how it is filled.
type dedup struct {
	seeded bool
	next   int64 // the next offset to index
	ids    map[string]time.Time
	fifo   []dedupEntry // in append order, for expiry
	head   int          // fifo[:head] are gone
	cap    int
}

type dedupEntry struct {
	key string
	at  time.Time
}

// dedupKey is the identity of an event for de-duplication.
func dedupKey(series, id string) string { return series + "\x00" + id }

func (d *dedup) has(key string) bool {
	_, ok := d.ids[key]
	return ok
}

// add remembers key as appended at at.
func (d *dedup) add(key string, at time.Time) {
	if d.ids == nil {
		d.ids = make(map[string]time.Time)
	}
	if _, ok := d.ids[key]; ok {
		return
	}
	d.ids[key] = at
	d.fifo = append(d.fifo, dedupEntry{key, at})
	for len(d.ids) > d.cap {
		d.pop()
	}
}

// expire forgets ids appended before oldest.
func (d *dedup) expire(oldest time.Time) {
	for d.head < len(d.fifo) && d.fifo[d.head].at.Before(oldest) {
		d.pop()
	}
}

func (d *dedup) pop() {
	e := d.fifo[d.head]
	d.fifo[d.head] = dedupEntry{}
	d.head++
	if d.ids[e.key] == e.at {
		delete(d.ids, e.key)
	}
	if d.head > 1024 && d.head*2 > len(d.fifo) {
		d.fifo = append(d.fifo[:0], d.fifo[d.head:]...)
		d.head = 0
	}
}
