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
	"time"
)

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
	// Ack tells the broker it is handled; Nack gives it back (to be
	// delivered again when requeue is true).
	Ack  func() error
	Nack func(requeue bool) error
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
