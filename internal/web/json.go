package web

import (
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/labstack/echo/v4"
)

// jsonSerializer encodes answers with the JSON v2 engine in its v1-compatible
// mode: the same bytes as encoding/json (names, omitempty, HTML escaping,
// null for nil slices), in about half the time and a third of the
// allocations, which is most of what a long list costs the server.
type jsonSerializer struct{}

var v1Compatible = jsonv1.DefaultOptionsV1()

func (jsonSerializer) Serialize(c echo.Context, v any, indent string) error {
	opts := []jsonv2.Options{v1Compatible}
	if indent != "" {
		opts = append(opts, jsontext.WithIndent(indent))
	}
	if err := jsonv2.MarshalWrite(c.Response(), v, opts...); err != nil {
		return err
	}
	// encoding/json's Encoder ends every value with a newline; keep that.
	_, err := c.Response().Write([]byte{'\n'})
	return err
}

// Deserialize is echo's Bind, which the server does not use: request bodies
// are decoded strictly by the API.
func (jsonSerializer) Deserialize(c echo.Context, v any) error {
	return echo.NewHTTPError(http.StatusUnsupportedMediaType, "bind is not used")
}
