package planner

import (
	"fmt"
	"slices"
	"time"
)

// Observed is what a backend has of a namespace's storage, as package
// provision reads it back.
type Observed struct {
	// TopicPartitions is 0 when the topic does not exist.
	TopicPartitions  int32
	TopicRetentionMS int64
	// TopicRecords is how many records the topic holds.
	TopicRecords int64
	// Stream is nil when the stream does not exist; StreamBytes is what it
	// holds.
	Stream      *Stream
	StreamBytes int64
	// TableExists and Indexes (by name) from pg_catalog.
	TableExists bool
	Indexes     map[string]bool
	// HelperExists: the prism_json function the indexes use.
	HelperExists bool
}

// Step is one line of a plan: what happens to one object and why.
type Step struct {
	// Object is "topic", "partitions", "stream", "table" or "index".
	Object string `json:"object"`
	Name   string `json:"name"`
	// Action is "create", "grow", "update", "keep" (differs, left as it
	// is on purpose) or "ok" (nothing to do).
	Action string `json:"action"`
	Detail string `json:"detail"`
}

// Changes reports whether a step changes the backend.
func (s Step) Changes() bool {
	return s.Action == "create" || s.Action == "grow" || s.Action == "update"
}

// String is the plan line.
func (s Step) String() string {
	return fmt.Sprintf("%s %s: %s (%s)", s.Object, s.Name, s.Action, s.Detail)
}

// DiffOptions are the operator's consent to changes with a cost.
type DiffOptions struct {
	// Repartition allows growing a topic that holds events. The kafka
	// driver reads a series from the one partition its key hashes to, so
	// after growth the earlier events of a series that hashes elsewhere
	// are no longer found by its queries and tails (they stay in the
	// topic). An empty topic grows without it.
	Repartition bool
}

