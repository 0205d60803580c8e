package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
)

// contentSecurityPolicy allows only this origin's scripts, styles, images
// and connections (WebSocket included), no inline script or style, no
// framing. htmx is told not to inject its indicator style (see the layout).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every answer carries. Cache-Control is
// no-store by default: API answers and pages are per caller, and a page
// kept in the browser's history would show a tenant's data after sign-out.
// Static files set their own caching.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Cache-Control", "no-store")
		if s.https || c.Request().TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		return next(c)
	}
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

// decodeParams percent-decodes the path parameters exactly once. The router
// matches on the escaped path when it differs from the default encoding
// (URL.RawPath is set): the parameters are then still escaped. Otherwise
// they come from the decoded path and must not be decoded again, or a name
// holding "%25" would lose it.
func decodeParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// No text here may hold a NUL (PostgreSQL stores none): a query
		// parameter with one is refused, a path with one names nothing.
		if strings.Contains(c.Request().URL.RawQuery, "%00") {
			for name, vs := range c.QueryParams() {
				for _, v := range vs {
					if strings.ContainsRune(v, 0) {
						return &problem.Error{Code: problem.CodeInvalid, Message: fmt.Sprintf("the query parameter %s must not hold a NUL character", name),
							Fields: map[string]string{name: "must not hold a NUL character"}}
					}
				}
			}
		}
		if c.Request().URL.RawPath == "" {
			for _, v := range c.ParamValues() {
				if strings.ContainsRune(v, 0) {
					return problem.Errorf(problem.CodeNotFound, "no such resource")
				}
			}
			return next(c)
		}
		names := c.ParamNames()
		vals := make([]string, len(names))
		for i, v := range c.ParamValues() {
			if i >= len(vals) {
				break
			}
			u, err := url.PathUnescape(v)
			if err != nil {
				return problem.Invalid(map[string]string{names[i]: "is not a valid percent-encoded path segment"})
			}
			if strings.ContainsRune(u, 0) {
				return problem.Errorf(problem.CodeNotFound, "no such resource")
			}
			vals[i] = u
		}
		c.SetParamValues(vals...)
		return next(c)
	}
}

// headAsGet answers HEAD on every GET route, in both faces. Before routing
// the method is made GET (the router reads the method of the request the
// server was handed, so it is changed in place); restoreHead puts HEAD back
// once the route is found, so the handler and the HTTP server, which then
// sends no body, see the HEAD they were asked. The status and headers are
// those a GET gets.
func headAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Method == http.MethodHead {
			req.Method = http.MethodGet
			c.Set(headKey, true)
		}
		return next(c)
	}
}

const headKey = "switchboard.head"

func restoreHead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Get(headKey) != nil {
			c.Request().Method = http.MethodHead
		}
		return next(c)
	}
}
