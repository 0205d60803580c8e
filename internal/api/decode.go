package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads a JSON request body into v strictly: the Content-Type must
// be JSON, unknown fields and trailing data are rejected, and the body may
// not exceed MaxBodyBytes.
func decodeJSON(c echo.Context, v any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem.Errorf(problem.CodeUnsupported, "the request body must be application/json")
		}
	}
	body, err := readBody(req)
	if err != nil {
		return err
	}
	return DecodeStrict(body, v)
}

// readBody reads a request body of at most MaxBodyBytes, however it is
// framed (a Content-Length or chunks).
func readBody(req *http.Request) ([]byte, error) {
	tooLarge := problem.Errorf(problem.CodeTooLarge, "the request body is larger than %d bytes", MaxBodyBytes)
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBodyBytes+1))
	var mbe *http.MaxBytesError
	var he *echo.HTTPError
	switch {
	case err == nil && len(body) > MaxBodyBytes,
		errors.As(err, &mbe),
		errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
		return nil, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, problem.Errorf(problem.CodeInvalid, "the request body did not arrive in time")
	case err != nil:
		return nil, problem.Errorf(problem.CodeInvalid, "could not read the request body")
	}
	return body, nil
}

// bodyDeadline gives a request's body timeout to arrive, so a client that
// sends its headers and then trickles or stalls cannot hold a connection
// (and a handler) forever. The HTTP server lifts the deadline once the body
// has been read to its end, so a long-polling request (a lock acquire with
// wait_ms) waits as long as it asks. Requests without a body, WebSocket
// upgrades among them, are left alone.
func bodyDeadline(timeout time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
				_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(timeout))
			}
			return next(c)
		}
	}
}

// DecodeStrict decodes one JSON value from body into v, rejecting unknown
// fields and trailing data, and describes what was wrong in terms of the
// request's fields.
func DecodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.Errorf(problem.CodeInvalid, "the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	if dec.More() {
		return problem.Errorf(problem.CodeInvalid, "the request body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.Errorf(problem.CodeInvalid, "the request body holds more than one JSON value")
	}
	return nil
}

func describeDecodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return problem.Errorf(problem.CodeInvalid, "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.Errorf(problem.CodeInvalid, "malformed JSON: the body ends too early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return problem.Errorf(problem.CodeInvalid, "the request body must be a JSON %s", jsonKind(typ.Type.Kind().String()))
		}
		if typ.Value == "number" || strings.HasPrefix(typ.Value, "number ") {
			// A number that does not fit: a fraction, a sign or a size the
			// field cannot take.
			return problem.Invalid(map[string]string{field: "must be " + numberRange(typ.Type.Kind())})
		}
		return problem.Invalid(map[string]string{field: "must be " + article(jsonKind(typ.Type.Kind().String()))})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return problem.Invalid(map[string]string{name: "is not a known field"})
	}
	var pe *problem.Error
	if errors.As(err, &pe) {
		return pe
	}
	return problem.Errorf(problem.CodeInvalid, "the request body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// numberRange describes the numbers a field of kind k takes.
func numberRange(k reflect.Kind) string {
	switch k {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	}
	return "a number"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	case "string":
		return "string"
	case "ptr", "interface":
		return "value"
	}
	return "number"
}

func article(kind string) string {
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// writeJSON encodes v without escaping HTML characters (the API is not HTML).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Page bounds.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// pageParams reads limit and cursor from the query string.
func pageParams(c echo.Context) (limit int, cursor string, err error) {
	limit = defaultLimit
	if s := c.QueryParam("limit"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 || n > maxLimit {
			return 0, "", problem.Invalid(map[string]string{"limit": fmt.Sprintf("must be a whole number from 1 to %d", maxLimit)})
		}
		limit = n
	}
	return limit, c.QueryParam("cursor"), nil
}

// List is the shape of every list response.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func list[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, NextCursor: next}
}

// pageFunc reads one page of a tenant's objects.
type pageFunc[T any] func(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]T, string, error)

// listOf returns the handler of a paged list of kind: authorize reading,
// read the page parameters, fetch, encode.
func listOf[T any](a *API, kind string, fetch pageFunc[T]) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principal(c)
		if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, kind, "")); err != nil {
			return err
		}
		limit, cursor, err := pageParams(c)
		if err != nil {
			return err
		}
		items, next, err := fetch(c.Request().Context(), p.Tenant, cursor, limit)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, list(items, next))
	}
}
