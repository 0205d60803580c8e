package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// CreatePolicyRequest adds a rule to the tenant's policy.
type CreatePolicyRequest struct {
	Role      tenancy.Role `json:"role"`
	Resource  string       `json:"resource"`
	Action    string       `json:"action"`
	Condition string       `json:"condition,omitempty"`
	Effect    string       `json:"effect"`
}

func (a *API) listPolicies(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	rules, err := a.rbac.List(c.Request().Context(), p.Tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(rules, ""))
}

func (a *API) createPolicy(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Create, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	var in CreatePolicyRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := a.rbac.Add(c.Request().Context(), p.Tenant, p.Role, rbac.Rule{Role: in.Role, Resource: in.Resource, Action: in.Action, Condition: in.Condition, Effect: in.Effect})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

// DeletePolicyRequest names the rule to remove.
type DeletePolicyRequest struct {
	ID string `json:"id"`
}

func (a *API) deletePolicy(c echo.Context) error {
	return a.removePolicy(c, c.Param("id"))
}

func (a *API) deletePolicyByBody(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Delete, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	var in DeletePolicyRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	return a.removePolicy(c, in.ID)
}

func (a *API) removePolicy(c echo.Context, rawID string) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Delete, rbac.Of(p, "policy", rawID)); err != nil {
		return err
	}
	id, err := uuid.Parse(rawID)
	if err != nil {
		return problem.NotFound("policy", rawID)
	}
	if err := a.rbac.Remove(c.Request().Context(), p.Tenant, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
