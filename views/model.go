package views

import "net/url"

// Page is what Layout needs to draw the frame around a page: the document
// title, the CSRF token for forms and htmx requests, the signed-in user and
// their tenants, the active tenant and nav section, and an optional flash.
type Page struct {
	Title   string
	CSRF    string
	User    *PageUser // nil when nobody is signed in: no switcher, no user menu
	Tenants []TenantLink
	Current string // current tenant slug; empty hides the section nav
	Section string // active nav item: one of the Section* constants
	Flash   *Flash
}

// PageUser is the signed-in user as shown in the top bar.
type PageUser struct {
	Name, Email string
	// Unverified shows a banner asking to confirm the address (and a
	// button that mails a new link).
	Unverified bool
}

// TenantLink is one tenant the user belongs to, with their role in it.
type TenantLink struct {
	Slug, Name, Role string
}

// Flash kinds.
const (
	FlashSuccess = "success"
	FlashError   = "error"
)

// Flash is a one-time message shown above the page content.
type Flash struct {
	Kind    string // FlashSuccess or FlashError
	Message string
}

// Option is one choice of a SelectField.
type Option struct {
	Value, Label string
}

// Nav sections, as used in Page.Section and in the tenant-scoped paths
// /t/{tenant}/{section}.
const (
	SectionTeams    = "teams"
	SectionMembers  = "members"
	SectionTokens   = "tokens"
	SectionAudit    = "audit"
	SectionPolicies = "policies"
	// SectionCoordination is the lock, election and cluster page.
	SectionCoordination = "coordination"
	// SectionStreams is the event store's stream browser.
	SectionStreams = "streams"
)

// navItem is one entry of the section nav.
type navItem struct {
	Section, Label string
}

// navItems returns the section nav in display order. A function, not a
// package variable, so no caller can change the nav for everyone.
func navItems() []navItem {
	return []navItem{
		{SectionTeams, "Teams"},
		{SectionStreams, "Event streams"},
		{SectionMembers, "Members"},
		{SectionTokens, "API tokens"},
		{SectionAudit, "Audit log"},
		{SectionPolicies, "Policies"},
		{SectionCoordination, "Locks & elections"},
	}
}

// TenantPath returns the browser path of a section of a tenant,
// /t/{tenant}/{section}, with the slug path-escaped.
func TenantPath(tenant, section string) string {
	return "/t/" + url.PathEscape(tenant) + "/" + section
}

// roleBadgeClass keeps class names to a fixed set whatever the role string:
// the five membership roles get their colour, anything else the plain badge.
func roleBadgeClass(role string) string {
	switch role {
	case "owner", "admin", "editor", "operator", "viewer":
		return "badge badge-" + role
	}
	return "badge"
}

// flashClass and flashRole map a flash kind to its style and ARIA role:
// errors interrupt (alert), successes are announced politely (status).
func flashClass(kind string) string {
	if kind == FlashError {
		return "flash flash-error"
	}
	return "flash flash-success"
}

func flashRole(kind string) string {
	if kind == FlashError {
		return "alert"
	}
	return "status"
}

// pageTitle is the <title>: "X · Switchboard", or just the product name.
func pageTitle(title string) string {
	if title == "" {
		return "Switchboard"
	}
	return title + " · Switchboard"
}
