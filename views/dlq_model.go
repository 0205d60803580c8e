package views

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"switchboard/internal/dlq"
)

// DLQPath is the browser path of a DLQ's page.
func DLQPath(tenant, ref string) string {
	return TenantPath(tenant, SectionDLQ) + "/" + url.PathEscape(ref)
}

// DLQOverview is what DLQOverviewPage shows.
type DLQOverview struct {
	DLQs []dlq.DLQ
}

// DLQView is what DLQPage shows.
type DLQView struct {
	DLQ        dlq.DLQ
	Filter     map[string]string // the filter's query parameters
	FilterErr  string
	Messages   []dlq.Message
	NextCursor string
	// Cursor is the page's own cursor: not empty past the first page.
	Cursor  string
	Groups  []dlq.Group
	GroupBy string
	Replays []dlq.Replay
	// Watch is the replay whose progress the page shows (nil: none).
	Watch      *dlq.Replay
	Plan       *dlq.Plan
	CanReplay  bool
	CanDiscard bool
	// CanSettings: the caller may pause capture and set redaction.
	CanSettings bool
	Payloads    bool // the caller reads payloads unredacted
	// InPlace is a Kafka DLQ topic's page read where it lies (?in_place=1,
	// partition, offset); InPlaceErr why it could not be read.
	InPlace    *dlq.InPlace
	InPlaceErr string
}

// Kafka says the DLQ is a Kafka topic.
func (v DLQView) Kafka() bool { return v.DLQ.Kafka != nil }

// InPlacePath is the page reading partition from offset in place.
func (v DLQView) InPlacePath(tenant string, partition int32, offset int64) string {
	return DLQPath(tenant, v.DLQ.Ref) + fmt.Sprintf("?in_place=1&partition=%d&offset=%d#in-place", partition, offset)
}

// InPlaceStart is the first offset the read partition still holds.
func (v DLQView) InPlaceStart() int64 {
	if v.InPlace == nil {
		return 0
	}
	for _, p := range v.InPlace.Partitions {
		if p.Partition == v.InPlace.Partition {
			return p.Start
		}
	}
	return 0
}

// Preview is the start of a message's body for a table cell.
func Preview(m dlq.Message) string {
	switch m.BodyEncoding {
	case "redacted":
		return "(hidden)"
	case "base64":
		return fmt.Sprintf("(%d bytes, binary)", m.BodySize)
	}
	if r := []rune(m.Body); len(r) > 120 {
		return string(r[:120]) + "…"
	}
	return m.Body
}

// FilterQuery is the page's filter as a query string (without "?").
func (v DLQView) FilterQuery() string {
	q := url.Values{}
	for k, val := range v.Filter {
		if strings.TrimSpace(val) != "" {
			q.Set(k, val)
		}
	}
	return q.Encode()
}

// Live says whether a message captured now belongs at the top of the
// page's table: on the first page of the unfiltered list it does; on any
// other, the page only counts what came.
func (v DLQView) Live() bool {
	return v.FilterQuery() == "" && v.Cursor == ""
}

// Percent is how far r has come, 0 to 100.
func Percent(r *dlq.Replay) int {
	if r == nil || r.Counts.Total == 0 {
		return 0
	}
	return (r.Counts.Confirmed + r.Counts.Failed + r.Counts.Skipped) * 100 / r.Counts.Total
}

// PrettyBody is a message's body as the drawer shows it: JSON indented,
// text as it is, binary as a hex dump.
func PrettyBody(m dlq.Message) string {
	switch m.BodyEncoding {
	case "redacted":
		return "(payload hidden: you may browse this DLQ but not read its payloads)"
	case "base64":
		b, err := base64.StdEncoding.DecodeString(m.Body)
		if err != nil {
			return m.Body
		}
		return hex.Dump(b)
	}
	var v any
	if json.Unmarshal([]byte(m.Body), &v) == nil {
		if b, err := json.MarshalIndent(v, "", "  "); err == nil {
			return string(b)
		}
	}
	return m.Body
}

// HeaderText is a header value as text.
func HeaderText(v dlq.Value) string {
	if v.Type == "redacted" {
		return "[redacted]"
	}
	if s, ok := v.Text(); ok {
		return s
	}
	// Tables and arrays (x-death) as plain JSON, without the types of
	// their members; times as RFC 3339.
	x, err := v.Decode()
	if err != nil {
		return string(v.Value)
	}
	if t, ok := x.(time.Time); ok {
		return t.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return string(v.Value)
	}
	return string(b)
}

