package views

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"switchboard/internal/dlq"
	"switchboard/internal/tracing"
)

// TracesPath is the browser path of the trace search; rest, when given,
// is appended ("/live", "/" + a trace id).
func TracesPath(tenant, rest string) string {
	return TenantPath(tenant, SectionTraces) + rest
}

// TracePath is the browser path of a trace's page.
func TracePath(tenant, traceID string) string { return TracesPath(tenant, "/"+url.PathEscape(traceID)) }

// TraceLinkOf is the trace page of a W3C traceparent
// ("00-<trace id>-<span id>-<flags>") with its span selected; "" when it
// is not one.
func TraceLinkOf(tenant, traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 || !isHex(parts[1]) || !isHex(parts[2]) {
		return ""
	}
	return TracePath(tenant, strings.ToLower(parts[1])) + "?span=" + strings.ToLower(parts[2])
}

func isHex(s string) bool { return strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" }

// TraceWindows are the search's time windows, newest first.
var TraceWindows = []Option{{Value: "15m", Label: "Last 15 minutes"}, {Value: "1h", Label: "Last hour"},
	{Value: "6h", Label: "Last 6 hours"}, {Value: "24h", Label: "Last day"}, {Value: "168h", Label: "Last 7 days"}}

// TraceStatuses are the status filter's choices.
var TraceStatuses = []Option{{Value: "", Label: "Any status"}, {Value: "error", Label: "Errors"}, {Value: "ok", Label: "OK"}, {Value: "unset", Label: "Unset"}}

// TraceSearchView is what TraceSearchPage shows.
type TraceSearchView struct {
	// Filter holds the form's values by query parameter: service,
	// operation, status, min_duration, max_duration, attr, window.
	Filter   map[string]string
	Services []string
	Traces   []tracing.Trace
	// Cursor is this page's, NextCursor the next one's ("": the last).
	Cursor, NextCursor string
	// Err says what is wrong with the filter.
	Err string
}

// NextPage is the link to the next page of the same search.
func (v TraceSearchView) NextPage(tenant string) string {
	q := url.Values{}
	for k, val := range v.Filter {
		if val != "" {
			q.Set(k, val)
		}
	}
	q.Set("cursor", v.NextCursor)
	return TracesPath(tenant, "") + "?" + q.Encode()
}

// TraceView is what TracePage shows.
type TraceView struct {
	TraceID string
	Rows    []tracing.Row
	Start   time.Time
	Total   time.Duration
	// Services are the services with spans in the trace, in the order
	// their first span appears.
	Services []string
	Errors   int
	// DeadLetters are the captured dead letters whose traceparent names
	// the trace, in DLQs the caller may read.
	DeadLetters []dlq.TracedMessage
	// Selected is the span whose details are open (?span=), if any.
	Selected *tracing.Row
}

// DeadLettersOf are the dead letters span sent.
func (v TraceView) DeadLettersOf(spanID string) []dlq.TracedMessage {
	var out []dlq.TracedMessage
	for _, m := range v.DeadLetters {
		if m.SpanID == spanID {
			out = append(out, m)
		}
	}
	return out
}

// SpanDetails is what a span's details panel shows.
type SpanDetails struct {
	Row         tracing.Row
	DeadLetters []dlq.TracedMessage
}

// DeadLetterLink is a dead letter's DLQ page, filtered to the message.
func DeadLetterLink(tenant string, m dlq.TracedMessage) string {
	return DLQPath(tenant, m.DLQ) + "?header=" + url.QueryEscape("traceparent="+m.Traceparent)
}

// Duration writes a span's duration for people: 850µs, 12.4ms, 3.21s.
func Duration(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

// ShortID is the first 8 digits of a trace or span id.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// barPercent writes a bar's offset or width for an SVG attribute.
func barPercent(f float64) string { return fmt.Sprintf("%.3f%%", f) }

// rowClass is a waterfall row's classes.
func rowClass(r tracing.Row) string {
	c := "wf-row"
	if r.Status == "error" {
		c += " wf-error"
	}
	if r.Critical {
		c += " wf-critical"
	}
	return c
}

// attributePairs turns attributes (a JSON object) into key/value pairs
// sorted by key; a string is shown as it is, anything else as JSON.
func attributePairs(raw []byte) []Option {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return mapPairs(m)
}

func mapPairs(m map[string]any) []Option {
	out := make([]Option, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, ok := m[k].(string)
		if !ok {
			b, _ := json.Marshal(m[k])
			v = string(b)
		}
		out = append(out, Option{Value: k, Label: v})
	}
	return out
}
