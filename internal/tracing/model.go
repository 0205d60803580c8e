package tracing

import (
	"encoding/hex"
	"encoding/json"
	"time"
)

// LiveSpan is a span as the live tail sends it: without its resource,
// events and links (the trace's page reads those).
type LiveSpan struct {
	TraceID      string `json:"trace_id"` // 32 hex digits
	SpanID       string `json:"span_id"`  // 16 hex digits
	ParentSpanID string `json:"parent_span_id,omitempty"`
	// Service is the resource's service.name.
	Service string `json:"service"`
	Name    string `json:"name"`
	// Kind: unspecified, internal, server, client, producer or consumer.
	Kind       string    `json:"kind"`
	Start      time.Time `json:"start"`
	DurationNs int64     `json:"duration_ns"`
	// Status: unset, ok or error.
	Status        string          `json:"status"`
	StatusMessage string          `json:"status_message,omitempty"`
	Attributes    json.RawMessage `json:"attributes"`
}

// Span is a stored span as the API answers it.
type Span struct {
	LiveSpan
	TraceState string          `json:"trace_state,omitempty"`
	Scope      string          `json:"scope,omitempty"`
	Resource   json.RawMessage `json:"resource"`
	Events     []Event         `json:"events"`
	Links      []Link          `json:"links"`
}

// Event is a span's event.
type Event struct {
	Time       time.Time      `json:"time"`
	Name       string         `json:"name"`
	Attributes map[string]any `json:"attributes"`
}

// Link is a span's link to another span.
type Link struct {
	TraceID    string         `json:"trace_id"`
	SpanID     string         `json:"span_id"`
	TraceState string         `json:"trace_state,omitempty"`
	Attributes map[string]any `json:"attributes"`
}

// Trace is a trace found by a search: its spans summed up.
type Trace struct {
	TraceID string `json:"trace_id"`
	// Root is the span without a parent (when it arrived), else the
	// earliest span.
	RootService string    `json:"root_service"`
	RootName    string    `json:"root_name"`
	Start       time.Time `json:"start"`
	DurationNs  int64     `json:"duration_ns"`
	Spans       int       `json:"spans"`
	Errors      int       `json:"errors"`
	Services    []string  `json:"services"`
}

// Operation is a service's span name of one kind, and when it was last seen.
type Operation struct {
	Service  string    `json:"service"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	LastSeen time.Time `json:"last_seen"`
}

// Service is a service that sent spans, and when it last did.
type Service struct {
	Name     string    `json:"name"`
	LastSeen time.Time `json:"last_seen"`
}

// Settings are a tenant's tracing settings.
type Settings struct {
	// RetentionDays is how long spans are kept (1 to 90, default 7); a
	// change applies to spans that arrive after it.
	RetentionDays int `json:"retention_days"`
}

// DefaultRetentionDays is the retention of a tenant that set none.
const DefaultRetentionDays = 7

// kinds and statuses by their OTLP numbers.
var (
	kindNames   = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}
	statusNames = []string{"unset", "ok", "error"}
)

func kindName(k int16) string {
	if k < 0 || int(k) >= len(kindNames) {
		return "unspecified"
	}
	return kindNames[k]
}

func statusName(c int16) string {
	if c < 0 || int(c) >= len(statusNames) {
		return "unset"
	}
	return statusNames[c]
}

func kindNumber(name string) (int16, bool) {
	for i, n := range kindNames {
		if n == name {
			return int16(i), true
		}
	}
	return 0, false
}

func statusNumber(name string) (int16, bool) {
	for i, n := range statusNames {
		if n == name {
			return int16(i), true
		}
	}
	return 0, false
}

func hexID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}