// Destination says where a message was going.
func Destination(d dlq.Destination) string {
	switch {
	case d.Topic != "":
		return "topic " + d.Topic
	case d.Queue != "" && d.Exchange == "":
		return "queue " + d.Queue
	case d.Exchange != "" || d.RoutingKey != "":
		s := "exchange " + quoteEmpty(d.Exchange) + ", key " + quoteEmpty(d.RoutingKey)
		if d.Queue != "" {
			s += " (queue " + d.Queue + ")"
		}
		return s
	}
	return "unknown"
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func sortedHeaderNames(h dlq.Headers) []string {
	return slices.Sorted(maps.Keys(h))
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// BodyKind says how the drawer shows a message's body.
func BodyKind(m dlq.Message) string {
	switch m.BodyEncoding {
	case "redacted":
		return "payload hidden"
	case "base64":
		return "binary (hex dump)"
	}
	var v any
	if json.Unmarshal([]byte(m.Body), &v) == nil {
		return "JSON"
	}
	return "text"
}

// DLQMessageView is a message's drawer: the message and what the one
// looking at it may do with it.
type DLQMessageView struct {
	// Tenant is the organisation's slug, for links (the trace).
	Tenant  string
	Message dlq.Message
	// CanReplay: the viewer may replay this DLQ (the drawer offers "Edit
	// and replay").
	CanReplay bool
	// Payloads: the viewer reads payloads unredacted.
	Payloads bool
}

// EditRefused says why the drawer offers no edit of the message ("": it
// does). An edit starts from what the form shows, so a message whose
// payload is hidden from the viewer is not edited: the replay would carry
// the redacted text.
func (v DLQMessageView) EditRefused() string {
	m := v.Message
	switch {
	case m.Status != dlq.Dead:
		return "Only a dead message is replayed; this one is " + m.Status + "."
	case m.Held:
		return "The loop guard holds this message back: it was replayed and died again too often, so it is left out of replays."
	case m.Truncated:
		return "Only the first part of this message's body is stored (it was over the capture's size cap), so it cannot be replayed."
	case !v.Payloads || m.BodyEncoding == "redacted":
		return "You may replay this DLQ but not read its payloads: an edit would start from the redacted text and replay it. Replay it unedited from the table instead."
	}
	return ""
}

// BodyEditable says whether the drawer's form edits the body as text: not
// for a binary body, which a text box would change.
func (v DLQMessageView) BodyEditable() bool {
	return v.Message.BodyEncoding == "text"
}

// BodyIsJSON says whether the form checks that the edited body parses as
// JSON: its content type says JSON, or it is a JSON object or array.
func (v DLQMessageView) BodyIsJSON() bool {
	m := v.Message
	if strings.Contains(strings.ToLower(m.ContentType), "json") {
		return true
	}
	s := strings.TrimSpace(m.Body)
	return (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) && json.Valid([]byte(s))
}

// EditBody is the body as the form's text box starts: JSON indented (its
// keys in their order and its numbers as written, unlike the drawer's
// view), other text as it is.
func (v DLQMessageView) EditBody() string {
	body := v.Message.Body
	if v.BodyIsJSON() {
		var buf bytes.Buffer
		if json.Indent(&buf, []byte(body), "", "  ") == nil {
			body = buf.String()
		}
	}
	// HTML drops a newline just after <textarea>: keep the body's own.
	if strings.HasPrefix(body, "\n") || strings.HasPrefix(body, "\r\n") {
		body = "\n" + body
	}
	return body
}

// Header edit modes of the drawer's form.
const (
	HeaderEdit   = "edit"   // the value can be changed, the header removed
	HeaderRemove = "remove" // a value the form cannot show as text: it can only be removed
	HeaderBroker = "broker" // set by the broker or the replay: read-only
)

// EditHeader is one row of the form's headers table.
type EditHeader struct {
	Name string
	Type string
	// Text is the value as the form shows it (and, in HeaderEdit mode,
	// edits it).
	Text string
	Mode string
}

// BrokerSetHeader says whether the broker (dead-lettering, redelivery) or
// a replay sets header k; the form shows it read-only.
func BrokerSetHeader(k string) bool {
	k = strings.ToLower(k)
	return k == "x-death" || k == "x-delivery-count" || strings.HasPrefix(k, "x-first-death-") ||
		strings.HasPrefix(k, "x-last-death-") || strings.HasPrefix(k, "x-switchboard-")
}

// editableTypes are the header types the form edits as text; it sends an
// edited value with the type it had.
var editableTypes = map[string]bool{"string": true, "bool": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"uint8": true, "uint16": true, "uint32": true, "float32": true, "float64": true, "timestamp": true}

// EditHeaders are the message's headers as the form's table has them, by
// name.
func (v DLQMessageView) EditHeaders() []EditHeader {
	h := v.Message.Headers
	out := make([]EditHeader, 0, len(h))
	for _, k := range sortedHeaderNames(h) {
		val := h[k]
		e := EditHeader{Name: k, Type: val.Type, Text: HeaderText(val), Mode: HeaderRemove}
		_, isText := val.Text()
		switch {
		case BrokerSetHeader(k):
			e.Mode = HeaderBroker
		case editableTypes[val.Type], val.Type == "bytes" && isText:
			e.Mode = HeaderEdit
		}
		out = append(out, e)
	}
	return out
}

// DLQKind is the kind of the DLQ holding m: queue or topic.
func DLQKind(m dlq.Message) string {
	kind, _, _ := strings.Cut(m.DLQ, ":")
	return kind
}

// DefaultExchange and DefaultRoutingKey are what the form's RabbitMQ
// target starts as: where the message was going (a queue alone: through
// the default exchange).
func DefaultExchange(m dlq.Message) string { return m.Original.Exchange }

// DefaultRoutingKey: see DefaultExchange.
func DefaultRoutingKey(m dlq.Message) string {
	if m.Original.Exchange == "" && m.Original.RoutingKey == "" {
		return m.Original.Queue
	}
	return m.Original.RoutingKey
}
