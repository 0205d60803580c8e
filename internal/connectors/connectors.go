// Package connectors is the one small interface Switchboard reads and
// writes brokers through (DLQ capture and replay), with one sub-package per
// broker kind. A broker kind is added by passing the conformance suite in
// connectortest.
//
// Invariants every connector keeps:
//   - Publish returns only after the broker confirmed every message
//     (RabbitMQ publisher confirms, Kafka acks=all); an error means some
//     may not have been confirmed, never that they were lost silently.
//   - Consume acknowledges nothing by itself: a delivery the handler does
//     not Ack is delivered again (after Nack with requeue, or when the
//     connection drops).
//   - Bodies and headers are carried byte-exact.
//   - Every network wait is bounded, and a dropped connection is redialled
//     with backoff until Close.
package connectors

import (
	"context"
	"errors"
	"time"
)

// ErrUnroutable wraps the error of a publish the broker took but could not
// deliver anywhere (no queue bound for it): sending it again will not help.
var ErrUnroutable = errors.New("no queue took the message")

// Message is one broker message.
type Message struct {
	// ID is the message's id (AMQP message-id), when it has one.
	ID string
	// Key routes it: the AMQP routing key, or the Kafka record key.
	Key         string
	Body        []byte
	Headers     map[string]any // AMQP table values; Kafka values are []byte
	ContentType string
	Timestamp   time.Time
	// Properties are AMQP's other message properties, by their AMQP
	// names: correlation-id, reply-to, type, app-id, priority (0-9, as
	// text). Kafka has none.
	Properties map[string]string
}

// Destination is where a message is published: an exchange (with the
// message's Key as routing key; "" is the default exchange, which routes
// by queue name) or a topic.
type Destination struct {
	Exchange string
	Topic    string
}

// Delivery is a consumed message to acknowledge.
type Delivery struct {
	Message
	// Redelivered says the broker delivered it before.
	Redelivered bool
	// Partition and Offset place a Kafka record (-1 for RabbitMQ).
	Partition int32
	Offset    int64
	// Ack tells the broker it is handled; Nack gives it back (to be
	// delivered again when requeue is true).
	Ack  func() error
	Nack func(requeue bool) error
	// AckThrough, when set, acknowledges this delivery and every earlier
	// one of the same Consume at once (RabbitMQ's multiple ack): for a
	// handler that finishes deliveries in the order they came.
	AckThrough func() error
}

// Connector reads and writes one broker.
type Connector interface {
	// Publish sends msgs to dest and returns once the broker confirmed
	// them all.
	Publish(ctx context.Context, dest Destination, msgs ...Message) error
	// Consume delivers the messages of source (a queue, or a topic) to
	// handle until ctx ends, at most prefetch unacknowledged at a time,
	// across reconnections. It returns nil when ctx ends.
	Consume(ctx context.Context, source string, prefetch int, handle func(context.Context, Delivery)) error
	// Close releases the connector's connections.
	Close() error
}

// TopicMaker is a connector whose broker has topics made on demand
// (Kafka): a replay to a consumer group's retry topic makes it first.
type TopicMaker interface {
	// EnsureTopic makes topic with the broker's default partitions and
	// replication, unless it exists.
	EnsureTopic(ctx context.Context, topic string) error
}

// Partition is one partition of a topic: the first offset it still holds
// and the offset its next record will take.
type Partition struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
}

// PartitionReader is a connector whose broker keeps what it delivered
// (Kafka): it reads a topic in place, by partition and offset, without
// consuming it.
type PartitionReader interface {
	// Partitions lists topic's partitions.
	Partitions(ctx context.Context, topic string) ([]Partition, error)
	// Read returns up to limit records of a partition from offset on
	// (Delivery's Ack and Nack are nil: nothing is consumed).
	Read(ctx context.Context, topic string, partition int32, offset int64, limit int) ([]Delivery, error)
}
