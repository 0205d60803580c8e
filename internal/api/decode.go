package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

// DecodeStrict decodes one JSON value from body into v and describes what
// was wrong in terms of the request's fields. It is strict where a lenient
// decoder would guess: the body must be UTF-8 (a string with invalid bytes
// is refused, not mended), member names match exactly (case included), a
// name may appear once, unknown members and trailing data are refused.
func DecodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.Errorf(problem.CodeInvalid, "the request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return problem.Errorf(problem.CodeInvalid, "the request body is not valid UTF-8 text")
	}
	if err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true), jsonv2.WithUnmarshalers(strictStrings)); err != nil {
		return describeDecodeError(err)
	}
	// A NUL anywhere else (a member name, data kept as it came).
	if hasNULEscape(body) {
		return problem.Errorf(problem.CodeInvalid, "the request body holds a NUL character (\\u0000), which no text here may hold")
	}
	return nil
}

// stringRule is a string strictStrings refuses, said of its field.
type stringRule string

func (r stringRule) Error() string { return string(r) }

// strictStrings reads every string of a request: null where a string is
// expected is refused (left to the default it would read as "", which the
// caller did not write; optional fields are pointers, where null is nil),
// and so is a NUL character, which PostgreSQL stores in no text.
var strictStrings = jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, s *string) error {
	switch dec.PeekKind() {
	case 'n':
		return stringRule("must be a string, not null (leave the member out instead)")
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		v := tok.String()
		if strings.ContainsRune(v, 0) {
			return stringRule("must not hold a NUL character")
		}
		*s = v
		return nil
	}
	return jsonv2.SkipFunc
})

// hasNULEscape reports whether a JSON text holds the escape \u0000 (a raw
// NUL is not valid JSON). PostgreSQL stores no NUL in text or jsonb, so such
// a string could not be kept; \\u0000 (an escaped backslash, then u0000)
// is text and passes.
func hasNULEscape(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		slashes := 0
		for k := at; k >= 0 && body[k] == '\\'; k-- {
			slashes++
		}
		if slashes%2 == 1 {
			return true
		}
		i = at + 1
	}
}

// fieldName turns a JSON pointer (/events/0/type) into the field path the
// API's messages use (events[0].type).
func fieldName(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func describeDecodeError(err error) error {
	var pe *problem.Error
	if errors.As(err, &pe) { // from a type's own UnmarshalJSON
		return pe
	}
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return problem.Invalid(map[string]string{fieldName(syn.JSONPointer): "appears more than once"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.Errorf(problem.CodeInvalid, "malformed JSON: the body ends too early")
	case syn != nil:
		if strings.Contains(syn.Err.Error(), "UTF-8") {
			return problem.Errorf(problem.CodeInvalid, "malformed JSON at byte %d: a string is not valid UTF-8 (a lone surrogate escape?)", syn.ByteOffset)
		}
		return problem.Errorf(problem.CodeInvalid, "malformed JSON at byte %d", syn.ByteOffset)
	case errors.As(err, &sem):
		field := fieldName(sem.JSONPointer)
		if errors.Is(sem.Err, jsonv2.ErrUnknownName) {
			return problem.Invalid(map[string]string{field: "is not a known field"})
		}
		var rule stringRule
		if errors.As(sem.Err, &rule) && field != "" {
			return problem.Invalid(map[string]string{field: string(rule)})
		}
		if sem.GoType == nil {
			break
		}
		k := sem.GoType.Kind()
		if k == reflect.Pointer {
			k = sem.GoType.Elem().Kind()
		}
		if field == "" {
			return problem.Errorf(problem.CodeInvalid, "the request body must be a JSON %s", jsonKind(k.String()))
		}
		if sem.JSONKind == '0' && isNumberKind(k) {
			// A number that does not fit: a fraction, a sign or a size the
			// field cannot take.
			return problem.Invalid(map[string]string{field: "must be " + numberRange(k)})
		}
		if sem.GoType.String() == "time.Time" {
			return problem.Invalid(map[string]string{field: "must be an RFC 3339 time such as 2030-01-02T15:04:05Z"})
		}
		return problem.Invalid(map[string]string{field: "must be " + article(jsonKind(k.String()))})
	}
	return problem.Errorf(problem.CodeInvalid, "the request body is not valid JSON for this request")
}

func isNumberKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16,
		reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
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
