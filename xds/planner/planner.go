// Package planner turns a namespace's declared needs (abstraction, access
// pattern, estimated rates and sizes, indexes) into the storage it needs on
// its backend — Kafka topic and partitions, JetStream stream limits,
// Postgres table and secondary indexes — and explains every number. It is
// pure: no I/O, so the admin API, the CLI and the tests get the same answer
// from the same input. Package provision makes the result real.
//
// # Rules
//
// Backend for "auto" (ChooseBackend): the first declared backend of the
// first driver, in this order, that can serve the abstraction:
//
//	keyvalue:   postgres > sqlite
//	timeseries: kafka > nats > postgres > sqlite   (append_heavy, write_heavy, unspecified)
//	            nats > kafka > postgres > sqlite   (read_heavy, balanced: JetStream's
//	                                                direct gets and subject filters serve
//	                                                reads of one series without a scan)
//	graph:      neptune > postgres > sqlite
//
// SQLite has one writer and lives on one disk, so it is skipped above
// SQLiteMaxWriteRPS estimated writes/s or SQLiteMaxDataGB estimated GB.
//
// Kafka partitions (Partitions): the write volume with headroom,
// estimated_write_rps × record bytes × Headroom, over PartitionBytesPerSec,
// and the record rate with headroom over PartitionRecordsPerSec, whichever
// needs more; at least MinPartitions, and a namespace that needs more than
// MaxPartitions is refused (its own cluster, not a shared one, is the answer).
// An existing topic never loses partitions (Kafka cannot remove them).
//
// JetStream stream (StreamLimits): max_bytes is the estimated data size ×
// Headroom, or, without a size, write volume × retention × Headroom, or no
// limit when neither is known; max_msg_size is the namespace's
// limits.max_value_bytes (default 1 MiB) plus room for the event envelope;
// max_age is the retention. A stream's limits are never lowered by a plan:
// lowering max_bytes would make JetStream discard stored events.
//
// Postgres (Table): the driver's shared table of the abstraction, and one
// partial expression index per declared index path, on the JSON of the
// stored value, restricted to the namespace's rows. Indexes are never
// dropped by a plan.
package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

// Options are the capacity constants of the rules. DefaultOptions documents
// the values; tests and operators of bigger clusters may change them.
type Options struct {
	// PartitionBytesPerSec is the write throughput one Kafka partition is
	// planned for (bytes/s).
	PartitionBytesPerSec float64
	// PartitionRecordsPerSec is the record rate one partition is planned for.
	PartitionRecordsPerSec float64
	// Headroom multiplies the estimates (peaks, growth, a broker down).
	Headroom float64
	// MinPartitions and MaxPartitions bound a topic's partitions.
	MinPartitions, MaxPartitions int32
	// DefaultRecordBytes is the record size when the namespace gives none.
	DefaultRecordBytes uint32
	// EnvelopeBytes is the event envelope around a value in a stream
	// message (series, time, id, tags, JSON quoting).
	EnvelopeBytes int32
	// SQLiteMaxWriteRPS and SQLiteMaxDataGB are where auto stops choosing
	// SQLite.
	SQLiteMaxWriteRPS, SQLiteMaxDataGB float64
	// TopicPrefix and StreamPrefix are the drivers' default name prefixes.
	TopicPrefix, StreamPrefix string
}

// DefaultOptions are conservative numbers for a small shared cluster: 1 MiB/s
// and 1000 records/s per partition (a single consumer keeps up with either),
// 2× headroom, 3 to 64 partitions, 1 KiB records.
func DefaultOptions() Options {
	return Options{
		PartitionBytesPerSec:   1 << 20,
		PartitionRecordsPerSec: 1000,
		Headroom:               2,
		MinPartitions:          3,
		MaxPartitions:          64,
		DefaultRecordBytes:     1024,
		EnvelopeBytes:          4096,
		SQLiteMaxWriteRPS:      1000,
		SQLiteMaxDataGB:        50,
		TopicPrefix:            "prism.ts.",
		StreamPrefix:           "PRISM_TS_",
	}
}

// FieldError is a refused declaration with the path of the field at fault
// (e.g. "namespaces[orders].estimated_write_rps").
type FieldError struct {
	Path    string
	Message string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Path + ": " + e.Message }

func fieldErr(ns, field, format string, args ...any) *FieldError {
	return &FieldError{Path: "namespace " + ns + ": " + field, Message: fmt.Sprintf(format, args...)}
}

// Storage is what a namespace needs on its backend. Exactly one of Topic,
// Stream and Table is set for drivers that provision; none for SQLite and
// Neptune, which need nothing beyond what their driver creates.
type Storage struct {
	Namespace string
	Backend   string
	Driver    string
	Topic     *Topic
	Stream    *Stream
	Table     *Table
	// Notes explain choices that create nothing (an index a driver cannot
	// build, a cache, ...).
	Notes []string
}

