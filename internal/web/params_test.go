package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// A name round-trips exactly through a path parameter, whichever way the
// client escaped it: decoded once, never twice, never left escaped.
func TestParams_DecodedExactlyOnce(t *testing.T) {
	s := New(Config{}, nil)
	var got string
	s.Echo().GET("/t/:tenant/things/:name", func(c echo.Context) error {
		got = c.Param("name")
		return c.NoContent(http.StatusNoContent)
	})
	for _, name := range []string{"order-1", "a b", "a/b", "50%", "a%41", "a%2525b", "café", "x?y#z", "ann@example.test", "+:;,=$&'()*!"} {
		for _, path := range []string{
			"/t/acme/things/" + url.PathEscape(name),                                 // the default escaping
			"/t/acme/things/" + escapeAll(name),                                      // every byte escaped
			"/t/acme/things/" + strings.ReplaceAll(url.PathEscape(name), "@", "%40"), // an escape the default leaves out
		} {
			got = ""
			req := httptest.NewRequest(http.MethodGet, path, nil)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent || got != name {
				t.Errorf("%s: status %d, name %q, want %q", path, rec.Code, got, name)
			}
		}
	}
}

func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[s[i]>>4])+string("0123456789abcdef"[s[i]&15])))
	}
	return b.String()
}
