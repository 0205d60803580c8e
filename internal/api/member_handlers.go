package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// AddMemberRequest gives a person a role in the tenant.
type AddMemberRequest struct {
	Email string       `json:"email"`
	Role  tenancy.Role `json:"role"`
}

// UpdateMemberRequest changes a member's role.
type UpdateMemberRequest struct {
	Role tenancy.Role `json:"role"`
}

func pathUUID(c echo.Context, name, kind string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, problem.NotFound(kind, c.Param(name))
	}
	return id, nil
}

func (a *API) addMember(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Create, rbac.Of(p, "member", "")); err != nil {
		return err
	}
	var in AddMemberRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	m, err := a.tenancy.AddMember(c.Request().Context(), p.Tenant, p.Granter(), in.Email, in.Role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, m)
}

func (a *API) updateMember(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Update, rbac.Of(p, "member", c.Param("user"))); err != nil {
		return err
	}
	id, err := pathUUID(c, "user", "member")
	if err != nil {
		return err
	}
	var in UpdateMemberRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	m, err := a.tenancy.SetMemberRole(c.Request().Context(), p.Tenant, p.Granter(), id, in.Role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (a *API) removeMember(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Delete, rbac.Of(p, "member", c.Param("user"))); err != nil {
		return err
	}
	id, err := pathUUID(c, "user", "member")
	if err != nil {
		return err
	}
	if err := a.tenancy.RemoveMember(c.Request().Context(), p.Tenant, p.Granter(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) cancelInvitation(c echo.Context) error {
	p := principal(c)
	email := c.Param("email")
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Delete, rbac.Of(p, "member", email)); err != nil {
		return err
	}
	if err := a.tenancy.CancelInvitation(c.Request().Context(), p.Tenant, p.Granter(), email); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listAudit pages through the audit log, filtered by the query.
func (a *API) listAudit(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "audit", "")); err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	f := audit.Filter{Action: c.QueryParam("action"), Actor: c.QueryParam("actor")}
	bad := problem.Fields{}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			bad.Check(err == nil, name, "must be an RFC 3339 time such as 2030-01-02T15:04:05Z")
			*dst = t
		}
	}
	if err := bad.Err(); err != nil {
		return err
	}
	items, next, err := a.audit.Search(c.Request().Context(), p.Tenant, f, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}
