package kafka

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options tune a store. The zero value of each field selects its default.
type Options struct {
	// Brokers are the seed brokers, host:port. Default 127.0.0.1:9092.
	Brokers []string
	// TopicPrefix starts every topic name; the namespace, escaped,
	// follows. Default "prism.ts.".
	TopicPrefix string
	// Partitions is a new topic's partition count when the namespace
	// gives none. Default 3.
	Partitions int
	// ReplicationFactor of new topics; -1 (the default) uses the
	// brokers' default.
	ReplicationFactor int
	// Timeout bounds dialing, each request and each produce, so that an
	// unreachable cluster fails fast as ts.ErrUnavailable. Default 5s.
	Timeout time.Duration
	// PollInterval bounds how late a waiting tail notices an append that
	// its notification consumer missed. Default 5s.
	PollInterval time.Duration
	// DedupEntries caps the event ids remembered per partition for
	// de-duplication; past it the oldest are forgotten before their
	// window ends. Default 1,000,000.
	DedupEntries int
}

func (o Options) withDefaults() Options {
	if len(o.Brokers) == 0 {
		o.Brokers = []string{"127.0.0.1:9092"}
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "prism.ts."
	}
	if o.Partitions <= 0 {
		o.Partitions = 3
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = -1
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.DedupEntries <= 0 {
		o.DedupEntries = 1_000_000
	}
	return o
}

func (o Options) validate() error {
	if strings.Trim(o.TopicPrefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("kafka ts: topic prefix %q holds characters topic names cannot", o.TopicPrefix)
	}
	return nil
}

// ParseDSN parses "kafka://host:9092[,host2:9092][?topic_prefix=&partitions=3&replication_factor=3&timeout=5s&poll_interval=5s&dedup_entries=1000000]".
func ParseDSN(dsn string) (Options, error) {
	rest, ok := strings.CutPrefix(dsn, "kafka://")
	if !ok {
		return Options{}, fmt.Errorf("kafka ts: DSN %q does not start with kafka://", dsn)
	}
	hosts, query, _ := strings.Cut(rest, "?")
	var o Options
	for _, h := range strings.Split(hosts, ",") {
		if h != "" {
			o.Brokers = append(o.Brokers, h)
		}
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return o, fmt.Errorf("kafka ts: DSN parameters: %w", err)
	}
	for name, values := range params {
		v := values[len(values)-1]
		switch name {
		case "topic_prefix":
			o.TopicPrefix = v
		case "partitions":
			o.Partitions, err = strconv.Atoi(v)
		case "replication_factor":
			o.ReplicationFactor, err = strconv.Atoi(v)
		case "timeout":
			o.Timeout, err = time.ParseDuration(v)
		case "poll_interval":
			o.PollInterval, err = time.ParseDuration(v)
		case "dedup_entries":
			o.DedupEntries, err = strconv.Atoi(v)
		default:
			return o, fmt.Errorf("kafka ts: unknown DSN parameter %q (have topic_prefix, partitions, replication_factor, timeout, poll_interval, dedup_entries)", name)
		}
		if err != nil {
			return o, fmt.Errorf("kafka ts: DSN parameter %s: %w", name, err)
		}
	}
	return o, nil
}
