package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/access"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// CreateTeamRequest creates a team.
type CreateTeamRequest struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// UpdateTeamRequest changes a team; absent fields are unchanged.
type UpdateTeamRequest struct {
	Name *string `json:"name,omitempty"`
}

// TeamMemberRequest names a tenant member to add to a team.
type TeamMemberRequest struct {
	Email string `json:"email"`
}

func etag(version int64) string { return fmt.Sprintf(`"%d"`, version) }

// ifMatchVersion reads If-Match as a version; 0 when absent.
func ifMatchVersion(c echo.Context) (int64, error) {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, problem.Errorf(problem.CodeInvalid, "If-Match must be an ETag this server issued, such as \"3\"")
	}
	return v, nil
}

// allow is the decision on act for the caller, made by the domain on the
// object it loads (its owning team and labels included), inside the
// transaction that then acts on it.
func (a *API) allow(c echo.Context, act string) access.Check {
	return a.rbac.Check(principal(c), act)
}

func (a *API) createTeam(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Create, rbac.Of(p, "team", "")); err != nil {
		return err
	}
	var in CreateTeamRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.tenancy.CreateTeam(c.Request().Context(), p.Tenant, in.Slug, in.Name)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+p.TenantSlug+"/teams/"+t.Slug)
	return c.JSON(http.StatusCreated, t)
}

func (a *API) getTeam(c echo.Context) error {
	t, err := a.tenancy.Team(c.Request().Context(), principal(c).Tenant, c.Param("team"), a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}

func (a *API) updateTeam(c echo.Context) error {
	version, err := ifMatchVersion(c)
	if err != nil {
		return err
	}
	var in UpdateTeamRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.tenancy.UpdateTeam(c.Request().Context(), principal(c).Tenant, c.Param("team"), version, tenancy.TeamPatch{Name: in.Name}, a.allow(c, rbac.Update))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}

func (a *API) deleteTeam(c echo.Context) error {
	if err := a.tenancy.DeleteTeam(c.Request().Context(), principal(c).Tenant, c.Param("team"), a.allow(c, rbac.Delete)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) addTeamMember(c echo.Context) error {
	var in TeamMemberRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.tenancy.AddTeamMember(c.Request().Context(), principal(c).Tenant, c.Param("team"), in.Email, a.allow(c, rbac.Update))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}

func (a *API) removeTeamMember(c echo.Context) error {
	t, err := a.tenancy.RemoveTeamMember(c.Request().Context(), principal(c).Tenant, c.Param("team"), c.Param("email"), a.allow(c, rbac.Update))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}
