package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/problem"
)

// wsWriteTimeout bounds one message write: a client that cannot take a
// message in this time is too slow and is dropped, so it never holds up
// the producer (whose own buffer is bounded).
const wsWriteTimeout = 5 * time.Second

// requireTenantStream is requireTenant for WebSocket endpoints: besides a
// bearer credential it accepts the browser's session cookie, since browsers
// cannot set headers on a WebSocket. Cross-site use of the cookie is
// refused by the Origin check of the upgrade (serveWS).
func (a *API) requireTenantStream(next echo.HandlerFunc) echo.HandlerFunc {
	next = requireHandshake(next)
	withBearer := a.requireTenant(next)
	return func(c echo.Context) error {
		if bearer(c) != "" {
			return withBearer(c)
		}
		ck, err := c.Cookie(auth.SessionCookie)
		if err != nil {
			return problem.Errorf(problem.CodeUnauthenticated, "send credentials as Authorization: Bearer <token> or sign in")
		}
		s, err := a.auth.Session(c.Request().Context(), ck.Value)
		if err != nil {
			return err
		}
		p, err := a.auth.Scope(c.Request().Context(), auth.Identity{UserID: s.UserID, Email: s.Email}, c.Param("tenant"))
		if err != nil {
			return err
		}
		setActor(c, p.UserID, p.Name)
		c.Set(principalKey, p)
		return next(c)
	}
}

// checkHandshake refuses, as a problem document, what the WebSocket
// upgrade itself would refuse in plain text: a request that is not a
// WebSocket handshake (RFC 6455 version 13), and a browser page of another
// origin (the session cookie must not work cross-site). It runs after
// authentication, so a caller without credentials still learns that first.
func checkHandshake(req *http.Request) error {
	h := req.Header
	if !strings.EqualFold(h.Get("Upgrade"), "websocket") || !headerHasToken(h, "Connection", "upgrade") {
		return problem.Errorf(problem.CodeInvalid, "this endpoint speaks WebSocket: connect with an Upgrade: websocket request")
	}
	if h.Get("Sec-WebSocket-Version") != "13" {
		return problem.Invalid(map[string]string{"Sec-WebSocket-Version": "must be 13"})
	}
	if h.Get("Sec-WebSocket-Key") == "" {
		return problem.Invalid(map[string]string{"Sec-WebSocket-Key": "is required"})
	}
	if origin := h.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, req.Host) {
			return problem.Errorf(problem.CodeForbidden, "a page from %q may not open this stream; only pages of this server may", origin)
		}
	}
	return nil
}

// requireHandshake runs next only for a WebSocket handshake (checkHandshake).
func requireHandshake(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := checkHandshake(c.Request()); err != nil {
			return err
		}
		return next(c)
	}
}

// headerHasToken reports whether the comma-separated header name holds
// token (case-insensitively).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsError is the last message of a stream that ends on an error.
type wsError struct {
	Error Problem `json:"error"`
}

// serveWS upgrades the request and sends each value from events as a JSON
// message until events closes, the client goes away, or a write times out.
// When events closes, end reports why (nil for a clean end); an error is
// sent as a problem document before the close.
func serveWS[T any](a *API, c echo.Context, events <-chan T, end func() error) error {
	conn, err := websocket.Accept(c.Response(), c.Request(), nil) // checks Origin against Host
	if err != nil {
		return nil // Accept has written the refusal
	}
	c.Response().Committed = true
	ctx := conn.CloseRead(c.Request().Context())
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusGoingAway, "")
			return nil
		case v, ok := <-events:
			if !ok {
				var cerr error
				if end != nil {
					cerr = end()
				}
				if cerr != nil && !errors.Is(cerr, context.Canceled) {
					wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
					_ = wsjson.Write(wctx, conn, wsError{Error: ProblemFor(ctx, a.log, cerr, c.Request().URL.Path)})
					cancel()
					conn.Close(websocket.StatusInternalError, "stream ended")
					return nil
				}
				conn.Close(websocket.StatusNormalClosure, "")
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err := wsjson.Write(wctx, conn, v)
			cancel()
			if err != nil {
				conn.Close(websocket.StatusPolicyViolation, "slow consumer")
				return nil
			}
		}
	}
}
