package web

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/problem"
)

// Credential is what a request authenticated with: a bearer token (an
// access token or an API token) or a browser session cookie. A live stream
// keeps it to check it again when rights change.
type Credential struct {
	Bearer  string
	Session string
}

const (
	identityKey   = "switchboard.identity"
	principalKey  = "switchboard.principal"
	credentialKey = "switchboard.credential"
)

// bearer returns the bearer credential of the request, or "".
func bearer(c echo.Context) string {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(cred)
}

// Bearer returns the request's bearer credential, or "".
func Bearer(c echo.Context) string { return bearer(c) }

// PrincipalFor authenticates cred and returns who it acts as in the tenant
// with slug, with the member's current role and teams: the one function
// both a request and a live stream's later re-check go through.
func (s *Server) PrincipalFor(ctx context.Context, cred Credential, slug string) (auth.Principal, error) {
	var id auth.Identity
	switch {
	case cred.Bearer != "":
		var err error
		if id, err = s.auth.Authenticate(ctx, cred.Bearer); err != nil {
			return auth.Principal{}, err
		}
	case cred.Session != "":
		sess, err := s.auth.Session(ctx, cred.Session)
		if err != nil {
			return auth.Principal{}, err
		}
		id = auth.Identity{UserID: sess.UserID, Email: sess.Email}
	default:
		return auth.Principal{}, problem.Errorf(problem.CodeUnauthenticated, "send credentials as Authorization: Bearer <token>")
	}
	return s.auth.Scope(ctx, id, slug)
}

// RequireIdentity authenticates the bearer credential and, for a user,
// loads who they are.
func (s *Server) RequireIdentity(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := bearer(c)
		if tok == "" {
			return problem.Errorf(problem.CodeUnauthenticated, "send credentials as Authorization: Bearer <token>")
		}
		ctx := c.Request().Context()
		id, err := s.auth.Authenticate(ctx, tok)
		if err != nil {
			return err
		}
		c.Set(credentialKey, Credential{Bearer: tok})
		if id.Token != nil {
			c.Set(identityKey, id)
			setActor(c, uuid.Nil, "token:"+id.Token.Name)
			return next(c)
		}
		u, err := s.auth.User(ctx, id)
		if err != nil {
			return err
		}
		id.Email = u.Email
		c.Set(identityKey, id)
		setActor(c, u.ID, u.Email)
		return next(c)
	}
}

// RequireTenant authenticates the bearer credential and scopes the request
// to the :tenant in its path. A tenant the caller cannot see is not found.
func (s *Server) RequireTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requireTenant(next, false)
}

// RequireTenantStream is RequireTenant for WebSocket endpoints: besides a
// bearer credential it accepts the browser's session cookie, since browsers
// cannot set headers on a WebSocket. Cross-site use of the cookie is
// refused by the live hub's exact Origin check.
func (s *Server) RequireTenantStream(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requireTenant(next, true)
}

func (s *Server) requireTenant(next echo.HandlerFunc, cookie bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		cred := Credential{Bearer: bearer(c)}
		if cred.Bearer == "" && cookie {
			if ck, err := c.Cookie(auth.SessionCookie); err == nil {
				cred.Session = ck.Value
			}
		}
		if cred.Bearer == "" && cred.Session == "" {
			msg := "send credentials as Authorization: Bearer <token>"
			if cookie {
				msg += " or sign in"
			}
			return problem.Errorf(problem.CodeUnauthenticated, "%s", msg)
		}
		p, err := s.PrincipalFor(c.Request().Context(), cred, c.Param("tenant"))
		if err != nil {
			return err
		}
		SetPrincipal(c, p, cred)
		return next(c)
	}
}

// SetPrincipal records who the request acts as (and with what credential)
// for handlers and the audit log.
func SetPrincipal(c echo.Context, p auth.Principal, cred Credential) {
	setActor(c, p.UserID, p.Name)
	if p.TokenID != uuid.Nil {
		setActor(c, uuid.Nil, p.Name)
	}
	c.Set(principalKey, p)
	c.Set(credentialKey, cred)
}

func setActor(c echo.Context, id uuid.UUID, name string) {
	req := c.Request()
	if act := audit.RequestActor(req.Context()); act != nil {
		act.ID, act.Name = id, name // the request's own actor, from observe
		return
	}
	act := audit.ActorFrom(req.Context())
	act.ID, act.Name = id, name
	c.SetRequest(req.WithContext(audit.WithActor(req.Context(), act)))
}

// IdentityOf is the identity RequireIdentity authenticated.
func IdentityOf(c echo.Context) auth.Identity { return c.Get(identityKey).(auth.Identity) }

// PrincipalOf is the principal RequireTenant (or SetPrincipal) scoped the
// request to.
func PrincipalOf(c echo.Context) auth.Principal { return c.Get(principalKey).(auth.Principal) }

// CredentialOf is the credential the request authenticated with.
func CredentialOf(c echo.Context) Credential {
	cr, _ := c.Get(credentialKey).(Credential)
	return cr
}
