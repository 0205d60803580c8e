package views

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
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
	// InvitedBy is who sent the invitation (an email), "" when unknown.
	InvitedBy string
	Invited   time.Time
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
	// Explained is the condition in words ("always" without one).
	Explained string
	Builtin   bool
}

// Can says which actions the page may offer the user; the server checks
// again on every request.
type Can struct {
	Create, Update, Delete bool
}

// when is the one format of times on every page (and static/streams.js
// writes the same): to the second, in UTC, so times from different pages and
// from live updates compare at a glance.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// rfc3339 is a time for machines: the datetime attribute of <time>.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// countOf says how many things a list holds: "1 team", "3 teams".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
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

// RoleOptions are the five roles, most powerful first.
func RoleOptions() []Option {
	return []Option{{"owner", "Owner"}, {"admin", "Admin"}, {"editor", "Editor"}, {"operator", "Operator"}, {"viewer", "Viewer"}}
}

// sortedErrors lists a form's messages, the form's own first, then by
// field, each naming its field.
func sortedErrors(errs FormErrors) []string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if k == "" {
			out = append(out, errs[k])
		} else {
			out = append(out, strings.ReplaceAll(strings.TrimPrefix(k, "try_"), "_", " ")+": "+errs[k])
		}
	}
	return out
}

// kindWord names a kind of object as the pages do: the organisation is
// never a "tenant" on a page, whatever the audit log's machine name.
func kindWord(kind string) string {
	if kind == "tenant" {
		return "organisation"
	}
	return kind
}
