package dlq

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"switchboard/internal/problem"
)

// Filter narrows a DLQ's messages. Zero fields match everything.
type Filter struct {
	Since  *time.Time `json:"since,omitempty"`  // captured at or after
	Until  *time.Time `json:"until,omitempty"`  // captured before
	Reason string     `json:"reason,omitempty"` // equals
	// Exception equals the exception header's value.
	Exception string `json:"exception,omitempty"`
	// Original equals the original queue, topic, exchange or routing key.
	Original string `json:"original,omitempty"`
	// Header is name=value: a header whose text equals value.
	Header string `json:"header,omitempty"`
	// Text is found (byte for byte) in the body.
	Text   string   `json:"text,omitempty"`
	Status []string `json:"status,omitempty"`
}

// Group keys.
const (
	ByReason    = "reason"
	ByException = "exception"
	ByOriginal  = "original"
)

// GroupKeys lists what messages can be grouped by.
var GroupKeys = []string{ByReason, ByException, ByOriginal}

// ParseFilter reads a filter from query parameters (since, until: RFC 3339;
// reason, exception, original, header=name=value, text, status: a
// comma-separated list).
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	bad := problem.Fields{}
	when := func(name string) *time.Time {
		s := q.Get(name)
		if s == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad.Add(name, "must be an RFC 3339 time, such as 2026-12-01T10:00:00Z")
			return nil
		}
		return &t
	}
	f.Since, f.Until = when("since"), when("until")
	f.Reason, f.Exception, f.Original, f.Header, f.Text = q.Get("reason"), q.Get("exception"), q.Get("original"), q.Get("header"), q.Get("text")
	if s := q.Get("status"); s != "" {
		f.Status = strings.Split(s, ",")
	}
	if err := bad.Err(); err != nil {
		return f, err
	}
	return f, f.Validate("")
}

// Validate checks f; prefix names the fields in errors (filter.).
func (f *Filter) Validate(prefix string) error {
	bad := problem.Fields{}
	for name, s := range map[string]string{"reason": f.Reason, "exception": f.Exception, "original": f.Original, "header": f.Header, "text": f.Text} {
		bad.Check(utf8.ValidString(s) && !strings.ContainsRune(s, 0), prefix+name, "must be UTF-8 text without NUL")
		bad.Check(len(s) <= 1024, prefix+name, "is at most 1024 bytes")
	}
	if f.Header != "" {
		name, _, ok := strings.Cut(f.Header, "=")
		bad.Check(ok && name != "", prefix+"header", "must be name=value")
	}
	for _, s := range f.Status {
		bad.Check(slices.Contains(Statuses, s), prefix+"status", "each must be one of "+strings.Join(Statuses, ", "))
	}
	if f.Since != nil && f.Until != nil {
		bad.Check(f.Since.Before(*f.Until), prefix+"until", "must be after since")
	}
	return bad.Err()
}

// IsZero says f matches everything.
func (f *Filter) IsZero() bool {
	return f.Since == nil && f.Until == nil && f.Reason == "" && f.Exception == "" && f.Original == "" && f.Header == "" && f.Text == "" && len(f.Status) == 0
}

// where appends f's conditions to a query whose arguments are args, and
// returns the conditions (each starting with " AND ") and the arguments.
func (f *Filter) where(args []any) (string, []any) {
	var b strings.Builder
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Since != nil {
		fmt.Fprintf(&b, " AND captured_at >= %s", arg(*f.Since))
	}
	if f.Until != nil {
		fmt.Fprintf(&b, " AND captured_at < %s", arg(*f.Until))
	}
	if f.Reason != "" {
		fmt.Fprintf(&b, " AND reason = %s", arg(f.Reason))
	}
	if f.Exception != "" {
		fmt.Fprintf(&b, " AND exception = %s", arg(f.Exception))
	}
	if f.Original != "" {
		p := arg(f.Original)
		fmt.Fprintf(&b, " AND (original_queue = %[1]s OR original_topic = %[1]s OR original_exchange = %[1]s OR original_routing_key = %[1]s)", p)
	}
	if f.Header != "" {
		name, value, _ := strings.Cut(f.Header, "=")
		fmt.Fprintf(&b, " AND headers->%s->>'value' = %s AND headers->%[1]s->>'type' = 'string'", arg(name), arg(value))
	}
	if f.Text != "" {
		fmt.Fprintf(&b, " AND position(%s::bytea in body) > 0", arg([]byte(f.Text)))
	}
	if len(f.Status) > 0 {
		// Replaying is a dead message a replay holds (see claimedSQL).
		var stored, either []string
		dead, replaying := slices.Contains(f.Status, Dead), slices.Contains(f.Status, Replaying)
		for _, s := range f.Status {
			if s != Dead && s != Replaying {
				stored = append(stored, s)
			}
		}
		if len(stored) > 0 {
			either = append(either, "status = ANY("+arg(stored)+")")
		}
		switch {
		case dead && replaying:
			either = append(either, "status = 'dead'")
		case dead:
			either = append(either, "(status = 'dead' AND NOT "+claimedSQL+")")
		case replaying:
			either = append(either, "(status = 'dead' AND "+claimedSQL+")")
		}
		fmt.Fprintf(&b, " AND (%s)", strings.Join(either, " OR "))
	}
	return b.String(), args
}

// groupExpr is the column a group key reads.
func groupExpr(by string) string {
	switch by {
	case ByException:
		return "exception"
	case ByOriginal:
		return "coalesce(nullif(original_queue, ''), nullif(original_topic, ''), nullif(original_exchange, ''), '')"
	}
	return "reason"
}
