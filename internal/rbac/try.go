package rbac

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// Request is an example request to try a tenant's rules on: who asks (role
// and teams) to do what (action) on what (kind, name, owning team, labels).
type Request struct {
	Role   tenancy.Role      `json:"role"`
	Teams  []string          `json:"teams,omitempty"`
	Action string            `json:"action"`
	Kind   string            `json:"kind"`
	Name   string            `json:"name,omitempty"`
	Team   string            `json:"team,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Decision is the answer of a set of rules to a Request, with the rules
// that decided it, in words.
type Decision struct {
	Allowed bool     `json:"allowed"`
	Because []string `json:"because"`
}

func (r Request) validate() error {
	f := problem.Fields{}
	f.Check(r.Role.Valid(), "request.role", "must be one of owner, admin, editor, operator, viewer")
	f.Check(slices.Contains(Actions, r.Action), "request.action", "must be one of "+strings.Join(Actions, ", "))
	f.Check(slices.Contains(Kinds, r.Kind), "request.kind", "must be one of "+strings.Join(Kinds, ", "))
	return f.Err()
}

// Try answers req with tenant's rules as they are (before) and with
// candidate added (after; the same as before when candidate is nil), so a
// rule can be tried before it is saved. The candidate is checked as Add
// checks it.
func (s *Service) Try(ctx context.Context, tenant uuid.UUID, candidate *Rule, req Request) (before, after Decision, err error) {
	if err := req.validate(); err != nil {
		return Decision{}, Decision{}, err
	}
	if candidate != nil {
		candidate.Builtin = false
		if err := validate(*candidate); err != nil {
			return Decision{}, Decision{}, renameRuleFields(err)
		}
	}
	rules, err := s.List(ctx, tenant)
	if err != nil {
		return Decision{}, Decision{}, err
	}
	if before, err = decide(rules, req); err != nil {
		return Decision{}, Decision{}, err
	}
	if candidate == nil {
		return before, before, nil
	}
	after, err = decide(append(rules, *candidate), req)
	return before, after, err
}

// renameRuleFields puts a candidate rule's field errors under "rule.".
func renameRuleFields(err error) error {
	pe, ok := problem.As(err)
	if !ok || pe.Fields == nil {
		return err
	}
	out := map[string]string{}
	for k, v := range pe.Fields {
		out["rule."+k] = v
	}
	return &problem.Error{Code: pe.Code, Message: pe.Message, Fields: out}
}

// decide answers req with rules the way Authorize does: allowed when an
// allow rule matches and no deny rule does.
func decide(rules []Rule, req Request) (Decision, error) {
	if req.Role == tenancy.Owner && req.Kind == "policy" {
		return Decision{Allowed: true, Because: []string{"owners may always manage the policy, so no rule can lock them out"}}, nil
	}
	sub := subject{Role: string(req.Role), Teams: req.Teams}
	obj := toObject(Object{Kind: req.Kind, Name: req.Name, Team: req.Team, Labels: req.Labels})
	var allows, denies []string
	for _, r := range rules {
		ok, err := matches(r, sub, obj, req.Action)
		if err != nil {
			// As in Authorize: a condition that fails on this request
			// denies.
			denies = append(denies, Describe(r)+" (its condition failed on this request, which denies)")
			continue
		}
		if !ok {
			continue
		}
		if r.Effect == "deny" {
			denies = append(denies, Describe(r))
		} else {
			allows = append(allows, Describe(r))
		}
	}
	switch {
	case len(denies) > 0:
		return Decision{Allowed: false, Because: denies}, nil
	case len(allows) > 0:
		return Decision{Allowed: true, Because: allows}, nil
	}
	return Decision{Allowed: false, Because: []string{"no rule allows it"}}, nil
}

// matches reports whether r applies to the request (role, resource,
// action and condition), whatever its effect.
func matches(r Rule, sub subject, obj object, act string) (bool, error) {
	if string(r.Role) != sub.Role || (r.Resource != "*" && r.Resource != obj.Kind) || (r.Action != "*" && r.Action != act) {
		return false, nil
	}
	if r.Condition == "" {
		return true, nil
	}
	probe := r
	probe.Effect = "allow"
	e, err := build([]Rule{probe})
	if err != nil {
		return false, err
	}
	return e.Enforce(sub, obj, act)
}

// Describe says a rule in words: "deny operator replay dlq when the
// object's label "env" is "prod"".
func Describe(r Rule) string {
	what := r.Resource
	if what == "*" {
		what = "anything"
	}
	act := r.Action
	if act == "*" {
		act = "do anything to"
	}
	s := fmt.Sprintf("%s %s %s %s", r.Effect, r.Role, act, what)
	if r.Builtin {
		s = "built in: " + s
	}
	if r.Condition != "" {
		s += " when " + Explain(r.Condition)
	}
	return s
}
