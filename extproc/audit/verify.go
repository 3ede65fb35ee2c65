package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// VerifyFile checks the log at path, which a running process may be
// appending to (`prism audit verify`). It returns the number of intact
// records before the first broken link and a *BrokenError for that link.
func VerifyFile(ctx context.Context, path string) (int, error) {
	// The head first: it never runs ahead of the log, so the log read
	// afterwards holds at least the records the head names.
	hf, err := os.Open(path + ".head")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("audit: verify: %w", err)
	}
	var head Head
	if hf != nil {
		head, err = readHead(hf)
		hf.Close()
		if err != nil {
			return 0, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	n, err := verify(ctx, f, head)
	if err == nil && hf == nil && n > 0 {
		return n, &BrokenError{Line: n + 1, Seq: uint64(n) + 1, Reason: "the head file " + path + ".head is missing"}
	}
	return n, err
}

// verify checks the chain of the JSON lines r yields against head. A last
// line without a newline is an append a crash cut short before it was
// acknowledged; it is not counted and not an error (the head check still
// finds a removed record).
func verify(ctx context.Context, r io.Reader, head Head) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		prev string
		seq  uint64
		n    int
	)
	for line := 1; ; line++ {
		if line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return n, fmt.Errorf("audit: verify: %w", err)
			}
		}
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("audit: verify: %w", err)
		}
		rec, reason := decode(b[:len(b)-1])
		want := seq + 1
		switch {
		case reason != "":
			return n, &BrokenError{Line: line, Seq: want, Reason: reason}
		case rec.Seq != want:
			return n, &BrokenError{Line: line, Seq: want, Reason: fmt.Sprintf("found record %d: records were deleted, inserted or reordered", rec.Seq)}
		case rec.Prev != prev:
			return n, &BrokenError{Line: line, Seq: want, Reason: fmt.Sprintf("prev is not the hash of record %d: that record was altered, or records were deleted or reordered", seq)}
		case rec.Seq == head.Seq && rec.Hash != head.Hash:
			return n, &BrokenError{Line: line, Seq: want, Reason: "the record differs from the one the log's head names: it was replaced"}
		}
		prev, seq = rec.Hash, rec.Seq
		n++
	}
	if head.Seq > seq {
		return n, &BrokenError{Line: n + 1, Seq: seq + 1, Reason: fmt.Sprintf("the log ends at record %d but its head is at record %d: records were removed from the end", seq, head.Seq)}
	}
	return n, nil
}
