package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// CreateTokenRequest creates an API token.
type CreateTokenRequest struct {
	Name      string       `json:"name"`
	Role      tenancy.Role `json:"role"`
	ExpiresAt *time.Time   `json:"expires_at,omitempty"`
}

// CreateTokenResponse holds the token's secret, shown this once.
type CreateTokenResponse struct {
	auth.APIToken
	Token string `json:"token"`
}

func (a *API) createToken(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Create, rbac.Of(p, "token", "")); err != nil {
		return err
	}
	var in CreateTokenRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, secret, err := a.auth.CreateToken(c.Request().Context(), p, in.Name, in.Role, in.ExpiresAt)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, CreateTokenResponse{APIToken: t, Token: secret})
}

func (a *API) listTokens(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "token", "")); err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := a.auth.ListTokens(c.Request().Context(), p.Tenant, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}

func (a *API) revokeToken(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Delete, rbac.Of(p, "token", c.Param("id"))); err != nil {
		return err
	}
	id, err := pathUUID(c, "id", "token")
	if err != nil {
		return err
	}
	if _, err := a.auth.RevokeToken(c.Request().Context(), p.Tenant, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
