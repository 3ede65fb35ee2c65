package planner

import (
	"errors"
	"strings"
	"testing"
	"time"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/config"
)

func kafkaBackend() *configv1.Backend {
	return &configv1.Backend{Name: "log", Driver: &configv1.Backend_Kafka{Kafka: &configv1.Backend_KafkaOptions{Brokers: []string{"k:9092"}}}}
}

func TestPartitions(t *testing.T) {
	o := DefaultOptions()
	tests := []struct {
		name    string
		rps     float64
		record  uint32
		want    int32
		wantErr string
	}{
		{"nothing declared: the minimum", 0, 0, 3, ""},
		{"small: the minimum", 100, 200, 3, ""},
		{"records bound: 5000/s × 2 over 1000/s", 5000, 100, 10, ""},
		{"bytes bound: 1000/s × 4 KiB × 2 over 1 MiB/s", 1000, 4096, 8, ""},
		{"default record size 1 KiB: 3000/s × 1 KiB × 2 = 5.9 MiB/s", 3000, 0, 6, ""},
		{"exactly the cap", 32000, 10, 64, ""},
		{"over the cap", 40000, 10, 0, "estimated_write_rps: 40000 writes/s needs 80 partitions, over the cap of 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := &configv1.Namespace{Namespace: "ev", EstimatedWriteRps: tt.rps, EstimatedRecordBytes: tt.record}
			n, why, err := Partitions(ns, o)
			if tt.wantErr != "" {
				var fe *FieldError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &fe) {
					t.Fatalf("Partitions = %d, %v; want a FieldError mentioning %q", n, err, tt.wantErr)
				}
				return
			}
			if err != nil || n != tt.want {
				t.Fatalf("Partitions = %d, %v; want %d (%s)", n, err, tt.want, why)
			}
			if !strings.Contains(why, "per partition") {
				t.Errorf("explanation %q does not say how the number came about", why)
			}
		})
	}
}

func TestStreamLimits(t *testing.T) {
	o := DefaultOptions()
	tests := []struct {
		name       string
		ns         *configv1.Namespace
		maxBytes   int64
		maxMsgSize int32
		maxAge     time.Duration
	}{
		{"nothing known: unlimited", &configv1.Namespace{}, -1, 1<<20 + 4096, 0},
		{"data size × headroom", &configv1.Namespace{EstimatedDataSizeGb: 1.5, RetentionDays: 7}, 3 << 30, 1<<20 + 4096, 7 * 24 * time.Hour},
		{"rate × record × retention × headroom", &configv1.Namespace{EstimatedWriteRps: 10, EstimatedRecordBytes: 100, RetentionDays: 1}, 10 * 100 * 86400 * 2, 1<<20 + 4096, 24 * time.Hour},
		{"rate without retention: unlimited", &configv1.Namespace{EstimatedWriteRps: 10}, -1, 1<<20 + 4096, 0},
		{"max value from limits", &configv1.Namespace{Limits: &configv1.Limits{MaxValueBytes: 1000}}, -1, 5096, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := StreamLimits(tt.ns, o)
			if s.MaxBytes != tt.maxBytes || s.MaxMsgSize != tt.maxMsgSize || s.MaxAge != tt.maxAge {
				t.Fatalf("StreamLimits = %+v, want max_bytes %d, max_msg_size %d, max_age %s", s, tt.maxBytes, tt.maxMsgSize, tt.maxAge)
			}
			if len(s.Why) != 2 {
				t.Errorf("Why = %q, want an explanation of each limit", s.Why)
			}
		})
	}
}