// Topic is a Kafka topic.
type Topic struct {
	Name        string
	Partitions  int32
	RetentionMS int64 // -1: forever
	// Why explains Partitions.
	Why string
}

// Stream is a JetStream stream's limits; the driver sets the rest.
type Stream struct {
	Name       string
	MaxBytes   int64 // -1: no limit
	MaxMsgSize int32
	MaxAge     time.Duration // 0: forever
	// Why explains MaxBytes and MaxMsgSize.
	Why []string
}

// Table is a Postgres table shared by the namespaces of a driver and the
// namespace's secondary indexes on it.
type Table struct {
	Name string
	// Column holds the stored JSON (bytea).
	Column  string
	Indexes []Index
}

// Index is a partial expression index on one JSON path. It is built
// CONCURRENTLY: the table is shared by every namespace of the backend, and
// writes to it must not wait for the build.
type Index struct {
	Name string
	Path string
	// SQL creates it (idempotent).
	SQL string
}

// Plan computes the storage ns needs on backend b (already resolved from
// "auto") and refuses what cannot work, naming the field at fault.
func Plan(ns *configv1.Namespace, b *configv1.Backend, o Options) (Storage, error) {
	name := ns.GetNamespace()
	driver := config.DriverName(b)
	st := Storage{Namespace: name, Backend: b.GetName(), Driver: driver}
	if err := checkSchema(ns); err != nil {
		return st, err
	}
	indexes := ns.GetSchema().GetIndexes()
	switch {
	case driver == "kafka" && ns.GetAbstraction() == configv1.Abstraction_TIMESERIES:
		n, why, err := Partitions(ns, o)
		if err != nil {
			return st, err
		}
		st.Topic = &Topic{Name: o.TopicPrefix + name, Partitions: n, RetentionMS: retentionMS(ns), Why: why}
	case driver == "nats" && ns.GetAbstraction() == configv1.Abstraction_TIMESERIES:
		s := StreamLimits(ns, o)
		s.Name = o.StreamPrefix + name
		st.Stream = &s
	case driver == "postgres":
		t, err := PostgresTable(ns)
		if err != nil {
			return st, err
		}
		st.Table = &t
		indexes = nil
	}
	if len(indexes) > 0 {
		st.Notes = append(st.Notes, fmt.Sprintf("%d declared index(es) not built: the %s driver has no secondary indexes", len(indexes), driver))
	}
	if ns.GetCache().GetTtl() != nil {
		st.Notes = append(st.Notes, fmt.Sprintf("reads cached for %s when extproc runs with --redis", ns.GetCache().GetTtl().AsDuration()))
	}
	return st, nil
}

// checkSchema refuses indexes the data path would make useless.
func checkSchema(ns *configv1.Namespace) error {
	pii := map[string]bool{}
	for _, f := range ns.GetSchema().GetPii() {
		pii[f.GetPath()] = true
	}
	seen := map[string]bool{}
	for i, ix := range ns.GetSchema().GetIndexes() {
		field := fmt.Sprintf("schema.indexes[%d].path", i)
		switch p := ix.GetPath(); {
		case p == "":
			return fieldErr(ns.GetNamespace(), field, "is empty")
		case !validPath(p):
			return fieldErr(ns.GetNamespace(), field, "%q is not a dot-separated path of field names (letters, digits, _)", p)
		case pii[p]:
			return fieldErr(ns.GetNamespace(), field, "%s is a PII field: it is stored encrypted, an index on it would index ciphertext", p)
		case seen[p]:
			return fieldErr(ns.GetNamespace(), field, "%s is indexed twice", p)
		default:
			seen[p] = true
		}
	}
	return nil
}

