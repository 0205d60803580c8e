package dlq

import (
	"time"

	"github.com/google/uuid"
)

// Message statuses.
const (
	Dead      = "dead"
	Replaying = "replaying"
	Replayed  = "replayed"
	Discarded = "discarded"
)

// Statuses lists every message status.
var Statuses = []string{Dead, Replaying, Replayed, Discarded}

// Replay headers every replayed message carries, so consumers can
// deduplicate and the capture can recognise a message coming back.
const (
	HeaderReplayID    = "x-switchboard-replay-id"
	HeaderReplayCount = "x-switchboard-replay-count"
	HeaderMessage     = "x-switchboard-dlq-message" // the stored message's id
)

// DLQ is a dead-letter queue or topic of the catalog, with what the store
// holds of it.
type DLQ struct {
	Ref       string            `json:"ref"` // queue:NAME or topic:NAME
	Broker    string            `json:"broker"`
	OwnerTeam string            `json:"owner_team"`
	Labels    map[string]string `json:"labels"`
	// DeadLettersFor lists what dead-letters into it (catalog refs).
	DeadLettersFor []string  `json:"dead_letters_for"`
	Paused         bool      `json:"paused"`
	Redaction      Redaction `json:"redaction"`
	// Kafka holds a topic's conventions (nil for a queue).
	Kafka  *KafkaSettings `json:"kafka,omitempty"`
	Counts Counts         `json:"counts"`
	// Oldest is when the oldest message still dead (or being replayed) was
	// captured.
	Oldest *time.Time `json:"oldest,omitempty"`
	// LastHour is how many were captured in the last hour.
	LastHour int64 `json:"last_hour"`
	// Capture says how capturing goes (running, paused, failing: why).
	Capture CaptureState `json:"capture"`
}

// Counts are a DLQ's messages by status.
type Counts struct {
	Dead      int64 `json:"dead"`
	Replaying int64 `json:"replaying"`
	Replayed  int64 `json:"replayed"`
	Discarded int64 `json:"discarded"`
	Held      int64 `json:"held"`
}

// CaptureState is how capturing a DLQ goes on this replica.
type CaptureState struct {
	State string     `json:"state"` // running, paused, failing, stopped
	Error string     `json:"error,omitempty"`
	Since *time.Time `json:"since,omitempty"`
}

// Redaction hides values from those who may browse a DLQ but not read its
// payloads: whole headers by name, and values inside JSON bodies by path
// ($.a.b, $.items[*].card).
type Redaction struct {
	Headers   []string `json:"headers"`
	JSONPaths []string `json:"json_paths"`
}

// Message is a captured dead letter.
type Message struct {
	ID          int64   `json:"id"`
	DLQ         string  `json:"dlq"`
	MessageID   string  `json:"message_id"`
	RoutingKey  string  `json:"routing_key"`
	ContentType string  `json:"content_type"`
	Headers     Headers `json:"headers"`
	// Properties are the broker's other message properties (AMQP
	// correlation-id, reply-to, type, app-id, priority, timestamp).
	Properties map[string]string `json:"properties"`
	// Body is the body as text when it is UTF-8 (BodyEncoding "text"),
	// else base64 ("base64"); omitted ("redacted") from those who may not
	// read payloads.
	Body         string `json:"body"`
	BodyEncoding string `json:"body_encoding"`
	BodySize     int    `json:"body_size"`
	// Truncated: the body was over the capture's size cap and only its
	// first bytes are kept; such a message cannot be replayed.
	Truncated   bool        `json:"truncated"`
	Original    Destination `json:"original"`
	Reason      string      `json:"reason"`
	Exception   string      `json:"exception,omitempty"`
	DeathCount  int64       `json:"death_count"`
	FirstDeath  *time.Time  `json:"first_death_at,omitempty"`
	LastDeath   *time.Time  `json:"last_death_at,omitempty"`
	Traceparent string      `json:"traceparent,omitempty"`
	Partition   *int32      `json:"partition,omitempty"`
	Offset      *int64      `json:"offset,omitempty"`
	CapturedAt  time.Time   `json:"captured_at"`
	Status      string      `json:"status"`
	Replays     int         `json:"replays"`
	Returns     int         `json:"returns"`
	Held        bool        `json:"held"`
	LastReplay  *uuid.UUID  `json:"last_replay,omitempty"`

	body []byte
}

// Destination is where a message was going, or is replayed to.
type Destination struct {
	Exchange   string `json:"exchange,omitempty"`
	RoutingKey string `json:"routing_key,omitempty"`
	Queue      string `json:"queue,omitempty"`
	Topic      string `json:"topic,omitempty"`
	// ConsumerGroup: Topic is this consumer group's retry topic of
	// GroupTopic, so only that group sees the message again.
	ConsumerGroup string `json:"consumer_group,omitempty"`
	GroupTopic    string `json:"group_topic,omitempty"`
}

// Group is a count of messages sharing a reason, an exception or an
// original destination.
type Group struct {
	By     string    `json:"by"`
	Key    string    `json:"key"`
	Count  int64     `json:"count"`
	Oldest time.Time `json:"oldest"`
	Newest time.Time `json:"newest"`
}