func TestChooseBackend(t *testing.T) {
	o := DefaultOptions()
	lite := &configv1.Backend{Name: "lite", Driver: &configv1.Backend_Sqlite{Sqlite: &configv1.Backend_SQLiteOptions{Path: "x"}}}
	pg := &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "x"}}}
	st := &configv1.Backend{Name: "stream", Driver: &configv1.Backend_Nats{Nats: &configv1.Backend_NatsOptions{Url: "x"}}}
	all := []*configv1.Backend{lite, pg, st, kafkaBackend()}
	serves := func(b *configv1.Backend, a configv1.Abstraction) bool {
		switch config.DriverName(b) {
		case "nats", "kafka":
			return a == configv1.Abstraction_TIMESERIES
		case "neptune":
			return a == configv1.Abstraction_GRAPH
		}
		return true
	}
	tests := []struct {
		name     string
		ns       *configv1.Namespace
		backends []*configv1.Backend
		want     string
		wantErr  string
	}{
		{"keyvalue: postgres", &configv1.Namespace{Abstraction: configv1.Abstraction_KEYVALUE}, all, "pg", ""},
		{"keyvalue: sqlite when alone", &configv1.Namespace{Abstraction: configv1.Abstraction_KEYVALUE}, []*configv1.Backend{lite}, "lite", ""},
		{"keyvalue: sqlite skipped when write heavy", &configv1.Namespace{Abstraction: configv1.Abstraction_KEYVALUE, EstimatedWriteRps: 5000}, []*configv1.Backend{lite}, "", "backend: auto found no declared backend for keyvalue"},
		{"keyvalue: sqlite skipped when big", &configv1.Namespace{Abstraction: configv1.Abstraction_KEYVALUE, EstimatedDataSizeGb: 500}, []*configv1.Backend{lite, pg}, "pg", ""},
		{"timeseries append heavy: kafka", &configv1.Namespace{Abstraction: configv1.Abstraction_TIMESERIES, AccessPattern: configv1.AccessPattern_APPEND_HEAVY}, all, "log", ""},
		{"timeseries read heavy: nats", &configv1.Namespace{Abstraction: configv1.Abstraction_TIMESERIES, AccessPattern: configv1.AccessPattern_READ_HEAVY}, all, "stream", ""},
		{"timeseries: falls back to postgres", &configv1.Namespace{Abstraction: configv1.Abstraction_TIMESERIES}, []*configv1.Backend{lite, pg}, "pg", ""},
		{"graph: never nats", &configv1.Namespace{Abstraction: configv1.Abstraction_GRAPH}, []*configv1.Backend{st, lite}, "lite", ""},
		{"no abstraction", &configv1.Namespace{}, all, "", "abstraction: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ns.Namespace = "n"
			got, why, err := ChooseBackend(tt.ns, tt.backends, serves, o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ChooseBackend = %q, %v; want an error mentioning %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || why == "" {
				t.Fatalf("ChooseBackend = %q (%s), %v; want %q", got, why, err, tt.want)
			}
		})
	}
}

