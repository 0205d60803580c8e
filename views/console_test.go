package views_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"switchboard/views"
)

var at = time.Date(2025, 1, 31, 9, 30, 5, 0, time.UTC)

// consolePages renders every page of an organisation with sample data.
func consolePages(t *testing.T) map[string]string {
	t.Helper()
	p := samplePage()
	p.Nav = views.Sections()
	exp := at.Add(time.Hour)
	pages := map[string]templ.Component{
		"overview": views.OverviewPage(p, views.Overview{Name: "Globex", Role: "viewer", Empty: true,
			Stats:        []views.Stat{{Label: "Members", Value: "1", Href: "/t/globex/members", ID: "members"}},
			Coordination: views.Health{Available: true, Message: "Available."},
			Steps:        []views.Step{{Label: "Create a team", Href: "/t/globex/teams", Show: true}},
			ShowActivity: true, Activity: []views.AuditRow{{At: at, Actor: "ada@example.com", Action: "team.created", ObjectKind: "team", ObjectID: "payments"}}}),
		"teams": views.TeamsPage(p, []views.TeamRow{{Slug: "payments", Name: "Payments", Members: []string{"ada@example.com"}}}, views.Can{Create: true, Update: true, Delete: true}, "", "", nil),
		"members": views.MembersPage(p, []views.MemberRow{{UserID: "u1", Email: "ada@example.com", Name: "Ada", Role: "owner", Joined: at}},
			[]views.InvitationRow{{Email: "dave@example.com", Role: "viewer", InvitedBy: "ada@example.com", Invited: at}}, views.Can{Create: true, Update: true, Delete: true}, "", "viewer", nil),
		"tokens": views.TokensPage(p, []views.TokenRow{{ID: "t1", Name: "ci", Role: "editor", Created: at, Expires: &exp}}, views.Can{Create: true, Delete: true}, "", "form", "", "viewer", nil),
		"audit": views.AuditPage(p, views.AuditView{Filter: views.AuditFilter{Action: "member.", Actor: "ada"}, First: false, Next: "c2",
			Entries: []views.AuditRow{{At: at, Actor: "ada@example.com", Action: "member.invited", ObjectKind: "member", ObjectID: "dave@example.com"}}}),
		"policies": views.PoliciesPage(p, views.Can{Create: true, Delete: true}, views.PoliciesView{CanTry: true,
			Rules:  []views.PolicyRow{{ID: "r1", Role: "viewer", Resource: "election", Action: "read", Effect: "deny", Explained: "always"}},
			Matrix: []views.KindMatrix{{Kind: "lock", Actions: []string{"read"}, Rows: []views.MatrixRow{{Role: "viewer", Cells: []views.MatrixCell{{Action: "read", Verdict: "yes"}}}}}}}),
		"kv": views.KVPage(p, views.KVView{Available: true, CanWrite: true, Prefix: "flags/",
			Keys: []views.KVRow{{Key: "flags/a", Value: "true", Revision: 7}}, Form: views.KVForm{Key: "flags/a", Value: "true", Revision: "7"}}),
		"streams": views.StreamsPage(p, views.StreamsView{CanAppend: true, Example: "curl '/api/v1/tenants/globex/streams/order-1/events'",
			Tail: views.Tail{AfterVersion: -1}, Append: views.AppendForm{Expected: "any"}}),
		"stream": views.StreamPage(p, views.StreamView{Name: "order-1", Category: "order", Version: 3, CreatedAt: at, From: -1, Older: -1, CanAppend: true,
			Events: []views.EventRow{{Position: 4, Stream: "order-1", Type: "OrderPlaced", Version: 3, CreatedAt: at, Data: json.RawMessage(`{}`)}},
			Tail:   views.Tail{Stream: "order-1", Category: "order", AfterVersion: -1}, Append: views.AppendForm{Expected: "exact"}}),
		"subscriptions": views.SubscriptionsPage(p, views.SubscriptionsView{At: at, Subscriptions: []views.SubscriptionRow{{Name: "billing", Checkpoint: 4,
			Members: []views.GroupMemberRow{{Member: "w1", Checkpoint: 4, LastSeen: at, Live: true}}}}}),
		"coordination": views.CoordinationPage(p, views.Coordination{Available: true, CanForce: true,
			Locks: []views.LockRow{{Name: "orders", Owner: "pod-a", FencingToken: 3, ExpiresAt: at}}}),
		"new-organisation": views.NewTenantPage(p, "", "", nil),
	}
	out := map[string]string{}
	for name, c := range pages {
		out[name] = render(t, c)
	}
	return out
}

