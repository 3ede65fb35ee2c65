package sqlitedb

import (
	"strings"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	var poll time.Duration
	extra := func(name, v string) (bool, error) {
		if name != "poll_interval" {
			return false, nil
		}
		var err error
		poll, err = time.ParseDuration(v)
		return true, err
	}
	path, o, err := ParseDSN("sqlite x", "/tmp/db?synchronous=normal&busy_timeout=2s&readers=3&poll_interval=7s", "have-list", extra)
	if err != nil || path != "/tmp/db" || o != (Options{Synchronous: "normal", BusyTimeout: 2 * time.Second, Readers: 3}) || poll != 7*time.Second {
		t.Fatalf("ParseDSN = %q, %+v, poll %v, %v", path, o, poll, err)
	}
	for dsn, want := range map[string]string{
		"/tmp/db?nope=1":             `sqlite x: unknown DSN parameter "nope" (have have-list)`,
		"/tmp/db?poll_interval=soon": "sqlite x: DSN parameter poll_interval: ",
		"/tmp/db?readers=many":       "sqlite x: DSN parameter readers: ",
		"?readers=1":                 `sqlite x: DSN "?readers=1" has no database path`,
	} {
		if _, _, err := ParseDSN("sqlite x", dsn, "have-list", extra); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseDSN(%q) error %v, want prefix %q", dsn, err, want)
		}
	}
	if _, _, err := ParseDSN("sqlite x", "/tmp/db?poll_interval=1s", "h", nil); err == nil {
		t.Error("a nil extra accepted an unknown parameter")
	}
}

func TestDefaultsAndValidate(t *testing.T) {
	o := Options{Synchronous: "NORMAL"}.WithDefaults()
	if o.Synchronous != "normal" || o.BusyTimeout != 5*time.Second || o.Readers < 4 {
		t.Errorf("WithDefaults = %+v", o)
	}
	if err := o.Validate("sqlite x", "/tmp/db"); err != nil {
		t.Error(err)
	}
	for _, path := range []string{"", ":memory:", "file:x?mode=memory", "/tmp/db?x"} {
		if err := o.Validate("sqlite x", path); err == nil || !strings.HasPrefix(err.Error(), "sqlite x: ") {
			t.Errorf("Validate(%q) = %v", path, err)
		}
	}
	if err := (Options{Synchronous: "fast"}).Validate("sqlite x", "/tmp/db"); err == nil {
		t.Error("synchronous=fast accepted")
	}
}

func TestWriterDSN(t *testing.T) {
	o := Options{Synchronous: "full", BusyTimeout: 1500 * time.Millisecond}
	got := WriterDSN("/tmp/db", o, map[string][]string{"_foreign_keys": {"1"}})
	want := "/tmp/db?_busy_timeout=1500&_foreign_keys=1&_journal_mode=WAL&_pragma=journal_size_limit%2867108864%29&_synchronous=full&_txlock=immediate"
	if got != want {
		t.Errorf("WriterDSN = %s\nwant %s", got, want)
	}
	if got := ReaderDSN("/tmp/db", o); got != "/tmp/db?_busy_timeout=1500&_query_only=1" {
		t.Errorf("ReaderDSN = %s", got)
	}
}
