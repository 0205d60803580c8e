package ui

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/views"
)

// tryAvailable shows the "Try it" part of the policy form.
const tryAvailable = true

// explain is a rule's condition in words ("always" without one).
func explain(condition string) string { return rbac.Explain(condition) }

// kindActions are the actions that mean something for a kind: every kind
// is read, created, updated and deleted; dead-letter queues are also
// replayed, and the coordination services used.
func kindActions(kind string) []string {
	acts := []string{rbac.Read, rbac.Create, rbac.Update, rbac.Delete}
	switch kind {
	case "dlq":
		acts = append(acts, rbac.Replay)
	case "stream", "lock", "election", "kv":
		acts = append(acts, rbac.Use)
	}
	return acts
}

// policyMatrix says, for each kind (or only kind, when set), what each
// role may do, from the organisation's rules and the built-in ones, the way
// Authorize decides: allowed when an allow rule matches and no deny rule
// does. A rule with a condition makes the cell depend on the request
// ("if"): an allow with one grants only when it holds, a deny with one
// takes an allow away only when it holds.
func policyMatrix(rules []rbac.Rule, only string) []views.KindMatrix {
	var out []views.KindMatrix
	for _, kind := range rbac.Kinds {
		if only != "" && kind != only {
			continue
		}
		km := views.KindMatrix{Kind: kind, Actions: kindActions(kind)}
		for _, role := range tenancy.Roles {
			row := views.MatrixRow{Role: string(role)}
			for _, act := range km.Actions {
				row.Cells = append(row.Cells, matrixCell(rules, role, kind, act))
			}
			km.Rows = append(km.Rows, row)
		}
		out = append(out, km)
	}
	return out
}

func matrixCell(rules []rbac.Rule, role tenancy.Role, kind, act string) views.MatrixCell {
	cell := views.MatrixCell{Action: act}
	if role == tenancy.Owner && kind == "policy" {
		cell.Verdict, cell.Why = "yes", "owners may always manage the policy"
		return cell
	}
	var allow, allowIf, deny, denyIf []string
	for _, r := range rules {
		if r.Role != role || (r.Resource != "*" && r.Resource != kind) || (r.Action != "*" && r.Action != act) {
			continue
		}
		d := rbac.Describe(r)
		switch {
		case r.Effect == "deny" && r.Condition == "":
			deny = append(deny, d)
		case r.Effect == "deny":
			denyIf = append(denyIf, d)
		case r.Condition == "":
			allow = append(allow, d)
		default:
			allowIf = append(allowIf, d)
		}
	}
	switch {
	case len(deny) > 0:
		cell.Verdict, cell.Why = "no", strings.Join(deny, "; ")
	case len(allow) > 0 && len(denyIf) == 0:
		cell.Verdict, cell.Why = "yes", strings.Join(allow, "; ")
	case len(allow) > 0 || len(allowIf) > 0:
		cell.Verdict, cell.Why = "if", strings.Join(slices.Concat(allow, allowIf, denyIf), "; ")
	default:
		cell.Verdict, cell.Why = "no", "no rule allows it"
	}
	return cell
}

// tryPolicy answers the "Try it" button: how the organisation's rules
// answer the example request, without and with the rule being written.
// Nothing is saved, so reading the policy is enough.
func (u *UI) tryPolicy(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	f, t := policyFormOf(c), tryFormOf(c)
	req := rbac.Request{Role: tenancy.Role(t.Role), Teams: splitList(t.Teams), Action: t.Action, Kind: t.Kind,
		Name: strings.TrimSpace(t.Name), Team: strings.TrimSpace(t.Team)}
	errs := views.FormErrors{}
	labels, bad := parseLabels(t.Labels)
	if bad != "" {
		errs["try_labels"] = "Write labels as key=value, separated by commas; " + bad + " is not."
	}
	req.Labels = labels
	var candidate *rbac.Rule
	if f.Resource != "" || f.Action != "" || f.Condition != "" {
		candidate = &rbac.Rule{Role: tenancy.Role(f.Role), Resource: f.Resource, Action: f.Action, Condition: f.Condition, Effect: f.Effect}
	}
	if len(errs) > 0 {
		return render(c, http.StatusOK, views.TryResultView(views.TryResult{Errs: errs}))
	}
	before, after, err := u.rbac.Try(ctx, p.Tenant, candidate, req)
	if err != nil {
		pe, ok := problem.As(err)
		if !ok || pe.Code == problem.CodeInternal {
			return err
		}
		for k, m := range pe.Fields {
			switch {
			case strings.HasPrefix(k, "request."):
				errs["try_"+strings.TrimPrefix(k, "request.")] = m
			case strings.HasPrefix(k, "rule."):
				errs[strings.TrimPrefix(k, "rule.")] = m
			default:
				errs[k] = m
			}
		}
		if len(pe.Fields) == 0 {
			errs[""] = pe.Message
		}
		return render(c, http.StatusOK, views.TryResultView(views.TryResult{Errs: errs}))
	}
	return render(c, http.StatusOK, views.TryResultView(views.TryResult{
		Before: views.Decision{Allowed: before.Allowed, Because: before.Because},
		After:  views.Decision{Allowed: after.Allowed, Because: after.Because},
	}))
}

// splitList reads "a, b,c" as [a b c].
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseLabels reads "env=prod, tier=1"; bad is the first part that is not
// key=value.
func parseLabels(s string) (labels map[string]string, bad string) {
	for _, part := range splitList(s) {
		k, v, ok := strings.Cut(part, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, part
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[k] = strings.TrimSpace(v)
	}
	return labels, ""
}
