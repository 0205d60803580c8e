package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	problem.CodeInvalid:         http.StatusBadRequest,
	problem.CodeUnauthenticated: http.StatusUnauthorized,
	problem.CodeForbidden:       http.StatusForbidden,
	problem.CodeNotFound:        http.StatusNotFound,
	problem.CodeConflict:        http.StatusConflict,
	problem.CodePrecondition:    http.StatusPreconditionFailed,
	problem.CodeTooLarge:        http.StatusRequestEntityTooLarge,
	problem.CodeUnsupported:     http.StatusUnsupportedMediaType,
	problem.CodeRateLimited:     http.StatusTooManyRequests,
	problem.CodeUnavailable:     http.StatusServiceUnavailable,
	problem.CodeUnprocessable:   http.StatusUnprocessableEntity,
	problem.CodeBadGateway:      http.StatusBadGateway,
	problem.CodeInternal:        http.StatusInternalServerError,
	codeMethodNotAllowed:        http.StatusMethodNotAllowed,
}

const codeMethodNotAllowed = "method_not_allowed"

// StatusOf returns the HTTP status of an error code (500 for unknown ones).
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem document with Switchboard's extensions.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail"`
	Code      string            `json:"code"`
	Instance  string            `json:"instance,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
}

// fromEcho turns the router's own errors (no route, wrong method, body too
// large) into application errors.
func fromEcho(he *echo.HTTPError) *problem.Error {
	switch he.Code {
	case http.StatusNotFound:
		return problem.Errorf(problem.CodeNotFound, "no such resource")
	case http.StatusMethodNotAllowed:
		return problem.Errorf(codeMethodNotAllowed, "method not allowed on this resource")
	case http.StatusRequestEntityTooLarge:
		return problem.Errorf(problem.CodeTooLarge, "the request body is too large")
	case http.StatusUnauthorized:
		return problem.Errorf(problem.CodeUnauthenticated, "missing or invalid credentials")
	case http.StatusForbidden:
		return problem.Errorf(problem.CodeForbidden, "forbidden")
	case http.StatusTooManyRequests:
		return problem.Errorf(problem.CodeRateLimited, "too many requests")
	case http.StatusServiceUnavailable:
		return problem.Errorf(problem.CodeUnavailable, "service unavailable")
	}
	if he.Code >= 400 && he.Code < 500 {
		return problem.Errorf(problem.CodeInvalid, "%s", http.StatusText(he.Code))
	}
	return nil
}

// ProblemFor returns the problem document for err; errors that are not
// application errors are logged and answered without internals.
func ProblemFor(ctx context.Context, log *slog.Logger, err error, path string) Problem {
	pe, ok := problem.As(err)
	if !ok {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			pe = fromEcho(he)
			ok = pe != nil
		}
	}
	if !ok {
		if !errors.Is(err, context.Canceled) {
			log.ErrorContext(ctx, "internal error", "err", err, "path", path)
		}
		pe = problem.Errorf(problem.CodeInternal, "an internal error occurred; quote the request id when reporting it")
	}
	status := StatusOf(pe.Code)
	return Problem{
		Type:      "urn:switchboard:problem:" + pe.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    pe.Message,
		Code:      pe.Code,
		Instance:  path,
		RequestID: RequestID(ctx),
		Errors:    pe.Fields,
	}
}

// ErrorRenderer lets a face answer errors on its own routes (the UI draws
// pages); it returns true when it wrote the response.
type ErrorRenderer func(c echo.Context, p Problem) bool

// errorHandler is echo's HTTPErrorHandler for the whole server.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	req := c.Request()
	p := ProblemFor(req.Context(), s.log, err, req.URL.Path)
	if pe, ok := problem.As(err); ok && pe.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	for _, r := range s.renderers {
		if r(c, p) {
			return
		}
	}
	WriteProblem(c, p)
}

// WriteProblem answers p as application/problem+json.
func WriteProblem(c echo.Context, p Problem) {
	h := c.Response().Header()
	if p.Status == http.StatusUnauthorized {
		h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method == http.MethodHead {
		return
	}
	_ = WriteJSON(c.Response(), p) // the client went away: nothing to tell it
}

// WriteJSON encodes v without escaping HTML characters (JSON answers are
// not HTML, and nosniff keeps browsers from reading them as such).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
