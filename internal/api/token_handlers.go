package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// CreateTokenRequest creates an API token.
type CreateTokenRequest struct {
	Name      string       `json:"name"`
	Role      tenancy.Role `json:"role"`
	ExpiresAt *string      `json:"expires_at,omitempty"` // RFC 3339
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
	var expires *time.Time
	if in.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *in.ExpiresAt)
		if err != nil {
			return problem.Invalid(map[string]string{"expires_at": "must be an RFC 3339 time such as 2030-01-02T15:04:05Z"})
		}
		expires = &t
	}
	t, secret, err := a.auth.CreateToken(c.Request().Context(), p, in.Name, in.Role, expires)
	if err != nil {
		return err
	}
	markSecret(c)
	return c.JSON(http.StatusCreated, CreateTokenResponse{APIToken: t, Token: secret})
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
