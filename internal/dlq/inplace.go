package dlq

import (
	"context"

	"github.com/google/uuid"

	"switchboard/internal/connectors"
	"switchboard/internal/problem"
)

// InPlace is a page of a Kafka DLQ topic read where it lies, by partition
// and offset: nothing is consumed or committed, nothing stored. Its
// records are Messages with ID 0, no status, and the record's time as
// captured_at.
type InPlace struct {
	Partitions []connectors.Partition `json:"partitions"`
	Partition  int32                  `json:"partition"`
	// Offset is where this page starts; NextOffset where the next one
	// does (the partition's end when there is no more).
	Offset     int64     `json:"offset"`
	NextOffset int64     `json:"next_offset"`
	Records    []Message `json:"records"`
}

// ReadInPlace reads up to limit records of d's partition from offset on;
// a negative offset reads the partition's last limit records. Only a Kafka
// DLQ can be read in place (a RabbitMQ read takes the messages).
func (s *Store) ReadInPlace(ctx context.Context, tenant uuid.UUID, b *Brokers, d DLQ, partition int32, offset int64, limit int) (InPlace, error) {
	kind, name, err := ParseRef(d.Ref)
	if err != nil {
		return InPlace{}, err
	}
	if kind != "topic" {
		return InPlace{}, problem.Errorf(problem.CodeUnprocessable, "%s is a RabbitMQ queue: reading it takes its messages, so it is browsed as captured", d.Ref)
	}
	conn, _, err := s.brokerOf(ctx, b, tenant, d)
	if err != nil {
		return InPlace{}, err
	}
	r, ok := conn.(connectors.PartitionReader)
	if !ok {
		return InPlace{}, problem.Errorf(problem.CodeUnprocessable, "broker %q cannot be read in place", d.Broker)
	}
	parts, err := r.Partitions(ctx, name)
	if err != nil {
		return InPlace{}, brokerFailed(d.Broker, err)
	}
	out := InPlace{Partitions: parts, Partition: partition, Records: []Message{}}
	var part *connectors.Partition
	for i := range parts {
		if parts[i].Partition == partition {
			part = &parts[i]
		}
	}
	if part == nil {
		return InPlace{}, problem.Invalid(map[string]string{"partition": "the topic has no such partition"})
	}
	if offset < 0 {
		offset = part.End - int64(limit)
	}
	out.Offset = max(offset, part.Start)
	out.NextOffset = out.Offset
	dels, err := r.Read(ctx, name, partition, out.Offset, limit)
	if err != nil {
		return InPlace{}, brokerFailed(d.Broker, err)
	}
	header := ""
	if d.Kafka != nil {
		header = d.Kafka.OriginalTopicHeader
	}
	for _, dl := range dels {
		m := parse(dl, 0, header).message(d.Ref)
		out.Records = append(out.Records, m)
		out.NextOffset = dl.Offset + 1
	}
	if len(dels) < limit {
		out.NextOffset = max(out.NextOffset, min(part.End, out.Offset+int64(limit)))
	}
	return out, nil
}

// brokerFailed is a broker's failure as a request sees it: a 502 naming
// the broker.
func brokerFailed(broker string, err error) error {
	if _, ok := problem.As(err); ok {
		return err
	}
	return problem.Errorf(problem.CodeBadGateway, "broker %q did not answer: %s", broker, err)
}

// message is c as a Message of dlq that was never stored.
func (c captured) message(dlq string) Message {
	m := Message{DLQ: dlq, MessageID: c.messageID, RoutingKey: c.routingKey, ContentType: c.contentType, Headers: c.headers,
		Properties: c.properties, BodySize: c.bodySize, Truncated: c.truncated, Original: c.original, Reason: c.reason,
		Exception: c.exception, DeathCount: c.deathCount, FirstDeath: c.firstDeath, LastDeath: c.lastDeath, Traceparent: c.traceparent,
		Partition: c.partition, Offset: c.offset}
	if c.lastDeath != nil { // the record's time
		m.CapturedAt = *c.lastDeath
	}
	m.body = c.body
	m.setBody(c.body)
	return m
}