// Diff compares what a namespace needs with what its backend has, and
// returns the steps and the storage to apply: want, except that nothing
// shrinks — partitions stay, stream limits are never lowered, indexes not
// declared any more stay — and a topic holding events grows only with
// o.Repartition.
func Diff(want Storage, have Observed, o DiffOptions) ([]Step, Storage) {
	apply := want
	var steps []Step
	if t := want.Topic; t != nil {
		tt := *t
		switch {
		case have.TopicPartitions == 0:
			steps = append(steps, Step{"topic", t.Name, "create", fmt.Sprintf("%d partitions: %s; retention %s", t.Partitions, t.Why, retention(t.RetentionMS))})
		case have.TopicPartitions < t.Partitions && have.TopicRecords > 0 && !o.Repartition:
			tt.Partitions = have.TopicPartitions
			steps = append(steps, Step{"partitions", t.Name, "keep", fmt.Sprintf("%d, the plan needs %d (%s): the topic holds %d events, and the kafka driver reads a series from the one partition its key hashes to, so growing would hide the earlier events of series that hash elsewhere from queries; apply with repartition (prism ns apply --repartition) to grow anyway", have.TopicPartitions, t.Partitions, t.Why, have.TopicRecords)})
		case have.TopicPartitions < t.Partitions:
			steps = append(steps, Step{"partitions", t.Name, "grow", fmt.Sprintf("%d → %d: %s%s", have.TopicPartitions, t.Partitions, t.Why, growNote(have.TopicRecords))})
		case have.TopicPartitions > t.Partitions:
			tt.Partitions = have.TopicPartitions
			steps = append(steps, Step{"partitions", t.Name, "keep", fmt.Sprintf("%d (the plan needs %d; Kafka cannot remove partitions, and data is never deleted)", have.TopicPartitions, t.Partitions)})
		default:
			steps = append(steps, Step{"partitions", t.Name, "ok", fmt.Sprintf("%d: %s", t.Partitions, t.Why)})
		}
		if have.TopicPartitions > 0 && have.TopicRetentionMS != t.RetentionMS {
			steps = append(steps, Step{"topic", t.Name, "update", fmt.Sprintf("retention %s → %s", retention(have.TopicRetentionMS), retention(t.RetentionMS))})
		}
		apply.Topic = &tt
	}
	if s := want.Stream; s != nil {
		ss := *s
		switch h := have.Stream; {
		case h == nil:
			steps = append(steps, Step{"stream", s.Name, "create", fmt.Sprintf("max_bytes %s, max_msg_size %d, max_age %s: %v", limit(s.MaxBytes), s.MaxMsgSize, age(s.MaxAge), s.Why)})
		default:
			var changes, kept []string
			switch {
			case h.MaxBytes < 0 && s.MaxBytes >= 0 && have.StreamBytes < s.MaxBytes:
				changes = append(changes, fmt.Sprintf("max_bytes unlimited → %s (the stream holds %s, so nothing is discarded)", limit(s.MaxBytes), human(float64(have.StreamBytes))))
			case lower(s.MaxBytes, h.MaxBytes):
				ss.MaxBytes = h.MaxBytes
				kept = append(kept, fmt.Sprintf("max_bytes %s (plan %s; lowering could discard events)", limit(h.MaxBytes), limit(s.MaxBytes)))
			case s.MaxBytes != h.MaxBytes:
				changes = append(changes, fmt.Sprintf("max_bytes %s → %s", limit(h.MaxBytes), limit(s.MaxBytes)))
			}
			// A message size limit only refuses new events; stored ones stay.
			if s.MaxMsgSize != h.MaxMsgSize {
				changes = append(changes, fmt.Sprintf("max_msg_size %d → %d", h.MaxMsgSize, s.MaxMsgSize))
			}
			if s.MaxAge != h.MaxAge {
				changes = append(changes, fmt.Sprintf("max_age %s → %s", age(h.MaxAge), age(s.MaxAge)))
			}
			switch {
			case len(changes) > 0:
				steps = append(steps, Step{"stream", s.Name, "update", fmt.Sprintf("%v: %v", changes, s.Why)})
			case len(kept) == 0:
				steps = append(steps, Step{"stream", s.Name, "ok", fmt.Sprintf("max_bytes %s, max_msg_size %d, max_age %s", limit(s.MaxBytes), s.MaxMsgSize, age(s.MaxAge))})
			}
			if len(kept) > 0 {
				steps = append(steps, Step{"stream", s.Name, "keep", fmt.Sprint(kept)})
			}
		}
		apply.Stream = &ss
	}
	if t := want.Table; t != nil {
		if have.TableExists {
			steps = append(steps, Step{"table", t.Name, "ok", "the driver's shared table"})
		} else {
			steps = append(steps, Step{"table", t.Name, "create", "the driver's shared table, created as the driver does"})
		}
		for _, ix := range t.Indexes {
			if have.Indexes[ix.Name] {
				steps = append(steps, Step{"index", ix.Name, "ok", "on " + ix.Path})
			} else {
				steps = append(steps, Step{"index", ix.Name, "create", fmt.Sprintf("on %s of namespace %s's rows", ix.Path, want.Namespace)})
			}
		}
		var extra []string
		for name := range have.Indexes {
			if !slices.ContainsFunc(t.Indexes, func(ix Index) bool { return ix.Name == name }) {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		for _, name := range extra {
			steps = append(steps, Step{"index", name, "keep", "no longer declared; indexes are never dropped by a plan (DROP INDEX by hand)"})
		}
	}
	return steps, apply
}

func growNote(records int64) string {
	if records == 0 {
		return "; the topic is empty, no series loses sight of its events"
	}
	return fmt.Sprintf("; repartitioning: of the %d events, those of series that now hash to another partition stay where they are and are no longer found by their series' queries", records)
}

// lower reports whether limit a is stricter than b (-1 is no limit).
func lower(a, b int64) bool {
	if a < 0 {
		return false
	}
	return b < 0 || a < b
}

func limit(b int64) string {
	if b < 0 {
		return "unlimited"
	}
	return human(float64(b))
}

func age(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return d.String()
}

func retention(ms int64) string {
	if ms < 0 {
		return "forever"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}
