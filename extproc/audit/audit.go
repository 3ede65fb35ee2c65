// Package audit keeps an append-only, hash-chained log of PII accesses.
//
// Every record carries the SHA-256 of its predecessor (prev) and its own hash
// over its canonical JSON form, prev included, so altering, deleting,
// inserting or reordering any record breaks the chain at that point, and
// Verify reports the first broken link. A log also keeps its head (the last
// sequence number and hash) beside it, so records cut off the end are found
// too. An attacker who can rewrite the whole log and its head can forge a
// consistent chain; export Head to somewhere they cannot write to close that.
//
// Records name fields, never their values.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one audited access.
type Record struct {
	// Seq numbers records from 1 without gaps; set by Append.
	Seq uint64 `json:"seq"`
	// Time is when the access happened (UTC); Append sets it when zero.
	Time time.Time `json:"time"`
	// Subject is the caller's identity, empty when it had none.
	Subject string `json:"subject"`
	// Namespace is the namespace accessed.
	Namespace string `json:"namespace"`
	// Key is the key, series or node accessed; empty for scans and queries.
	Key string `json:"key"`
	// Operation is the data API operation (get, put, scan, ...).
	Operation string `json:"operation"`
	// Fields are the paths of the PII fields accessed: names, never values.
	Fields []string `json:"fields"`
	// Decision is what the policy decided, e.g. "deny" or
	// "email=mask,ssn=redact".
	Decision string `json:"decision"`
	// RequestID is the request's x-request-id.
	RequestID string `json:"request_id"`
	// Prev is the hash of the previous record, empty for the first; set by
	// Append.
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of the record's canonical JSON without this
	// field; set by Append.
	Hash string `json:"hash"`
}

// Log is an append-only, tamper-evident audit log.
type Log interface {
	// Append writes r durably and chains it to the previous record. When it
	// returns nil the record is on stable storage; on an error the caller
	// must fail the access it audits. r's Seq, Prev and Hash are ignored.
	Append(ctx context.Context, r Record) error
	// Verify checks the whole chain. It returns the number of records that
	// verified before the first broken link, and a *BrokenError naming that
	// link, or nil when the chain is intact.
	Verify(ctx context.Context) (n int, err error)
}

// Errors of a Log.
var (
	// ErrBroken is what every *BrokenError matches with errors.Is.
	ErrBroken = errors.New("audit: chain broken")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log closed")
)

// BrokenError locates the first broken link of a chain.
type BrokenError struct {
	// Line is the 1-based line (record position) where the chain breaks.
	Line int
	// Row is the database row id of that record in a SQLLog (0 in a file).
	Row int64
	// Seq is the sequence number the record there should have.
	Seq uint64
	// Reason says what is wrong.
	Reason string
}

// Error describes the break.
func (e *BrokenError) Error() string {
	if e.Row > 0 {
		return fmt.Sprintf("audit: chain broken at row id %d (record %d): %s", e.Row, e.Seq, e.Reason)
	}
	return fmt.Sprintf("audit: chain broken at line %d (record %d): %s", e.Line, e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBroken) true.
func (e *BrokenError) Unwrap() error { return ErrBroken }

// body is a record without its hash, in the field order of the canonical
// form: the hash is computed over json.Marshal of it.
type body struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Subject   string    `json:"subject"`
	Namespace string    `json:"namespace"`
	Key       string    `json:"key"`
	Operation string    `json:"operation"`
	Fields    []string  `json:"fields"`
	Decision  string    `json:"decision"`
	RequestID string    `json:"request_id"`
	Prev      string    `json:"prev"`
}

// canonical normalizes r so that its JSON form survives a decode and
// encode unchanged: UTC time without monotonic reading, valid UTF-8, and
// fields as an array even when empty.
func canonical(r Record) Record {
	r.Time = r.Time.UTC().Round(0)
	valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	r.Subject, r.Namespace, r.Key = valid(r.Subject), valid(r.Namespace), valid(r.Key)
	r.Operation, r.Decision, r.RequestID = valid(r.Operation), valid(r.Decision), valid(r.RequestID)
	fields := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		fields[i] = valid(f)
	}
	r.Fields = fields
	return r
}

// encode returns the record's line (canonical JSON with the hash as last
// member, no newline) and its hash. r must be canonical.
func encode(r Record) (line []byte, hash string) {
	b, err := json.Marshal(body{r.Seq, r.Time, r.Subject, r.Namespace, r.Key, r.Operation, r.Fields, r.Decision, r.RequestID, r.Prev})
	if err != nil {
		panic("audit: marshal record: " + err.Error()) // strings, a slice and a UTC time always marshal
	}
	sum := sha256.Sum256(b)
	hash = hex.EncodeToString(sum[:])
	line = append(b[:len(b)-1], `,"hash":"`...)
	line = append(line, hash...)
	return append(line, `"}`...), hash
}

// decode parses a line and checks that it is canonical and that its hash is
// right. The reason is empty when the line is a good record.
func decode(line []byte) (Record, string) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, "not a valid record: " + err.Error()
	}
	if r.Seq == 0 {
		return r, "not a valid record: no seq"
	}
	if r.Fields == nil {
		return r, "not a valid record: fields is not an array"
	}
	want, hash := encode(r)
	if hash != r.Hash {
		return r, "hash does not match the record: it was altered"
	}
	if string(want) != string(line) {
		return r, "record is not in canonical form: it was altered"
	}
	return r, ""
}
