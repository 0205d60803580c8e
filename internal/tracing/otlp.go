package tracing

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Limits on one span; a span over any of them is rejected (counted in the
// answer's partial success, with why), never stored cut short.
const (
	MaxAttributes = 128      // on the span, on each event, on each link
	MaxEvents     = 128      // events of a span
	MaxLinks      = 128      // links of a span
	MaxNameBytes  = 1024     // the span's name
	MaxSpanBytes  = 64 << 10 // attributes, events and links encoded
	// MaxAhead is how far in the future a span may start (clocks drift).
	MaxAhead = time.Hour
)

// row is one span as it is written, with what the live tail filters on.
type row struct {
	traceID, spanID, parentID []byte
	service, name             string
	kind, status              int16
	start                     time.Time
	durationNs                int64
	statusMessage             string
	traceState                string
	scope                     string
	expiresOn                 time.Time
	attributes, resource      []byte
	events, links             []byte
	attrIndex                 []string
	// attrs are the span's attributes as they arrived, valid while the
	// request is (the live tail's filters read them).
	attrs pcommon.Map
}

// Batch is a decoded OTLP request: the spans to store and those rejected.
type Batch struct {
	rows     []row
	Rejected int
	// Reasons says why spans were rejected (the first few).
	Reasons []string
}

// Len is how many spans the batch stores.
func (b *Batch) Len() int { return len(b.rows) }

// Message is the rejection in words, for OTLP's partial success.
func (b *Batch) Message() string {
	if b.Rejected == 0 {
		return ""
	}
	return fmt.Sprintf("%d span(s) rejected: %s", b.Rejected, strings.Join(b.Reasons, "; "))
}

func (b *Batch) reject(why string) {
	b.Rejected++
	if len(b.Reasons) < 3 {
		b.Reasons = append(b.Reasons, why)
	}
}

// Decode turns OTLP traces into rows for a tenant keeping spans
// retentionDays, as of now. indexed names the attribute keys whose
// "key=value" pairs are indexed for search.
func Decode(td ptrace.Traces, now time.Time, retentionDays int, indexed map[string]bool) *Batch {
	b := &Batch{rows: make([]row, 0, td.SpanCount())}
	oldest := now.AddDate(0, 0, -retentionDays)
	newest := now.Add(MaxAhead)
	var buf []byte
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		service := "unknown_service"
		if v, ok := res.Get("service.name"); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
			service = text(v.Str())
		}
		resource := appendMap(nil, res)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := text(ss.Scope().Name())
			if v := ss.Scope().Version(); v != "" {
				scope += "@" + text(v)
			}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				r, why := decodeSpan(sp, &buf, oldest, newest, retentionDays, indexed)
				if why != "" {
					b.reject(why)
					continue
				}
				r.service, r.scope, r.resource = service, scope, resource
				b.rows = append(b.rows, r)
			}
		}
	}
	return b
}

