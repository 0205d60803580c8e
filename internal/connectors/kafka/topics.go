package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchboard/internal/connectors"
)

var _ connectors.TopicMaker = (*Connector)(nil)

// EnsureTopic makes topic with the cluster's default partitions and
// replication factor, unless it exists.
func (c *Connector) EnsureTopic(ctx context.Context, topic string) error {
	cl, err := c.producer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopic(ctx, -1, -1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka: make topic %q: %w", topic, err)
	}
	return nil
}

var _ connectors.PartitionReader = (*Connector)(nil)

// Partitions lists topic's partitions with their offsets.
func (c *Connector) Partitions(ctx context.Context, topic string) ([]connectors.Partition, error) {
	cl, err := c.producer()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %q: %w", topic, err)
	}
	var out []connectors.Partition
	starts.Each(func(o kadm.ListedOffset) {
		e, _ := ends.Lookup(topic, o.Partition)
		out = append(out, connectors.Partition{Partition: o.Partition, Start: o.Offset, End: e.Offset})
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("kafka: no topic %q", topic)
	}
	slices.SortFunc(out, func(a, b connectors.Partition) int { return int(a.Partition - b.Partition) })
	return out, nil
}

// Read returns up to limit records of topic's partition from offset on,
// as they are: no consumer group, nothing committed, the topic undisturbed.
// It reads no further than the partition's end when it was called.
func (c *Connector) Read(ctx context.Context, topic string, partition int32, offset int64, limit int) ([]connectors.Delivery, error) {
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(parts, func(p connectors.Partition) bool { return p.Partition == partition })
	if i < 0 {
		return nil, fmt.Errorf("kafka: topic %q has no partition %d", topic, partition)
	}
	offset = max(offset, parts[i].Start)
	end := min(parts[i].End, offset+int64(limit))
	if offset >= end {
		return []connectors.Delivery{}, nil
	}
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	out := make([]connectors.Delivery, 0, end-offset)
	for {
		fs := cl.PollRecords(ctx, int(end-offset))
		if err := ctx.Err(); err != nil {
			if len(out) > 0 { // the rest were not records (transaction markers)
				return out, nil
			}
			return nil, fmt.Errorf("kafka: read %q partition %d: %w", topic, partition, err)
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("kafka: read %q partition %d: %w", topic, partition, fe.Err)
		}
		var last int64 = -1
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end {
				out = append(out, connectors.Delivery{Message: message(r), Partition: r.Partition, Offset: r.Offset})
			}
			last = r.Offset
		})
		// Offsets may skip (compaction, transaction markers): done once
		// the end is reached or passed.
		if last+1 >= end {
			return out, nil
		}
	}
}
