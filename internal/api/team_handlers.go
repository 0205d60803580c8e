package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

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

func (a *API) authorizeTeam(c echo.Context, act string) error {
	p := principal(c)
	obj := rbac.Of(p, "team", c.Param("team"))
	obj.Team = c.Param("team")
	return a.rbac.Authorize(c.Request().Context(), p, act, obj)
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
	if err := a.authorizeTeam(c, rbac.Read); err != nil {
		return err
	}
	t, err := a.tenancy.Team(c.Request().Context(), principal(c).Tenant, c.Param("team"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}

func (a *API) updateTeam(c echo.Context) error {
	if err := a.authorizeTeam(c, rbac.Update); err != nil {
		return err
	}
	version, err := ifMatchVersion(c)
	if err != nil {
		return err
	}
	var in UpdateTeamRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.tenancy.UpdateTeam(c.Request().Context(), principal(c).Tenant, c.Param("team"), version, tenancy.TeamPatch{Name: in.Name})
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}

func (a *API) deleteTeam(c echo.Context) error {
	if err := a.authorizeTeam(c, rbac.Delete); err != nil {
		return err
	}
	if err := a.tenancy.DeleteTeam(c.Request().Context(), principal(c).Tenant, c.Param("team")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) addTeamMember(c echo.Context) error {
	if err := a.authorizeTeam(c, rbac.Update); err != nil {
		return err
	}
	var in TeamMemberRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, err := a.tenancy.AddTeamMember(c.Request().Context(), principal(c).Tenant, c.Param("team"), in.Email)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}

func (a *API) removeTeamMember(c echo.Context) error {
	if err := a.authorizeTeam(c, rbac.Update); err != nil {
		return err
	}
	t, err := a.tenancy.RemoveTeamMember(c.Request().Context(), principal(c).Tenant, c.Param("team"), c.Param("email"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(t.Version))
	return c.JSON(http.StatusOK, t)
}
