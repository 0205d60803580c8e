package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The event store: streams appended with optimistic concurrency, read
// forwards or backwards, and the tenant's log in commit order.

// AppendEvents appends in.Events to stream if it is at in.ExpectedVersion;
// 409 conflict otherwise, with nothing appended.
func (c *Client) AppendEvents(ctx context.Context, tenant, stream string, in AppendRequest) (AppendResult, error) {
	var out AppendResult
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "streams", stream, "events"), in, &out)
	return out, err
}

// ReadStream returns one page of a stream's events; NextCursor, when not
// "", is the version to read the next page from. A stream that does not
// exist answers 404 not_found.
func (c *Client) ReadStream(ctx context.Context, tenant, stream string, opts ReadStreamOptions) (Page[Event], error) {
	q := url.Values{}
	if opts.From != nil {
		q.Set("from", strconv.FormatInt(*opts.From, 10))
	}
	if opts.Backward {
		q.Set("direction", "backward")
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out Page[Event]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "streams", stream, "events")+encodeQuery(q), nil, &out)
	return out, err
}

// ReadLog returns one page of tenant's log in commit order (all streams, or
// one category); NextCursor, when not "", is the position to read the next
// page from.
func (c *Client) ReadLog(ctx context.Context, tenant string, opts ReadLogOptions) (Page[Event], error) {
	q := url.Values{}
	if opts.FromPosition > 0 {
		q.Set("from_position", strconv.FormatInt(opts.FromPosition, 10))
	}
	if opts.Category != "" {
		q.Set("category", opts.Category)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out Page[Event]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "events")+encodeQuery(q), nil, &out)
	return out, err
}

func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ExpectedVersion is the condition of an append: ExpectAny (the zero
// value), ExpectNoStream, ExpectStreamExists or ExpectVersion(v).
type ExpectedVersion struct {
	kind    string // "" (any), "no_stream", "stream_exists" or "exact"
	version int64
}

var (
	// ExpectAny accepts the stream in any state.
	ExpectAny = ExpectedVersion{}
	// ExpectNoStream requires a stream without events.
	ExpectNoStream = ExpectedVersion{kind: "no_stream"}
	// ExpectStreamExists requires a stream with at least one event.
	ExpectStreamExists = ExpectedVersion{kind: "stream_exists"}
)

// ExpectVersion requires that the stream's last event has version v (the
// first event is version 0).
func ExpectVersion(v int64) ExpectedVersion { return ExpectedVersion{kind: "exact", version: v} }

// MarshalJSON writes an exact version as a number and the others as the
// strings the server reads.
func (e ExpectedVersion) MarshalJSON() ([]byte, error) {
	switch e.kind {
	case "exact":
		return []byte(strconv.FormatInt(e.version, 10)), nil
	case "":
		return []byte(`"any"`), nil
	}
	return json.Marshal(e.kind)
}

// AppendRequest appends Events at ExpectedVersion.
type AppendRequest struct {
	ExpectedVersion ExpectedVersion `json:"expected_version"`
	Events          []EventInput    `json:"events"`
}

// EventInput is one event to append. ID is optional (a UUID); set it to
// make a retried append idempotent.
type EventInput struct {
	ID       string          `json:"id,omitempty"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// AppendResult says where an append put its events: their versions in the
// stream, and the log position of the last one (0 when the server could not
// learn it in time: read the log later).
type AppendResult struct {
	FirstVersion int64    `json:"first_version"`
	LastVersion  int64    `json:"last_version"`
	Position     int64    `json:"position"`
	EventIDs     []string `json:"event_ids"`
	Duplicate    bool     `json:"duplicate"` // an earlier append stored this very batch
}

// Event is a stored event. Version counts from 0 in its stream, Position
// from 1 in its tenant's log; a stream read may show Position 0 for an
// event the server has not placed in the log yet.
type Event struct {
	ID        string          `json:"id"`
	Stream    string          `json:"stream"`
	Type      string          `json:"type"`
	Version   int64           `json:"version"`
	Position  int64           `json:"position"`
	Data      json.RawMessage `json:"data"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt time.Time       `json:"created_at"`
}

// ReadStreamOptions choose a page of a stream: from version From (nil: the
// first event forwards, the last backwards), in version order or Backward,
// at most Limit events (0: the server's default).
type ReadStreamOptions struct {
	From     *int64
	Backward bool
	Limit    int
}

// ReadLogOptions choose a page of the log: from position FromPosition (0:
// the start), only streams of Category ("": all), at most Limit events.
type ReadLogOptions struct {
	FromPosition int64
	Category     string
	Limit        int
}