var (
	tagRE        = regexp.MustCompile(`(?s)<[^>]*>`)
	codeRE       = regexp.MustCompile(`(?s)<(code|pre)[^>]*>.*?</(code|pre)>`)
	leakedCallRE = regexp.MustCompile(`@[A-Za-z]+\(`)
	inlineJSRE   = regexp.MustCompile(`<script(?:\s+[^>]*)?>[^<]+</script>|<script>`)
)

// TestConsole_SaysOrganisationNeverTenant: the visible words of every page
// (code and commands apart, which show the API's paths) say organisation.
func TestConsole_SaysOrganisationNeverTenant(t *testing.T) {
	for name, html := range consolePages(t) {
		text := tagRE.ReplaceAllString(codeRE.ReplaceAllString(html, ""), " ")
		if i := strings.Index(strings.ToLower(text), "tenant"); i >= 0 {
			t.Errorf("the %s page says %q", name, text[max(0, i-40):min(len(text), i+40)])
		}
	}
}

// TestConsole_NoInlineScriptStyleOrHandlers: the pages work under the
// server's Content-Security-Policy.
func TestConsole_NoInlineScriptStyleOrHandlers(t *testing.T) {
	for name, html := range consolePages(t) {
		for _, bad := range []string{" style=", "hx-on", "javascript:", " onclick=", " onchange=", "hx-vals=\"js:", "hx-vars"} {
			if strings.Contains(html, bad) {
				t.Errorf("the %s page holds %q", name, bad)
			}
		}
		if m := leakedCallRE.FindString(html); m != "" {
			t.Errorf("the %s page shows a component call as text: %s", name, m)
		}
		if inlineJSRE.MatchString(html) {
			t.Errorf("the %s page holds an inline script", name)
		}
	}
}

// TestConsole_OneTimeFormat: every page writes times one way.
func TestConsole_OneTimeFormat(t *testing.T) {
	for name, html := range consolePages(t) {
		if strings.Contains(html, "09:30 UTC") || strings.Contains(html, ">09:30:05 UTC") {
			t.Errorf("the %s page writes a time another way", name)
		}
	}
	pages := consolePages(t)
	for _, name := range []string{"members", "audit", "coordination", "stream", "overview"} {
		if !strings.Contains(pages[name], `<time datetime="2025-01-31T09:30:05Z">2025-01-31 09:30:05 UTC</time>`) {
			t.Errorf("the %s page lacks the one time format", name)
		}
	}
}

func TestLayout_NavNamesTheSectionsItHides(t *testing.T) {
	p := samplePage()
	p.Role = "editor"
	for _, s := range views.Sections() {
		if s.Section == views.SectionTokens || s.Section == views.SectionAudit {
			p.Hidden = append(p.Hidden, s.Label)
		} else {
			p.Nav = append(p.Nav, s)
		}
	}
	out := render(t, views.Layout(p))
	nav := between(t, out, `<nav class="sections"`, `</nav>`)
	if strings.Contains(nav, `data-section="tokens"`) || strings.Contains(nav, `data-section="audit"`) {
		t.Errorf("hidden sections are linked: %s", nav)
	}
	if !strings.Contains(nav, "Not shown: API tokens and Audit log. Your role here (editor) may not use them") {
		t.Errorf("no note on the hidden sections: %s", nav)
	}
	if !strings.Contains(out, `"historyCacheSize":0`) {
		t.Error("htmx keeps copies of signed-in pages")
	}
}

