package api

import (
	"context"
	"errors"
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
	problem.CodeInternal:        http.StatusInternalServerError,
	"method_not_allowed":        http.StatusMethodNotAllowed,
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
	msg := http.StatusText(he.Code)
	switch he.Code {
	case http.StatusNotFound:
		return problem.Errorf(problem.CodeNotFound, "no such resource")
	case http.StatusMethodNotAllowed:
		return problem.Errorf("method_not_allowed", "method not allowed on this resource")
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
		return problem.Errorf(problem.CodeInvalid, "%s", msg)
	}
	return nil
}

// ProblemFor returns the problem document and status for err; errors that
// are not application errors are logged and answered without internals.
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
	status, known := statusOf[pe.Code]
	if !known {
		status = http.StatusInternalServerError
	}
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

// errorHandler is echo's HTTPErrorHandler for the whole server.
func (a *API) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	req := c.Request()
	p := ProblemFor(req.Context(), a.log, err, req.URL.Path)
	if pe, ok := problem.As(err); ok && pe.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	if a.onError != nil && a.onError(c, p) {
		return
	}
	if p.Status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if req.Method == http.MethodHead {
		return
	}
	if err := writeJSON(c.Response(), p); err != nil {
		a.log.DebugContext(req.Context(), "write problem", "err", err)
	}
}
