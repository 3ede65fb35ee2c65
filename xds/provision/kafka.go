package provision

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/prism-gw/prism/backends/ts"
	_ "github.com/prism-gw/prism/backends/ts/kafka" // the driver creates the topic
	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
	"github.com/prism-gw/prism/xds/planner"
)

func kafkaAdmin(b *configv1.Backend) (*kadm.Client, error) {
	brokers := b.GetKafka().GetBrokers()
	if len(brokers) == 0 {
		return nil, fmt.Errorf("backend %s is not a kafka backend with brokers", b.GetName())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("prism-provision"))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func observeTopic(ctx context.Context, b *configv1.Backend, want *planner.Topic) (planner.Observed, error) {
	var have planner.Observed
	adm, err := kafkaAdmin(b)
	if err != nil {
		return have, err
	}
	defer adm.Close()
	details, err := adm.ListTopics(ctx, want.Name)
	if err != nil {
		return have, fmt.Errorf("topic %s: %w", want.Name, err)
	}
	td, ok := details[want.Name]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return have, nil
	}
	if td.Err != nil {
		return have, fmt.Errorf("topic %s: %w", want.Name, td.Err)
	}
	have.TopicPartitions = int32(len(td.Partitions))
	have.TopicRetentionMS = -1
	starts, err := adm.ListStartOffsets(ctx, want.Name)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return have, fmt.Errorf("topic %s start offsets: %w", want.Name, err)
	}
	ends, err := adm.ListEndOffsets(ctx, want.Name)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return have, fmt.Errorf("topic %s end offsets: %w", want.Name, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && o.Offset > s.Offset {
			have.TopicRecords += o.Offset - s.Offset
		}
	})
	configs, err := adm.DescribeTopicConfigs(ctx, want.Name)
	if err != nil {
		return have, fmt.Errorf("topic %s configs: %w", want.Name, err)
	}
	for _, rc := range configs {
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.Value != nil {
				if v, err := strconv.ParseInt(*c.Value, 10, 64); err == nil {
					have.TopicRetentionMS = v
				}
			}
		}
	}
	return have, nil
}

// applyTopic lets the driver create the topic (name, retention, first
// partition count, as extproc would), then grows it to t.Partitions.
func applyTopic(ctx context.Context, ns *configv1.Namespace, b *configv1.Backend, t *planner.Topic) error {
	st, err := ts.Open(ctx, "kafka", "kafka://"+strings.Join(b.GetKafka().GetBrokers(), ","))
	if err != nil {
		return err
	}
	err = st.EnsureNamespace(ctx, ns.GetNamespace(), ts.NamespaceOptions{Retention: retention(ns), Partitions: int(t.Partitions)})
	st.Close()
	if err != nil {
		return err
	}
	adm, err := kafkaAdmin(b)
	if err != nil {
		return err
	}
	defer adm.Close()
	details, err := adm.ListTopics(ctx, t.Name)
	if err != nil {
		return fmt.Errorf("topic %s: %w", t.Name, err)
	}
	if n := int32(len(details[t.Name].Partitions)); n >= t.Partitions {
		return nil
	}
	resp, err := adm.UpdatePartitions(ctx, int(t.Partitions), t.Name)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("topic %s: growing to %d partitions: %w", t.Name, t.Partitions, err)
	}
	return nil
}