func TestPlanRefusesWithTheFieldPath(t *testing.T) {
	pg := &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "x"}}}
	kv := func(s *configv1.Schema) *configv1.Namespace {
		return &configv1.Namespace{Namespace: "orders", Abstraction: configv1.Abstraction_KEYVALUE, Schema: s}
	}
	tests := []struct {
		name string
		ns   *configv1.Namespace
		b    *configv1.Backend
		want string
	}{
		{"index on PII", kv(&configv1.Schema{Pii: []*configv1.PiiField{{Path: "email", Class: configv1.PiiClass_EMAIL}}, Indexes: []*configv1.Index{{Path: "email"}}}), pg, "namespace orders: schema.indexes[0].path: email is a PII field"},
		{"index path with SQL in it", kv(&configv1.Schema{Indexes: []*configv1.Index{{Path: "a'; drop table x"}}}), pg, "schema.indexes[0].path: \"a'; drop table x\" is not a dot-separated path"},
		{"index twice", kv(&configv1.Schema{Indexes: []*configv1.Index{{Path: "a"}, {Path: "a"}}}), pg, "schema.indexes[1].path: a is indexed twice"},
		{"graph index", &configv1.Namespace{Namespace: "g", Abstraction: configv1.Abstraction_GRAPH, Schema: &configv1.Schema{Indexes: []*configv1.Index{{Path: "a"}}}}, pg, "namespace g: schema.indexes: graph namespaces have no secondary indexes"},
		{"partitions over the cap", &configv1.Namespace{Namespace: "ev", Abstraction: configv1.Abstraction_TIMESERIES, EstimatedWriteRps: 1e6}, kafkaBackend(), "namespace ev: estimated_write_rps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Plan(tt.ns, tt.b, DefaultOptions())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Plan: %v; want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestPlanPostgresIndexes(t *testing.T) {
	pg := &configv1.Backend{Name: "pg", Driver: &configv1.Backend_Postgres{Postgres: &configv1.Backend_PostgresOptions{Dsn: "x"}}}
	ns := &configv1.Namespace{Namespace: "user-profiles", Abstraction: configv1.Abstraction_KEYVALUE,
		Schema: &configv1.Schema{Indexes: []*configv1.Index{{Path: "status"}, {Path: "address.city"}, {Path: strings.Repeat("x", 60)}}}}
	st, err := Plan(ns, pg, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if st.Table == nil || st.Table.Name != "prism_kv" || len(st.Table.Indexes) != 3 {
		t.Fatalf("table = %+v", st.Table)
	}
	ix := st.Table.Indexes[1]
	want := `CREATE INDEX CONCURRENTLY IF NOT EXISTS ` + ix.Name + ` ON prism_kv ((prism_json(value) #>> '{address,city}')) WHERE ns = 'user-profiles'`
	if ix.SQL != want || !strings.HasPrefix(ix.Name, "prism_kv_ix_user_profiles_address_city_") {
		t.Errorf("index = %+v\nwant SQL %s", ix, want)
	}
	for _, ix := range st.Table.Indexes {
		if len(ix.Name) > 63 {
			t.Errorf("index name %s is over Postgres' 63 bytes", ix.Name)
		}
	}
}

func TestDiffGrowsATopicHoldingEventsOnlyWithConsent(t *testing.T) {
	want := Storage{Topic: &Topic{Name: "t", Partitions: 6}}
	have := Observed{TopicPartitions: 3, TopicRecords: 10}
	steps, apply := Diff(want, have, DiffOptions{})
	if len(steps) != 1 || steps[0].Action != "keep" || apply.Topic.Partitions != 3 || !strings.Contains(steps[0].Detail, "--repartition") {
		t.Fatalf("without consent: %v, partitions %d; want keep 3 naming --repartition", steps, apply.Topic.Partitions)
	}
	steps, apply = Diff(want, have, DiffOptions{Repartition: true})
	if len(steps) != 1 || steps[0].Action != "grow" || apply.Topic.Partitions != 6 {
		t.Fatalf("with consent: %v, partitions %d; want grow to 6", steps, apply.Topic.Partitions)
	}
}

func TestDiffNeverShrinks(t *testing.T) {
	want := Storage{Namespace: "ev",
		Topic:  &Topic{Name: "prism.ts.ev", Partitions: 6, RetentionMS: -1},
		Stream: &Stream{Name: "S", MaxBytes: 1 << 30, MaxMsgSize: 1000},
		Table:  &Table{Name: "prism_kv", Indexes: []Index{{Name: "ix_a", Path: "a"}}},
	}
	tests := []struct {
		name        string
		have        Observed
		partitions  int32
		maxBytes    int64
		wantActions []string
	}{
		{"nothing exists", Observed{}, 6, 1 << 30, []string{"topic:create", "stream:create", "table:create", "index:create"}},
		{"grow partitions, raise limit", Observed{TopicPartitions: 3, TopicRetentionMS: -1, Stream: &Stream{MaxBytes: 1 << 20, MaxMsgSize: 1000}, TableExists: true, Indexes: map[string]bool{"ix_a": true}},
			6, 1 << 30, []string{"partitions:grow", "stream:update", "table:ok", "index:ok"}},
		{"more partitions and a bigger stream than planned: kept", Observed{TopicPartitions: 12, TopicRetentionMS: -1, Stream: &Stream{MaxBytes: 1 << 40, MaxMsgSize: 1000}, TableExists: true, Indexes: map[string]bool{"ix_a": true, "ix_old": true}},
			12, 1 << 40, []string{"partitions:keep", "stream:keep", "table:ok", "index:ok", "index:keep"}},
		{"an unlimited stream holding more than the plan stays unlimited", Observed{TopicPartitions: 6, TopicRetentionMS: -1, Stream: &Stream{MaxBytes: -1, MaxMsgSize: 1000}, StreamBytes: 2 << 30, TableExists: true, Indexes: map[string]bool{"ix_a": true}},
			6, -1, []string{"partitions:ok", "stream:keep", "table:ok", "index:ok"}},
		{"an unlimited stream holding less than the plan gets the limit", Observed{TopicPartitions: 6, TopicRetentionMS: -1, Stream: &Stream{MaxBytes: -1, MaxMsgSize: -1}, StreamBytes: 1000, TableExists: true, Indexes: map[string]bool{"ix_a": true}},
			6, 1 << 30, []string{"partitions:ok", "stream:update", "table:ok", "index:ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, apply := Diff(want, tt.have, DiffOptions{})
			var got []string
			for _, s := range steps {
				got = append(got, s.Object+":"+s.Action)
			}
			if strings.Join(got, " ") != strings.Join(tt.wantActions, " ") {
				t.Errorf("steps = %v, want %v\n%v", got, tt.wantActions, steps)
			}
			if apply.Topic.Partitions != tt.partitions || apply.Stream.MaxBytes != tt.maxBytes {
				t.Errorf("apply partitions %d max_bytes %d, want %d %d", apply.Topic.Partitions, apply.Stream.MaxBytes, tt.partitions, tt.maxBytes)
			}
		})
	}
}
