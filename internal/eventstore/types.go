package eventstore

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// EventData is one event to append.
type EventData struct {
	// ID identifies the event for idempotent appends. The zero UUID asks the
	// store to generate one; such an append cannot be retried idempotently.
	ID   uuid.UUID
	Type string
	// Data is the event body: any JSON value.
	Data json.RawMessage
	// Metadata is optional JSON (correlation and causation ids, say).
	Metadata json.RawMessage
}

// Event is a stored event.
type Event struct {
	ID     uuid.UUID `json:"id"`
	Stream string    `json:"stream"`
	Type   string    `json:"type"`
	// Version is the 0-based number of the event in its stream.
	Version int64 `json:"version"`
	// Position is the event's place in the tenant's log, from 1 without
	// gaps. Log reads and subscriptions only return positioned events; a
	// stream read may return an event the sequencer has not positioned yet,
	// with Position 0.
	Position  int64           `json:"position"`
	Data      json.RawMessage `json:"data"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`

	// shared is set on the events a tenant's tail hands to its followers:
	// every copy of one event shares it, and with it one encoding.
	shared *sharedJSON
}

// sharedJSON is an event's JSON encoding, made once.
type sharedJSON struct {
	once sync.Once
	b    []byte
	err  error
}

// JSON returns the event's JSON encoding (what encoding/json makes of it).
// The copies of an event that one shared read of the log handed to many
// subscriptions share one encoding, made by the first to ask: a live stream
// with thousands of subscribers encodes each event once.
func (e Event) JSON() ([]byte, error) {
	sh := e.shared
	if sh == nil {
		return json.Marshal(e)
	}
	sh.once.Do(func() { sh.b, sh.err = json.Marshal(e) })
	return sh.b, sh.err
}

// AppendResult reports where an append put its events.
type AppendResult struct {
	FirstVersion int64 `json:"first_version"`
	LastVersion  int64 `json:"last_version"`
	// EventIDs are the ids of the appended events, generated ones included.
	EventIDs []uuid.UUID `json:"event_ids"`
	// Duplicate is true when every event was already stored by an earlier
	// append of the same batch; the versions are the original ones.
	Duplicate bool `json:"duplicate"`
	// Position is the log position of the last event when it is already
	// known, else 0. A fresh append never waits for the sequencer, so it is
	// 0 there; use AwaitPosition to wait for it.
	Position int64 `json:"position,omitempty"`
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

// ExpectedVersion is the optimistic-concurrency condition of an append. The
// zero value is Any.
type ExpectedVersion struct {
	kind    expectKind
	version int64
}

// Any accepts the stream in any state.
func Any() ExpectedVersion { return ExpectedVersion{kind: expectAny} }

// NoStream requires that the stream has no events (or does not exist).
func NoStream() ExpectedVersion { return ExpectedVersion{kind: expectNoStream} }

// StreamExists requires that the stream has at least one event.
func StreamExists() ExpectedVersion { return ExpectedVersion{kind: expectStreamExists} }

// Exact requires that the stream's last event has version v. A negative v is
// rejected by Append.
func Exact(v int64) ExpectedVersion { return ExpectedVersion{kind: expectExact, version: v} }

// String returns "any", "no_stream", "stream_exists" or the exact version.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no_stream"
	case expectStreamExists:
		return "stream_exists"
	case expectExact:
		return strconv.FormatInt(e.version, 10)
	default:
		return "any"
	}
}

// ParseExpectedVersion reads the form String writes: "any", "no_stream",
// "stream_exists" or a non-negative integer. The empty string is "any".
func ParseExpectedVersion(s string) (ExpectedVersion, error) {
	switch s {
	case "", "any":
		return Any(), nil
	case "no_stream":
		return NoStream(), nil
	case "stream_exists":
		return StreamExists(), nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return ExpectedVersion{}, problem.Invalid(map[string]string{
			"expected_version": `must be "any", "no_stream", "stream_exists" or a version number (0 or more)`})
	}
	return Exact(v), nil
}

// MarshalJSON writes a version as a JSON number and the rest as strings.
func (e ExpectedVersion) MarshalJSON() ([]byte, error) {
	if e.kind == expectExact {
		return []byte(strconv.FormatInt(e.version, 10)), nil
	}
	return []byte(`"` + e.String() + `"`), nil
}

// UnmarshalJSON accepts what ParseExpectedVersion accepts, as a JSON string,
// or a version as a JSON number; null is "any".
func (e *ExpectedVersion) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*e = Any()
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return problem.Invalid(map[string]string{"expected_version": "must be a string or a number"})
		}
	}
	v, err := ParseExpectedVersion(s)
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Direction is the order of a stream read.
type Direction uint8

const (
	// Forward reads from a version towards the end.
	Forward Direction = iota
	// Backward reads from a version towards version 0.
	Backward
)

// String returns "forward" or "backward".
func (d Direction) String() string {
	if d == Backward {
		return "backward"
	}
	return "forward"
}

// ParseDirection reads "forward" (or "") and "backward".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "", "forward":
		return Forward, nil
	case "backward":
		return Backward, nil
	}
	return Forward, problem.Invalid(map[string]string{"direction": `must be "forward" or "backward"`})
}

// End is the version to read a stream backwards from its last event.
const End int64 = 1<<63 - 1

// StreamMetadata limits which events of a stream reads return. Nil fields
// are unset. Events that fall outside are hidden, not deleted.
type StreamMetadata struct {
	// MaxCount keeps only the newest MaxCount events visible.
	MaxCount *int64 `json:"max_count,omitempty"`
	// MaxAgeSeconds hides events appended more than this many seconds ago.
	MaxAgeSeconds *int64 `json:"max_age,omitempty"`
	// TruncateBefore hides events with a lower version.
	TruncateBefore *int64 `json:"truncate_before,omitempty"`
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	// Version is the version of the last event; -1 when the stream has
	// metadata but no events yet.
	Version     int64          `json:"version"`
	CreatedAt   time.Time      `json:"created_at"`
	LastWriteAt *time.Time     `json:"last_write_at,omitempty"`
	Metadata    StreamMetadata `json:"metadata"`
}

// Snapshot is a saved state of a stream at a version.
type Snapshot struct {
	Stream    string          `json:"stream"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}

// Lag is how far the log's readers trail its writers.
type Lag struct {
	// Pending counts committed events without a position yet (capped at
	// 1,000,000): they wait for the sequencer, or for an older transaction
	// somewhere in the cluster to end.
	Pending int64
	// Oldest is the age of the oldest pending event; 0 when none.
	Oldest time.Duration
}
