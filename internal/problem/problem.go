// Package problem holds the one error type of Switchboard. Domain code returns
// *Error values with a stable Code; the HTTP layer maps codes to statuses in
// one table. Any error that is not a *Error is an internal error whose message
// is never shown to callers.
package problem

import (
	"errors"
	"fmt"
)

// Codes are stable: clients match on them.
const (
	CodeInvalid         = "invalid"           // 400: malformed request, bad field values
	CodeUnauthenticated = "unauthenticated"   // 401: no or bad credentials
	CodeForbidden       = "forbidden"         // 403: authenticated but not allowed
	CodeNotFound        = "not_found"         // 404: missing, or another tenant's
	CodeConflict        = "conflict"          // 409: duplicate or version clash
	CodePrecondition    = "precondition"      // 412: If-Match did not match
	CodeUnprocessable   = "unprocessable"     // 422: well-formed, but names what does not exist or is not allowed
	CodeTooLarge        = "too_large"         // 413: request body over the limit
	CodeUnsupported     = "unsupported_media" // 415: wrong Content-Type
	CodeRateLimited     = "rate_limited"      // 429: slow down
	CodeBadGateway      = "bad_gateway"       // 502: an outside system (a broker) did not answer well
	CodeUnavailable     = "unavailable"       // 503: a dependency is not ready
	CodeInternal        = "internal"          // 500: a bug or an outage; details only in logs
)

// Error is an application error: Message is safe to show to the caller.
type Error struct {
	Code    string
	Message string
	// Fields holds per-field validation messages, keyed by JSON field path.
	Fields map[string]string
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error listing each bad field.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: CodeInvalid, Message: "the request has invalid fields", Fields: fields}
}

// NotFound returns the standard not-found error for a kind of object.
func NotFound(kind, name string) *Error {
	return Errorf(CodeNotFound, "%s %q not found", kind, name)
}

// Code returns the code of err, or CodeInternal for errors that are not
// application errors.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Fields collects per-field validation messages; its Err is nil when none
// were added, so validators read as a list of checks.
type Fields map[string]string

// Add records msg for field unless the field already has a message.
func (f Fields) Add(field, msg string) {
	if _, ok := f[field]; !ok {
		f[field] = msg
	}
}

// Check adds msg for field when ok is false.
func (f Fields) Check(ok bool, field, msg string) {
	if !ok {
		f.Add(field, msg)
	}
}

// Err returns an Invalid error when any field was added, else nil.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return Invalid(f)
}