func decodeSpan(sp ptrace.Span, buf *[]byte, oldest, newest time.Time, retentionDays int, indexed map[string]bool) (row, string) {
	tid, sid := sp.TraceID(), sp.SpanID()
	name := sp.Name()
	switch {
	case tid.IsEmpty():
		return row{}, fmt.Sprintf("span %q has no trace id (all zero)", name)
	case sid.IsEmpty():
		return row{}, fmt.Sprintf("span %q of trace %s has no span id (all zero)", name, tid)
	case len(name) > MaxNameBytes:
		return row{}, fmt.Sprintf("span %s has a name of %d bytes; at most %d", sid, len(name), MaxNameBytes)
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return row{}, fmt.Sprintf("span %s has a name that is not UTF-8 text", sid)
	}
	start, end := sp.StartTimestamp(), sp.EndTimestamp()
	switch {
	case start == 0:
		return row{}, fmt.Sprintf("span %s has no start time", sid)
	case end < start:
		return row{}, fmt.Sprintf("span %s ends before it starts", sid)
	case end-start > math.MaxInt64:
		return row{}, fmt.Sprintf("span %s lasts too long", sid)
	}
	st := start.AsTime()
	if st.Before(oldest) {
		return row{}, fmt.Sprintf("span %s starts at %s, before the tenant's retention of %d days", sid, st.UTC().Format(time.RFC3339), retentionDays)
	}
	if st.After(newest) {
		return row{}, fmt.Sprintf("span %s starts at %s, more than %s ahead of this server's clock", sid, st.UTC().Format(time.RFC3339), MaxAhead)
	}
	attrs, events, links := sp.Attributes(), sp.Events(), sp.Links()
	switch {
	case attrs.Len() > MaxAttributes:
		return row{}, fmt.Sprintf("span %s has %d attributes; at most %d", sid, attrs.Len(), MaxAttributes)
	case events.Len() > MaxEvents:
		return row{}, fmt.Sprintf("span %s has %d events; at most %d", sid, events.Len(), MaxEvents)
	case links.Len() > MaxLinks:
		return row{}, fmt.Sprintf("span %s has %d links; at most %d", sid, links.Len(), MaxLinks)
	}
	r := row{traceID: clone(tid[:]), spanID: clone(sid[:]), name: name, kind: int16(sp.Kind()), status: int16(sp.Status().Code()),
		start: st, durationNs: int64(end - start), statusMessage: text(sp.Status().Message()), traceState: text(sp.TraceState().AsRaw()), attrs: attrs}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		r.parentID = clone(p[:])
	}
	if r.kind < 0 || int(r.kind) >= len(kindNames) {
		r.kind = 0
	}
	if r.status < 0 || int(r.status) >= len(statusNames) {
		r.status = 0
	}
	day := time.Date(st.UTC().Year(), st.UTC().Month(), st.UTC().Day(), 0, 0, 0, 0, time.UTC)
	r.expiresOn = day.AddDate(0, 0, retentionDays)

	size := 0
	*buf = appendMap((*buf)[:0], attrs)
	r.attributes = clone(*buf)
	size += len(r.attributes)
	*buf = append((*buf)[:0], '[')
	for i := 0; i < events.Len(); i++ {
		e := events.At(i)
		if e.Attributes().Len() > MaxAttributes {
			return row{}, fmt.Sprintf("span %s has an event with %d attributes; at most %d", sid, e.Attributes().Len(), MaxAttributes)
		}
		if i > 0 {
			*buf = append(*buf, ',')
		}
		*buf = append(*buf, `{"time":`...)
		*buf = appendString(*buf, e.Timestamp().AsTime().UTC().Format(time.RFC3339Nano))
		*buf = append(*buf, `,"name":`...)
		*buf = appendString(*buf, e.Name())
		*buf = append(*buf, `,"attributes":`...)
		*buf = appendMap(*buf, e.Attributes())
		*buf = append(*buf, '}')
	}
	*buf = append(*buf, ']')
	r.events = clone(*buf)
	size += len(r.events)
	*buf = append((*buf)[:0], '[')
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if l.Attributes().Len() > MaxAttributes {
			return row{}, fmt.Sprintf("span %s has a link with %d attributes; at most %d", sid, l.Attributes().Len(), MaxAttributes)
		}
		if i > 0 {
			*buf = append(*buf, ',')
		}
		ltid, lsid := l.TraceID(), l.SpanID()
		*buf = append(*buf, `{"trace_id":`...)
		*buf = appendString(*buf, ltid.String())
		*buf = append(*buf, `,"span_id":`...)
		*buf = appendString(*buf, lsid.String())
		if ts := l.TraceState().AsRaw(); ts != "" {
			*buf = append(*buf, `,"trace_state":`...)
			*buf = appendString(*buf, ts)
		}
		*buf = append(*buf, `,"attributes":`...)
		*buf = appendMap(*buf, l.Attributes())
		*buf = append(*buf, '}')
	}
	*buf = append(*buf, ']')
	r.links = clone(*buf)
	size += len(r.links)
	if size > MaxSpanBytes {
		return row{}, fmt.Sprintf("span %s carries %d bytes of attributes, events and links; at most %d", sid, size, MaxSpanBytes)
	}
	r.attrIndex = noPairs
	if len(indexed) > 0 {
		for k, v := range attrs.All() {
			if indexed[k] {
				if s, ok := scalarText(v); ok {
					r.attrIndex = append(r.attrIndex, text(k+"="+s))
				}
			}
		}
	}
	return r, ""
}

// noPairs is the attr_index of a span without indexed attributes (the
// column takes no NULL).
var noPairs = []string{}

// scalarText is a scalar attribute's value as text (for "key=value"
// matching); maps, slices and bytes have none.
func scalarText(v pcommon.Value) (string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str(), true
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10), true
	case pcommon.ValueTypeBool:
		return strconv.FormatBool(v.Bool()), true
	case pcommon.ValueTypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64), true
	}
	return "", false
}

// text is s as PostgreSQL text takes it: UTF-8 without NUL (either
// becomes U+FFFD).
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// appendMap appends m as a JSON object. Attributes are encoded here, not
// through encoding/json's reflection, because every span has some and the
// ingest does little else.
func appendMap(b []byte, m pcommon.Map) []byte {
	b = append(b, '{')
	first := true
	for k, v := range m.All() {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, v)
	}
	return append(b, '}')
}

func appendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return append(b, `"NaN"`...)
		case math.IsInf(f, 1):
			return append(b, `"+Inf"`...)
		case math.IsInf(f, -1):
			return append(b, `"-Inf"`...)
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes().AsRaw())
		return append(b, '"')
	case pcommon.ValueTypeMap:
		return appendMap(b, v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = append(b, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, s.At(i))
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; bytes that are not UTF-8, and
// NUL, become U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case 0:
				// PostgreSQL's jsonb takes no NUL character.
				b = append(b, `\ufffd`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
