package nats

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options tune a store. The zero value of each field selects its default.
type Options struct {
	// URL lists the NATS servers, comma-separated. Default
	// nats://127.0.0.1:4222.
	URL string
	// StreamPrefix starts every stream name; the namespace, escaped,
	// follows. Default "PRISM_TS_".
	StreamPrefix string
	// SubjectPrefix starts every subject: <prefix>.<namespace>.<series>,
	// each escaped into one token. Default "prism.ts".
	SubjectPrefix string
	// Replicas is the streams' replication factor. Default 1; use 3 in a
	// cluster so that an acknowledged append survives the loss of a server.
	Replicas int
	// Timeout bounds connecting and each request to the server, so that
	// an unreachable server fails fast as ts.ErrUnavailable. Default 5s.
	Timeout time.Duration
	// PollInterval bounds how late a waiting tail notices an append when
	// its notification consumer missed it (e.g. while reconnecting).
	// Default 5s.
	PollInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.URL == "" {
		o.URL = "nats://127.0.0.1:4222"
	}
	if o.StreamPrefix == "" {
		o.StreamPrefix = "PRISM_TS_"
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "prism.ts"
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	return o
}

func (o Options) validate() error {
	if strings.ContainsAny(o.StreamPrefix, " \t\r\n.*>/\\") {
		return fmt.Errorf("nats ts: stream prefix %q contains a character stream names cannot hold", o.StreamPrefix)
	}
	for _, tok := range strings.Split(o.SubjectPrefix, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("nats ts: subject prefix %q is not a literal subject", o.SubjectPrefix)
		}
	}
	return nil
}

// ParseDSN parses "nats://host:4222[,nats://host2:4222][?stream_prefix=&subject_prefix=&replicas=3&timeout=5s&poll_interval=5s]".
// Parameters other than these are rejected; the rest of the URL (user
// info included) is passed to the NATS client.
func ParseDSN(dsn string) (Options, error) {
	servers, query, _ := strings.Cut(dsn, "?")
	o := Options{URL: servers}
	params, err := url.ParseQuery(query)
	if err != nil {
		return o, fmt.Errorf("nats ts: DSN parameters: %w", err)
	}
	for name, values := range params {
		v := values[len(values)-1]
		switch name {
		case "stream_prefix":
			o.StreamPrefix = v
		case "subject_prefix":
			o.SubjectPrefix = v
		case "replicas":
			o.Replicas, err = strconv.Atoi(v)
		case "timeout":
			o.Timeout, err = time.ParseDuration(v)
		case "poll_interval":
			o.PollInterval, err = time.ParseDuration(v)
		default:
			return o, fmt.Errorf("nats ts: unknown DSN parameter %q (have stream_prefix, subject_prefix, replicas, timeout, poll_interval)", name)
		}
		if err != nil {
			return o, fmt.Errorf("nats ts: DSN parameter %s: %w", name, err)
		}
	}
	return o, nil
}
