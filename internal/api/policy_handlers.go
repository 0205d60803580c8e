package api

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/database"
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

// PolicyRule is a rule as listed: the rule and its condition in words.
type PolicyRule struct {
	rbac.Rule
	Explanation string `json:"explanation"`
}

// TryPolicyRequest asks how the tenant's rules, and the same rules with an
// optional candidate rule added, answer an example request.
type TryPolicyRequest struct {
	Rule    *CreatePolicyRequest `json:"rule,omitempty"`
	Request rbac.Request         `json:"request"`
}

// TryPolicyResponse is the answer before and after the candidate.
type TryPolicyResponse struct {
	Before rbac.Decision `json:"before"`
	After  rbac.Decision `json:"after"`
}

// listPolicies pages through the built-in rules, then the tenant's own,
// each with its condition in words. The cursor is the position in that
// list.
func (a *API) listPolicies(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	from := 0
	if cursor != "" {
		key, err := database.DecodeCursor(cursor)
		n, convErr := strconv.Atoi(key)
		if err != nil || convErr != nil || n < 0 {
			return problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
		}
		from = n
	}
	rules, err := a.rbac.List(c.Request().Context(), p.Tenant)
	if err != nil {
		return err
	}
	items := make([]PolicyRule, 0, limit)
	for i := from; i < len(rules) && len(items) < limit; i++ {
		items = append(items, PolicyRule{Rule: rules[i], Explanation: rbac.Explain(rules[i].Condition)})
	}
	next := ""
	if from+len(items) < len(rules) {
		next = database.EncodeCursor(strconv.Itoa(from + len(items)))
	}
	return c.JSON(http.StatusOK, list(items, next))
}

// tryPolicy answers an example request with the tenant's rules, and with
// a candidate rule added, without saving anything.
func (a *API) tryPolicy(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	var in TryPolicyRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var cand *rbac.Rule
	if in.Rule != nil {
		cand = &rbac.Rule{Role: in.Rule.Role, Resource: in.Rule.Resource, Action: in.Rule.Action, Condition: in.Rule.Condition, Effect: in.Rule.Effect}
	}
	before, after, err := a.rbac.Try(c.Request().Context(), p.Tenant, cand, in.Request)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TryPolicyResponse{Before: before, After: after})
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
