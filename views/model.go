package views

import "net/url"

// Page is what Layout needs to draw the frame around a page: the document
// title, the CSRF token for forms and htmx requests, the signed-in user and
// their organisations, the active organisation and nav section, and an
// optional flash.
type Page struct {
	Title   string
	CSRF    string
	User    *PageUser // nil when nobody is signed in: no switcher, no user menu
	Tenants []TenantLink
	Current string // current organisation's slug; empty hides the section nav
	Section string // active nav item: one of the Section* constants
	// Role is the user's role in the current organisation.
	Role string
	// Nav holds the sections the user's role may open in the current
	// organisation, in display order; Hidden the labels of the others,
	// which the nav names in a note instead of offering links that answer
	// 403.
	Nav    []NavItem
	Hidden []string
	Flash  *Flash
}

// PageUser is the signed-in user as shown in the top bar.
type PageUser struct {
	Name, Email string
	// Unverified shows a banner asking to confirm the address (and a
	// button that mails a new link).
	Unverified bool
}

// TenantLink is one organisation the user belongs to, with their role in it.
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

// Nav sections, as used in Page.Section and in the organisation-scoped
// paths /t/{slug}/{section}.
const (
	// SectionOverview is the organisation's landing page, /t/{slug}.
	SectionOverview = "overview"
	SectionTeams    = "teams"
	SectionMembers  = "members"
	SectionTokens   = "tokens"
	SectionAudit    = "audit"
	SectionPolicies = "policies"
	// SectionCoordination is the lock, election and cluster page.
	SectionCoordination = "coordination"
	// SectionStreams is the event store's stream browser (and its named
	// subscriptions).
	SectionStreams = "streams"
	// SectionKV is the key-value space.
	SectionKV = "kv"
	// SectionCatalog is the catalog: entities by kind, imports.
	SectionCatalog = "catalog"
	// SectionTopology is the topology graph.
	SectionTopology = "topology"
	// SectionDLQ is the dead-letter queues: browse, replay, discard.
	SectionDLQ = "dlq"
	// SectionTraces is tracing: the live tail, search and a trace's
	// waterfall.
	SectionTraces = "traces"
)

// NavItem is one entry of the section nav.
type NavItem struct {
	Section, Label string
}

// Sections returns every section in display order. A function, not a
// package variable, so no caller can change the nav for everyone.
func Sections() []NavItem {
	return []NavItem{
		{SectionOverview, "Overview"},
		{SectionTeams, "Teams"},
		{SectionMembers, "Members"},
		{SectionTopology, "Topology"},
		{SectionCatalog, "Catalog"},
		{SectionDLQ, "Dead letters"},
		{SectionTraces, "Traces"},
		{SectionStreams, "Event streams"},
		{SectionKV, "Key-value"},
		{SectionCoordination, "Locks & elections"},
		{SectionTokens, "API tokens"},
		{SectionAudit, "Audit log"},
		{SectionPolicies, "Policies"},
	}
}

// TenantPath returns the browser path of a section of an organisation,
// /t/{slug}/{section} (the overview is /t/{slug}), with the slug
// path-escaped.
func TenantPath(tenant, section string) string {
	if section == SectionOverview || section == "" {
		return "/t/" + url.PathEscape(tenant)
	}
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

// currentTenant is the organisation the page is in, or a zero link.
func currentTenant(p Page) TenantLink {
	for _, t := range p.Tenants {
		if t.Slug == p.Current {
			return t
		}
	}
	return TenantLink{}
}

// hiddenNote says which sections the nav leaves out, and why.
func hiddenNote(p Page) string {
	if len(p.Hidden) == 0 {
		return ""
	}
	return "Not shown: " + joinWords(p.Hidden) + ". Your role here (" + p.Role + ") may not use them; an admin or owner can."
}

// joinWords joins words as a sentence does: "a", "a and b", "a, b and c".
func joinWords(ws []string) string {
	switch len(ws) {
	case 0:
		return ""
	case 1:
		return ws[0]
	}
	out := ws[0]
	for _, w := range ws[1 : len(ws)-1] {
		out += ", " + w
	}
	return out + " and " + ws[len(ws)-1]
}
