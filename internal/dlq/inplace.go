package dlq

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

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

// Position is where an in-place read starts: a partition, an offset (-1:
// the partition's last page) and how many records.
type Position struct {
	Partition int32
	Offset    int64
	Limit     int
}

// ParsePosition reads a Position from query parameters partition (default
// 0), offset (default: the last page) and limit (1 to MaxPage, default
// DefaultPage).
func ParsePosition(v url.Values) (Position, error) {
	bad := problem.Fields{}
	num := func(name string, def, lo, hi int64) int64 {
		s := strings.TrimSpace(v.Get(name))
		if s == "" {
			return def
		}
		n, err := strconv.ParseInt(s, 10, 64)
		bad.Check(err == nil && n >= lo && n <= hi, name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return n
	}
	p := Position{Partition: int32(num("partition", 0, 0, math.MaxInt32)), Offset: num("offset", -1, 0, math.MaxInt64), Limit: int(num("limit", DefaultPage, 1, MaxPage))}
	return p, bad.Err()
}

// ReadInPlace reads up to pos.Limit records of d's partition from
// pos.Offset on; a negative offset reads the partition's last page. Only a Kafka
// DLQ can be read in place (a RabbitMQ read takes the messages).
func (s *Store) ReadInPlace(ctx context.Context, tenant uuid.UUID, b *Brokers, d DLQ, pos Position) (InPlace, error) {
	partition, offset, limit := pos.Partition, pos.Offset, pos.Limit
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
