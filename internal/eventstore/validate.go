package eventstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// maxNameBytes bounds stream names, categories and event types.
const maxNameBytes = 200

// checkName reports why s is not a valid stream name, category or event
// type, or "" when it is.
func checkName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxNameBytes:
		return fmt.Sprintf("must be at most %d bytes", maxNameBytes)
	case !utf8.ValidString(s):
		return "must be UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not contain control characters"
	}
	return ""
}

// checkStream validates a stream name. Names starting with "$" are kept for
// the log's own pseudo-streams ($all).
func checkStream(f problem.Fields, field, name string) {
	if msg := checkName(name); msg != "" {
		f.Add(field, msg)
	} else if strings.HasPrefix(name, "$") {
		f.Add(field, `must not start with "$"`)
	}
}

// CategoryOf returns the category of a stream: the part of its name before
// the first "-", or the whole name when there is none (or it comes first).
func CategoryOf(stream string) string {
	if i := strings.IndexByte(stream, '-'); i > 0 {
		return stream[:i]
	}
	return stream
}

// validJSON reports whether b is JSON, or empty when not required.
func validJSON(b json.RawMessage, required bool) bool {
	if len(b) == 0 {
		return !required
	}
	return json.Valid(b)
}

// validateAppend checks an append and fills in missing event ids.
func (s *Store) validateAppend(stream string, expected ExpectedVersion, events []EventData) error {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if expected.kind == expectExact && expected.version < 0 {
		f.Add("expected_version", "must not be negative")
	}
	switch {
	case len(events) == 0:
		f.Add("events", "must hold at least one event")
	case len(events) > s.cfg.MaxBatchEvents:
		f.Add("events", fmt.Sprintf("must hold at most %d events", s.cfg.MaxBatchEvents))
	}
	size := 0
	seen := make(map[uuid.UUID]int, len(events))
	for i := range events {
		e := &events[i]
		p := func(field string) string { return fmt.Sprintf("events[%d].%s", i, field) }
		if e.ID == uuid.Nil {
			e.ID = uuid.New()
		}
		if j, dup := seen[e.ID]; dup {
			f.Add(p("id"), fmt.Sprintf("repeats events[%d].id", j))
		}
		seen[e.ID] = i
		if msg := checkName(e.Type); msg != "" {
			f.Add(p("type"), msg)
		}
		size += len(e.Type) + len(e.Data) + len(e.Metadata)
		if !validJSON(e.Data, true) {
			f.Add(p("data"), "must be JSON")
		}
		if !validJSON(e.Metadata, false) {
			f.Add(p("metadata"), "must be JSON")
		}
	}
	if size > s.cfg.MaxBatchBytes {
		f.Add("events", fmt.Sprintf("must total at most %d bytes", s.cfg.MaxBatchBytes))
	}
	return f.Err()
}

func (s *Store) checkLimit(f problem.Fields, limit int) int {
	if limit < 1 {
		f.Add("limit", "must be at least 1")
	}
	return min(limit, s.cfg.MaxPageSize)
}

func checkMetadata(m StreamMetadata) error {
	f := problem.Fields{}
	if m.MaxCount != nil && *m.MaxCount < 1 {
		f.Add("max_count", "must be at least 1")
	}
	if m.MaxAgeSeconds != nil && *m.MaxAgeSeconds < 1 {
		f.Add("max_age", "must be at least 1 (seconds)")
	}
	if m.TruncateBefore != nil && *m.TruncateBefore < 0 {
		f.Add("truncate_before", "must not be negative")
	}
	return f.Err()
}
