package sqlite

import (
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Options tune a store. The zero value of each field selects its default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "full" (the default: an
	// acknowledged write survives an OS crash or power loss), "extra",
	// "normal" (in WAL mode a crash of the OS may lose the last
	// acknowledged writes, never corrupt the file) or "off".
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another
	// process on the same file before failing with graph.ErrUnavailable.
	// Default 5s.
	BusyTimeout time.Duration
	// Readers is the size of the read connection pool. Default
	// max(4, GOMAXPROCS).
	Readers int
}

func (o Options) withDefaults() Options {
	if o.Synchronous == "" {
		o.Synchronous = "full"
	}
	o.Synchronous = strings.ToLower(o.Synchronous)
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.Readers <= 0 {
		o.Readers = max(4, runtime.GOMAXPROCS(0))
	}
	return o
}

func (o Options) validate(path string) error {
	switch o.Synchronous {
	case "off", "normal", "full", "extra":
	default:
		return fmt.Errorf("sqlite graph: synchronous %q: want off, normal, full or extra", o.Synchronous)
	}
	switch {
	case path == "":
		return fmt.Errorf("sqlite graph: empty database path")
	case path == ":memory:" || strings.Contains(path, "mode=memory"):
		// The writer and the readers are separate connections; each would
		// get its own empty in-memory database.
		return fmt.Errorf("sqlite graph: in-memory databases are not supported; use a file path")
	case strings.ContainsRune(path, '?'):
		return fmt.Errorf("sqlite graph: database path %q contains '?'", path)
	}
	return nil
}

// ParseDSN splits a DSN of the form "path[?synchronous=normal&busy_timeout=5s&readers=8]"
// into the file path and options. Durations use Go syntax. Unknown
// parameters are rejected so that a typo does not silently weaken
// durability.
func ParseDSN(dsn string) (string, Options, error) {
	path, query, _ := strings.Cut(dsn, "?")
	var o Options
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", o, fmt.Errorf("sqlite graph: DSN parameters: %w", err)
	}
	for name, values := range params {
		v := values[len(values)-1]
		switch name {
		case "synchronous":
			o.Synchronous = v
		case "busy_timeout":
			o.BusyTimeout, err = time.ParseDuration(v)
		case "readers":
			o.Readers, err = strconv.Atoi(v)
		default:
			return "", o, fmt.Errorf("sqlite graph: unknown DSN parameter %q (have synchronous, busy_timeout, readers)", name)
		}
		if err != nil {
			return "", o, fmt.Errorf("sqlite graph: DSN parameter %s: %w", name, err)
		}
	}
	if path == "" {
		return "", o, fmt.Errorf("sqlite graph: DSN %q has no database path", dsn)
	}
	return path, o, nil
}

// writerDSN configures the writer connection: WAL so readers never block
// it, IMMEDIATE transactions so a load never has to upgrade a read lock,
// foreign keys so that deleting a node deletes its edges and no edge can
// point to a missing node, and the requested durability.
func writerDSN(path string, o Options) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "1")
	// Without a limit the WAL file keeps the size of its largest burst
	// after each checkpoint.
	q.Set("_pragma", "journal_size_limit(67108864)")
	q.Set("_synchronous", o.Synchronous)
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

// readerDSN configures the read pool; query_only guards against a write
// slipping onto a reader connection.
func readerDSN(path string, o Options) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10))
	q.Set("_query_only", "1")
	return path + "?" + q.Encode()
}