func validPath(p string) bool {
	for _, part := range strings.Split(p, ".") {
		if part == "" || len(part) > 63 {
			return false
		}
		for _, c := range part {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

func retentionMS(ns *configv1.Namespace) int64 {
	if d := ns.GetRetentionDays(); d > 0 {
		return int64(d) * 24 * int64(time.Hour/time.Millisecond)
	}
	return -1
}

// recordBytes is the namespace's record size, or the default.
func recordBytes(ns *configv1.Namespace, o Options) (uint32, string) {
	if b := ns.GetEstimatedRecordBytes(); b > 0 {
		return b, "estimated_record_bytes"
	}
	return o.DefaultRecordBytes, "default record size"
}

// Partitions sizes a Kafka topic from the namespace's write estimate.
func Partitions(ns *configv1.Namespace, o Options) (int32, string, error) {
	rps := ns.GetEstimatedWriteRps()
	rec, recFrom := recordBytes(ns, o)
	bytesPerSec := rps * float64(rec) * o.Headroom
	byBytes := math.Ceil(bytesPerSec / o.PartitionBytesPerSec)
	byRecords := math.Ceil(rps * o.Headroom / o.PartitionRecordsPerSec)
	need := math.Max(byBytes, byRecords)
	why := fmt.Sprintf("%g writes/s × %d B (%s) × %g headroom = %s/s over %s/s per partition → %g; %g records/s × %g over %g per partition → %g",
		rps, rec, recFrom, o.Headroom, human(bytesPerSec), human(o.PartitionBytesPerSec), byBytes, rps, o.Headroom, o.PartitionRecordsPerSec, byRecords)
	if need > float64(o.MaxPartitions) {
		return 0, why, fieldErr(ns.GetNamespace(), "estimated_write_rps",
			"%g writes/s needs %g partitions, over the cap of %d (%s); lower the estimate or give the namespace its own cluster",
			rps, need, o.MaxPartitions, why)
	}
	n := int32(need)
	if n < o.MinPartitions {
		why += fmt.Sprintf("; minimum %d", o.MinPartitions)
		n = o.MinPartitions
	}
	return n, why, nil
}

// StreamLimits sizes a JetStream stream.
func StreamLimits(ns *configv1.Namespace, o Options) Stream {
	s := Stream{MaxBytes: -1, MaxAge: time.Duration(ns.GetRetentionDays()) * 24 * time.Hour}
	const gib = 1 << 30
	rec, recFrom := recordBytes(ns, o)
	switch gb, rps, days := ns.GetEstimatedDataSizeGb(), ns.GetEstimatedWriteRps(), ns.GetRetentionDays(); {
	case gb > 0:
		s.MaxBytes = int64(math.Ceil(gb * gib * o.Headroom))
		s.Why = append(s.Why, fmt.Sprintf("max_bytes %s = estimated_data_size_gb %g × %g headroom", human(float64(s.MaxBytes)), gb, o.Headroom))
	case rps > 0 && days > 0:
		v := rps * float64(rec) * float64(days) * 86400 * o.Headroom
		s.MaxBytes = int64(math.Ceil(v))
		s.Why = append(s.Why, fmt.Sprintf("max_bytes %s = %g writes/s × %d B (%s) × %d days × %g headroom", human(v), rps, rec, recFrom, days, o.Headroom))
	default:
		s.Why = append(s.Why, "max_bytes unlimited: neither estimated_data_size_gb nor estimated_write_rps with retention_days is given")
	}
	value := ns.GetLimits().GetMaxValueBytes()
	from := "limits.max_value_bytes"
	if value == 0 {
		value, from = 1<<20, "default max_value_bytes"
	}
	s.MaxMsgSize = int32(min(int64(value)+int64(o.EnvelopeBytes), math.MaxInt32))
	s.Why = append(s.Why, fmt.Sprintf("max_msg_size %d = %s %d + %d B event envelope", s.MaxMsgSize, from, value, o.EnvelopeBytes))
	return s
}

// PostgresTable is the driver's table of the abstraction and the
// namespace's indexes on it.
func PostgresTable(ns *configv1.Namespace) (Table, error) {
	var t Table
	switch ns.GetAbstraction() {
	case configv1.Abstraction_KEYVALUE:
		t = Table{Name: "prism_kv", Column: "value"}
	case configv1.Abstraction_TIMESERIES:
		t = Table{Name: "prism_ts_events", Column: "data"}
	case configv1.Abstraction_GRAPH:
		t = Table{Name: "prism_graph_nodes"}
		if len(ns.GetSchema().GetIndexes()) > 0 {
			return t, fieldErr(ns.GetNamespace(), "schema.indexes", "graph namespaces have no secondary indexes on props")
		}
		return t, nil
	default:
		return t, fieldErr(ns.GetNamespace(), "abstraction", "is required (keyvalue, timeseries or graph)")
	}
	for _, ix := range ns.GetSchema().GetIndexes() {
		t.Indexes = append(t.Indexes, index(t, ns.GetNamespace(), ix.GetPath()))
	}
	return t, nil
}

// index names and defines the index of path. Names are at most 63 bytes
// (Postgres' limit) and unique per (table, namespace, path): a digest
// keeps long ones apart.
func index(t Table, ns, path string) Index {
	sum := sha256.Sum256([]byte(t.Name + "\x00" + ns + "\x00" + path))
	readable := strings.ReplaceAll(ns+"_"+path, "-", "_")
	readable = strings.ReplaceAll(readable, ".", "_")
	name := t.Name + "_ix_" + readable
	if len(name) > 54 {
		name = name[:54]
	}
	name += "_" + hex.EncodeToString(sum[:4])
	elems := strings.Split(path, ".")
	sql := fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s ((prism_json(%s) #>> '{%s}')) WHERE ns = '%s'`,
		name, t.Name, t.Column, strings.Join(elems, ","), ns)
	return Index{Name: name, Path: path, SQL: sql}
}

// human prints a byte count or rate in binary units.
func human(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if b == math.Trunc(b) {
		return fmt.Sprintf("%g %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
