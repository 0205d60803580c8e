package views

import (
	"encoding/json"
	"strconv"
	"time"
)

// FormErrors holds per-field messages of a rejected form, keyed by field
// name, plus a message for the form as a whole under "".
type FormErrors map[string]string

// TeamRow is a team as listed.
type TeamRow struct {
	Slug, Name string
	Members    []string
}

// MemberRow is a member as listed.
type MemberRow struct {
	UserID, Email, Name, Role string
	Joined                    time.Time
}

// InvitationRow is a pending invitation: an address that has not confirmed
// an account yet, so it has no name and has joined nothing.
type InvitationRow struct {
	Email, Role string
	Invited     time.Time
}

// TokenRow is an API token as listed.
type TokenRow struct {
	ID, Name, Role             string
	Created                    time.Time
	Expires, LastUsed, Revoked *time.Time
}

// AuditRow is one audit entry.
type AuditRow struct {
	At                                  time.Time
	Actor, Action, ObjectKind, ObjectID string
	RemoteAddr                          string
	Before, After                       json.RawMessage
}

// PolicyRow is a policy rule.
type PolicyRow struct {
	ID, Role, Resource, Action, Condition, Effect string
	Builtin                                       bool
}

// Can says which actions the page may offer the user; the server checks
// again on every request.
type Can struct {
	Create, Update, Delete bool
}

func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func whenPtr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return when(*t)
}

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}

func tokenState(t TokenRow, now time.Time) string {
	switch {
	case t.Revoked != nil:
		return "revoked"
	case t.Expires != nil && !t.Expires.After(now):
		return "expired"
	}
	return "active"
}

func itoa(n int) string { return strconv.Itoa(n) }

func tenantRules(rs []PolicyRow) []PolicyRow {
	var out []PolicyRow
	for _, r := range rs {
		if !r.Builtin {
			out = append(out, r)
		}
	}
	return out
}

func builtinRules(rs []PolicyRow) []PolicyRow {
	var out []PolicyRow
	for _, r := range rs {
		if r.Builtin {
			out = append(out, r)
		}
	}
	return out
}

// RoleOptions are the five roles, most powerful first.
func RoleOptions() []Option {
	return []Option{{"owner", "Owner"}, {"admin", "Admin"}, {"editor", "Editor"}, {"operator", "Operator"}, {"viewer", "Viewer"}}
}
