package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// headSize is the fixed size of the head file: it is overwritten in place.
const headSize = 128

// FileLog is a Log kept in a file of JSON lines, one record per line, with
// its head in PATH.head. Concurrent Appends are committed together: one
// write and one fsync per batch (group commit). A failed write is cut off
// the file again, so the chain on disk never has a hole. Only one process
// may have a log open (an exclusive lock on the file).
type FileLog struct {
	path string
	f    *os.File
	head *os.File
	now  func() time.Time

	g *group

	mu    sync.Mutex
	shut  bool   // Close was called
	seq   uint64 // last durable record
	last  string // its hash
	size  int64  // durable size of the file
	syncs int    // fsyncs done, for tests of batching
}

// Head is the position of the last record of a log.
type Head struct {
	// Seq is the last record's sequence number (0 for an empty log).
	Seq uint64 `json:"seq"`
	// Hash is the last record's hash.
	Hash string `json:"hash"`
}

// OpenFile opens or creates the log at path (and path.head). A last line cut
// short by a crash was never acknowledged and is removed. The last record
// must be intact and agree with the head; the rest of the chain is checked
// by Verify, not here.
func OpenFile(path string) (*FileLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	l := &FileLog{path: path, f: f, now: time.Now}
	l.g = newGroup(l.commitBatch)
	if err := l.open(); err != nil {
		f.Close()
		if l.head != nil {
			l.head.Close()
		}
		return nil, err
	}
	return l, nil
}

// open locks the file, repairs a torn tail and loads the last record.
func (l *FileLog) open() error {
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("audit: %s is in use by another process: %w", l.path, err)
	}
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	last, end, err := lastLine(l.f, fi.Size())
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", l.path, err)
	}
	if end != fi.Size() {
		// The tail has no newline: an append that crashed before its fsync
		// returned, so nobody was told it succeeded.
		if err := l.f.Truncate(end); err != nil {
			return fmt.Errorf("audit: cut torn tail: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	l.size = end
	if last != nil {
		r, reason := decode(last)
		if reason != "" {
			return fmt.Errorf("audit: the last record of %s is damaged (%s); run verify", l.path, reason)
		}
		l.seq, l.last = r.Seq, r.Hash
	}
	l.head, err = os.OpenFile(l.path+".head", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open head: %w", err)
	}
	h, err := readHead(l.head)
	if err != nil {
		return fmt.Errorf("audit: %s.head: %w", l.path, err)
	}
	switch {
	case h.Seq > l.seq:
		return fmt.Errorf("%w: %s ends at record %d but its head is at record %d: records were removed from the end", ErrBroken, l.path, l.seq, h.Seq)
	case h.Seq == l.seq && h.Hash != l.last:
		return fmt.Errorf("%w: the last record of %s differs from its head", ErrBroken, l.path)
	}
	return l.writeHead()
}

// Append writes r durably, chained to the previous record. Appends from
// many goroutines are batched into one write and one fsync. When ctx ends
// first Append returns its error at once, but the record may still be
// written.
func (l *FileLog) Append(ctx context.Context, r Record) error {
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	return l.g.append(ctx, r)
}

// commitBatch chains a batch onto the last durable record and writes it
// with one fsync.
func (l *FileLog) commitBatch(_ context.Context, batch []*pending) error {
	l.mu.Lock()
	seq, prev, size := l.seq, l.last, l.size
	l.mu.Unlock()
	var buf []byte
	for _, p := range batch {
		seq++
		p.rec.Seq, p.rec.Prev = seq, prev
		line, hash := encode(p.rec)
		buf = append(append(buf, line...), '\n')
		prev = hash
	}
	err := l.commit(buf, size)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.seq, l.last, l.size = seq, prev, size+int64(len(buf))
		_ = l.writeHead() // a head that lags after a failed write only weakens the end check
	}
	return err
}

// commit appends buf and fsyncs. On failure it cuts the file back to size,
// so the next batch chains onto the last durable record.
func (l *FileLog) commit(buf []byte, size int64) error {
	_, err := l.f.Write(buf)
	if err == nil {
		err = l.f.Sync()
		l.mu.Lock()
		l.syncs++
		l.mu.Unlock()
	}
	if err == nil {
		return nil
	}
	if terr := l.f.Truncate(size); terr != nil {
		// The file may now hold records nobody was told about; a later
		// append would chain past them. Stop appending.
		l.g.stop()
		return fmt.Errorf("audit: append failed (%v) and could not be undone (%v): log closed", err, terr)
	}
	return fmt.Errorf("audit: append: %w", err)
}

// writeHead overwrites the head file in place. It is not synced: after a
// crash the head may lag the log, which Verify allows, but it never runs
// ahead of it because it is written after the log's fsync.
func (l *FileLog) writeHead() error {
	b, err := json.Marshal(Head{Seq: l.seq, Hash: l.last})
	if err != nil {
		return err
	}
	b = append(b, bytes.Repeat([]byte{' '}, headSize-1-len(b))...)
	b = append(b, '\n')
	_, err = l.head.WriteAt(b, 0)
	return err
}

// Head returns the last durable record's position: export it (a metric, the
// control plane) so that a rewrite of the whole log can be told too.
func (l *FileLog) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Head{Seq: l.seq, Hash: l.last}
}