func TestMembersPage_TellsJoinedFromInvited(t *testing.T) {
	html := consolePages(t)["members"]
	joined := between(t, html, `<table id="members-table"`, `</table>`)
	if strings.Contains(joined, "dave@example.com") || !strings.Contains(joined, "Joined") {
		t.Errorf("the joined table: %s", joined)
	}
	inv := between(t, html, `<table id="invitations-table"`, `</table>`)
	for _, want := range []string{"dave@example.com", "Invited, not joined", "Invited by", "ada@example.com", "Cancel invitation"} {
		if !strings.Contains(inv, want) {
			t.Errorf("the invitations table lacks %q: %s", want, inv)
		}
	}
	if strings.Contains(inv, "Joined") {
		t.Errorf("an invitation reads as joined: %s", inv)
	}
	if !strings.Contains(html, "1 person has joined") || !strings.Contains(html, "1 invitation is waiting") {
		t.Errorf("no summary of who joined and who is invited")
	}
}

func TestAuditPage_FiltersSurviveThePaging(t *testing.T) {
	html := consolePages(t)["audit"]
	older := between(t, html, `data-testid="audit-older"`, `>`)
	for _, want := range []string{"action=member.", "actor=ada", "cursor=c2"} {
		if !strings.Contains(older, want) {
			t.Errorf("the older link lacks %s: %s", want, older)
		}
	}
	if !strings.Contains(html, `value="member."`) || !strings.Contains(html, `id="from"`) || !strings.Contains(html, `id="to"`) {
		t.Error("the filter form does not show its values")
	}
}

func TestKVPage_EditsCarryTheRevisionTheyRead(t *testing.T) {
	html := consolePages(t)["kv"]
	form := between(t, html, `<form method="post" action="/t/globex/kv" class="form kv-form"`, `</form>`)
	if !strings.Contains(form, `name="revision" value="7"`) {
		t.Errorf("the edit form does not carry the revision: %s", form)
	}
	del := between(t, html, `action="/t/globex/kv/delete"`, `</form>`)
	if !strings.Contains(del, `name="revision" value="7"`) || !strings.Contains(del, `name="key" value="flags/a"`) {
		t.Errorf("the delete does not carry the key's revision: %s", del)
	}
	if !strings.Contains(html, `data-ws="/api/v1/tenants/globex/kv-watch?prefix=flags%2F"`) {
		t.Error("the list does not follow the kv-watch stream of its prefix")
	}
}

func TestCoordinationPage_OffersForceRelease(t *testing.T) {
	html := consolePages(t)["coordination"]
	if !strings.Contains(html, `hx-post="/t/globex/coordination/locks/release?name=orders"`) {
		t.Errorf("no force release for an admin:\n%s", between(t, html, `<table id="locks-table"`, `</table>`))
	}
	html = render(t, views.LocksTable("globex", []views.LockRow{{Name: "orders", Owner: "pod-a", ExpiresAt: at}}, false, ""))
	if strings.Contains(html, "release") {
		t.Error("force release offered to a role that may not")
	}
}

func TestStreamPages_OneLiveStreamFeedsEveryPart(t *testing.T) {
	pages := consolePages(t)
	if n := strings.Count(pages["streams"], "data-tail "); n != 1 {
		t.Errorf("the streams page has %d live streams, want 1", n)
	}
	if !strings.Contains(pages["streams"], "data-streams-body") || !strings.Contains(pages["streams"], `id="append-form"`) {
		t.Error("the streams page lacks its live list or append form")
	}
	stream := pages["stream"]
	for _, want := range []string{`data-summary="version"`, `data-summary="last-write"`, "data-tail-body", `name="expected"`, `value="exact" selected`} {
		if !strings.Contains(stream, want) {
			t.Errorf("the stream page lacks %q", want)
		}
	}
}
