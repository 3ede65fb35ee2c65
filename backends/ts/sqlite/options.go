package sqlite

import (
	"time"

	"github.com/prism-gw/prism/backends/internal/sqlitedb"
)

// Options tune a store. The zero value of each field selects its default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "full" (the default: an
	// acknowledged append survives an OS crash or power loss), "extra",
	// "normal" (in WAL mode a crash of the OS may lose the last
	// acknowledged appends, never corrupt the file) or "off".
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another
	// process on the same file before failing with ts.ErrUnavailable.
	// Default 5s.
	BusyTimeout time.Duration
	// Readers is the size of the read connection pool. Default
	// max(4, GOMAXPROCS).
	Readers int
	// PollInterval bounds how late a waiting tail notices an append made
	// by another process on the same file; appends through this store wake
	// tails at once. Default 1s.
	PollInterval time.Duration
	// SweepInterval is how often events past their namespace's retention
	// are deleted. Default 1m; negative disables the sweeper.
	SweepInterval time.Duration
}

// common returns the options every SQLite driver shares.
func (o Options) common() sqlitedb.Options {
	return sqlitedb.Options{Synchronous: o.Synchronous, BusyTimeout: o.BusyTimeout, Readers: o.Readers}
}

func (o Options) withDefaults() Options {
	c := o.common().WithDefaults()
	o.Synchronous, o.BusyTimeout, o.Readers = c.Synchronous, c.BusyTimeout, c.Readers
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Minute
	}
	return o
}

func (o Options) validate(path string) error {
	return o.common().Validate("sqlite ts", path)
}

// ParseDSN splits a DSN of the form
// "path[?synchronous=normal&busy_timeout=5s&readers=8&poll_interval=1s&sweep_interval=1m]"
// into the file path and options. Durations use Go syntax. Unknown
// parameters are rejected so that a typo does not silently weaken
// durability.
func ParseDSN(dsn string) (string, Options, error) {
	var o Options
	path, c, err := sqlitedb.ParseDSN("sqlite ts", dsn, "synchronous, busy_timeout, readers, poll_interval, sweep_interval", func(name, v string) (bool, error) {
		var err error
		switch name {
		case "poll_interval":
			o.PollInterval, err = time.ParseDuration(v)
		case "sweep_interval":
			o.SweepInterval, err = time.ParseDuration(v)
		default:
			return false, nil
		}
		return true, err
	})
	o.Synchronous, o.BusyTimeout, o.Readers = c.Synchronous, c.BusyTimeout, c.Readers
	return path, o, err
}
