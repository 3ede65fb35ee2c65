package sqlite

import (
	"time"

	"github.com/prism-gw/prism/backends/internal/sqlitedb"
)

// Options tune a store. The zero value of each field selects its default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "full" (the default: an
	// acknowledged write survives an OS crash or power loss), "extra",
	// "normal" (in WAL mode a crash of the OS may lose the last
	// acknowledged writes, never corrupt the file) or "off".
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another
	// process on the same file before failing with kv.ErrUnavailable.
	// Default 5s.
	BusyTimeout time.Duration
	// SweepInterval is how often expired keys are physically deleted.
	// Default 1m; negative disables the sweeper.
	SweepInterval time.Duration
	// Readers is the size of the read connection pool. Default
	// max(4, GOMAXPROCS).
	Readers int
}

// common returns the options every SQLite driver shares.
func (o Options) common() sqlitedb.Options {
	return sqlitedb.Options{Synchronous: o.Synchronous, BusyTimeout: o.BusyTimeout, Readers: o.Readers}
}

func (o Options) withDefaults() Options {
	c := o.common().WithDefaults()
	o.Synchronous, o.BusyTimeout, o.Readers = c.Synchronous, c.BusyTimeout, c.Readers
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Minute
	}
	return o
}

func (o Options) validate(path string) error {
	return o.common().Validate("sqlite kv", path)
}

// ParseDSN splits a DSN of the form "path[?synchronous=normal&busy_timeout=5s&sweep_interval=1m&readers=8]"
// into the file path and options. Durations use Go syntax. Unknown
// parameters are rejected so that a typo does not silently weaken
// durability.
func ParseDSN(dsn string) (string, Options, error) {
	var o Options
	path, c, err := sqlitedb.ParseDSN("sqlite kv", dsn, "synchronous, busy_timeout, sweep_interval, readers", func(name, v string) (bool, error) {
		var err error
		switch name {
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
