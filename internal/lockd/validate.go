package lockd

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// printable reports whether s is non-empty valid UTF-8 without control
// characters.
func printable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validName accepts lock, election, owner, candidate and key names:
// 1..MaxNameLen bytes of printable UTF-8.
func validName(s string) bool { return len(s) <= MaxNameLen && printable(s) }

// validToken accepts lease tokens and request ids.
func validToken(s string) bool { return len(s) <= maxTokenLen && printable(s) }

// request collects the checks of one call into per-field messages (the JSON
// field names the REST API uses), so a bad request lists every bad field.
type request struct{ f problem.Fields }

func newRequest() *request { return &request{f: problem.Fields{}} }

func (r *request) tenant(t uuid.UUID) *request {
	r.f.Check(t != uuid.Nil, "tenant", "is required")
	return r
}

func (r *request) name(field, s string) *request {
	r.f.Check(validName(s), field, fmt.Sprintf("must be 1..%d bytes of printable UTF-8", MaxNameLen))
	return r
}

func (r *request) token(field, s string) *request {
	r.f.Check(validToken(s), field, "is missing or malformed")
	return r
}

func (r *request) ttl(d time.Duration) *request {
	r.f.Check(d >= MinTTL && d <= MaxTTL, "ttl_ms", fmt.Sprintf("must be between %d and %d", MinTTL.Milliseconds(), MaxTTL.Milliseconds()))
	return r
}

func (r *request) wait(d time.Duration) *request {
	r.f.Check(d >= 0 && d <= MaxWait, "wait_ms", fmt.Sprintf("must be between 0 and %d", MaxWait.Milliseconds()))
	return r
}

func (r *request) check(ok bool, field, msg string) *request {
	r.f.Check(ok, field, msg)
	return r
}

func (r *request) err() error { return r.f.Err() }
