package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

type tenantInput struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// SignupRequest creates a user and, optionally, a tenant they own.
type SignupRequest struct {
	Email    string       `json:"email"`
	Password string       `json:"password"`
	Name     string       `json:"name"`
	Tenant   *tenantInput `json:"tenant,omitempty"`
}

// SignupResponse says where the mail went. It is the same whether the
// address was new (the mail holds a link that confirms it) or already had
// an account (the mail says so): the answer never tells which.
type SignupResponse struct {
	Email   string `json:"email"`
	Message string `json:"message"`
}

// VerifyEmailRequest carries the token of a verification link.
type VerifyEmailRequest struct {
	Token string `json:"token"`
}

// VerifyEmailResponse is the verified user and the tenants whose
// invitations became memberships.
type VerifyEmailResponse struct {
	User   tenancy.User     `json:"user"`
	Joined []tenancy.Tenant `json:"joined"`
}

// LoginRequest exchanges a password for an access token.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResponse carries an access token.
type LoginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// MeResponse is the caller and their tenants.
type MeResponse struct {
	User        *tenancy.User        `json:"user,omitempty"`
	Token       *tokenSelf           `json:"token,omitempty"`
	Memberships []tenancy.Membership `json:"memberships"`
}

type tokenSelf struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Tenant tenancy.Tenant `json:"tenant"`
	Role   tenancy.Role   `json:"role"`
}

// TenantResponse is a tenant and the caller's place in it.
type TenantResponse struct {
	tenancy.Tenant
	Role  tenancy.Role `json:"role"`
	Teams []string     `json:"teams"`
}

func (a *API) signup(c echo.Context) error {
	var in SignupRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	si := auth.SignupInput{Email: in.Email, Password: in.Password, Name: in.Name}
	if in.Tenant != nil {
		si.TenantSlug, si.TenantName = in.Tenant.Slug, in.Tenant.Name
		if si.TenantSlug == "" && si.TenantName == "" {
			return problem.Invalid(map[string]string{"tenant.slug": tenancy.SlugHint, "tenant.name": "must be 1-200 printable characters"})
		}
	}
	si.RemoteAddr = c.RealIP()
	res, err := a.auth.Signup(c.Request().Context(), si)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, SignupResponse{Email: res.Email,
		Message: "We sent a message to " + res.Email + ": follow its link to confirm the address, then sign in. Until it is confirmed you can use only the organisations you create yourself."})
}

func (a *API) verifyEmail(c echo.Context) error {
	var in VerifyEmailRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := a.auth.VerifyEmail(c.Request().Context(), in.Token)
	if err != nil {
		return err
	}
	if v.Joined == nil {
		v.Joined = []tenancy.Tenant{}
	}
	return c.JSON(http.StatusOK, VerifyEmailResponse{User: v.User, Joined: v.Joined})
}

func (a *API) resendVerification(c echo.Context) error {
	id := identity(c)
	if id.Token != nil {
		return problem.Errorf(problem.CodeForbidden, "API tokens have no address to verify; sign in as the user")
	}
	if err := a.auth.ResendVerification(c.Request().Context(), id.UserID); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

func (a *API) login(c echo.Context) error {
	var in LoginRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	u, err := a.auth.Login(c.Request().Context(), in.Email, in.Password, c.RealIP())
	if err != nil {
		return err
	}
	tok, err := a.auth.IssueAccessToken(u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, LoginResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(a.auth.AccessTTL().Seconds())})
}

func (a *API) me(c echo.Context) error {
	id := identity(c)
	ctx := c.Request().Context()
	if t := id.Token; t != nil {
		return c.JSON(http.StatusOK, MeResponse{
			Token:       &tokenSelf{ID: t.ID.String(), Name: t.Name, Tenant: t.Tenant, Role: t.Role},
			Memberships: []tenancy.Membership{{Tenant: t.Tenant, Role: t.Role, Teams: []string{}}},
		})
	}
	u, err := a.tenancy.User(ctx, id.UserID)
	if err != nil {
		return err
	}
	ms, err := a.tenancy.Memberships(ctx, id.UserID)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []tenancy.Membership{}
	}
	return c.JSON(http.StatusOK, MeResponse{User: &u, Memberships: ms})
}

func (a *API) createTenant(c echo.Context) error {
	id := identity(c)
	if id.Token != nil {
		return problem.Errorf(problem.CodeForbidden, "API tokens belong to one tenant and cannot create tenants")
	}
	var in tenantInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.tenancy.CreateTenant(c.Request().Context(), id.UserID, in.Slug, in.Name)
	if err != nil {
		return renameFields(err, map[string]string{"tenant.slug": "slug", "tenant.name": "name"})
	}
	return c.JSON(http.StatusCreated, TenantResponse{Tenant: t, Role: tenancy.Owner, Teams: []string{}})
}

func (a *API) getTenant(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "tenant", p.TenantSlug)); err != nil {
		return err
	}
	teams := p.Teams
	if teams == nil {
		teams = []string{}
	}
	return c.JSON(http.StatusOK, TenantResponse{Tenant: p.TenantInfo, Role: p.Role, Teams: teams})
}

// renameFields maps validation field names of a domain error onto the names
// of this request.
func renameFields(err error, names map[string]string) error {
	pe, ok := problem.As(err)
	if !ok || pe.Fields == nil {
		return err
	}
	out := map[string]string{}
	for k, v := range pe.Fields {
		if n, ok := names[k]; ok {
			k = n
		}
		out[k] = v
	}
	return &problem.Error{Code: pe.Code, Message: pe.Message, Fields: out}
}