// Verify checks the chain of every record acknowledged so far.
func (l *FileLog) Verify(ctx context.Context) (int, error) {
	l.mu.Lock()
	size, head := l.size, Head{Seq: l.seq, Hash: l.last}
	l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return 0, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	return verify(ctx, io.NewSectionReader(f, 0, size), head)
}

// Close waits for a running batch and closes the files; later Appends fail
// with ErrClosed.
func (l *FileLog) Close() error {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return nil
	}
	l.shut = true
	l.mu.Unlock()
	l.g.close()
	return errors.Join(l.f.Close(), l.head.Close())
}

// lastLine returns the last complete line of the file (without its
// newline; nil for none) and the offset just after it.
func lastLine(f *os.File, size int64) ([]byte, int64, error) {
	const chunk = 64 << 10
	var tail []byte // the file from off to size
	off := size
	for {
		if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
			end := off + int64(i) + 1
			line := tail[:i]
			if j := bytes.LastIndexByte(line, '\n'); j >= 0 {
				return line[j+1:], end, nil
			}
			if off == 0 {
				return line, end, nil
			}
		} else if off == 0 {
			return nil, 0, nil // no complete line
		}
		n := min(chunk, off)
		off -= n
		buf := make([]byte, n+int64(len(tail)))
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return nil, 0, err
		}
		copy(buf[n:], tail)
		tail = buf
	}
}

// readHead parses the head file; an empty one is the head of an empty log.
func readHead(f *os.File) (Head, error) {
	b := make([]byte, headSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Head{}, err
	}
	b = bytes.TrimSpace(b[:n])
	if len(b) == 0 {
		return Head{}, nil
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return Head{}, fmt.Errorf("%w: head is damaged: %v", ErrBroken, err)
	}
	return h, nil
}

// Recent returns up to limit of the newest records of a namespace, newest
// first. It reads the whole file: fine for the dev log, use a SQLLog for
// big ones.
func (l *FileLog) Recent(ctx context.Context, namespace string, limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	l.mu.Lock()
	size := l.size
	l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("audit: recent: %w", err)
	}
	defer f.Close()
	var ring []Record
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audit: recent: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit: recent: %w", err)
		}
		var r Record
		if json.Unmarshal(b, &r) != nil || r.Namespace != namespace {
			continue
		}
		ring = append(ring, r)
		if len(ring) > limit {
			ring = ring[1:]
		}
	}
	slices.Reverse(ring)
	return ring, nil
}
