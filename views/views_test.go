package views_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/a-h/templ"

	"switchboard/views"
)

// render renders c, with children as its { children... }, and returns the HTML.
func render(t testing.TB, c templ.Component, children ...templ.Component) string {
	t.Helper()
	ctx := context.Background()
	if len(children) > 0 {
		ctx = templ.WithChildren(ctx, templ.Join(children...))
	}
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	return buf.String()
}

// between returns the part of s from the first start up to and including
// the first end after it, failing the test when either is missing.
func between(t testing.TB, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("%q not found in:\n%s", start, s)
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		t.Fatalf("%q not found after %q in:\n%s", end, start, s)
	}
	return s[i : i+j+len(end)]
}

func samplePage() views.Page {
	return views.Page{
		Title: "Members",
		CSRF:  "csrf-tok-123",
		User:  &views.PageUser{Name: "Ada", Email: "ada@example.com"},
		Tenants: []views.TenantLink{
			{Slug: "acme", Name: "Acme", Role: "owner"},
			{Slug: "globex", Name: "Globex", Role: "viewer"},
			{Slug: "initech", Name: "Initech", Role: "operator"},
		},
		Current: "globex",
		Section: views.SectionMembers,
		Flash:   &views.Flash{Kind: views.FlashSuccess, Message: "Saved."},
	}
}

func TestLayout_CSRFMetaHoldsToken(t *testing.T) {
	out := render(t, views.Layout(samplePage()))
	if !strings.Contains(out, `<meta name="csrf-token" content="csrf-tok-123">`) {
		t.Errorf("csrf meta tag missing or wrong:\n%s", out)
	}
	logout := between(t, out, `<form id="logout-form"`, `</form>`)
	if !strings.Contains(logout, `method="post" action="/logout"`) ||
		!strings.Contains(logout, `<input type="hidden" name="_csrf" value="csrf-tok-123">`) {
		t.Errorf("log-out form must POST /logout with the _csrf field:\n%s", logout)
	}
}

var menuLinkRE = regexp.MustCompile(`<a href="([^"]*)" data-slug="([^"]*)"( aria-current="true")?>`)

func TestLayout_SwitcherIsAMenuOfLinksKeepingTheSection(t *testing.T) {
	p := samplePage()
	out := render(t, views.Layout(p))
	menu := between(t, out, `<details class="org-switch"`, `</details>`)
	if strings.Contains(menu, "<select") || strings.Contains(menu, "data-navigate") {
		t.Errorf("the switcher must not navigate on a change of a select: %s", menu)
	}
	got := menuLinkRE.FindAllStringSubmatch(menu, -1)
	if len(got) != len(p.Tenants) {
		t.Fatalf("got %d links, want one per organisation: %s", len(got), menu)
	}
	for i, m := range got {
		want := "/t/" + p.Tenants[i].Slug + "/members" // the page's own section
		if m[1] != want {
			t.Errorf("link %d goes to %q, want %q", i, m[1], want)
		}
		if current := m[3] != ""; current != (p.Tenants[i].Slug == p.Current) {
			t.Errorf("link %q marked current = %v", m[1], current)
		}
	}
	if !strings.Contains(menu, `href="/tenants/new"`) {
		t.Errorf("no link to create an organisation: %s", menu)
	}
	if !strings.Contains(menu, "Organisation") || strings.Contains(strings.ToLower(menu), "tenant<") {
		t.Errorf("the switcher must say organisation: %s", menu)
	}

	// From a page outside any section the links go to each overview.
	p.Section = ""
	out = render(t, views.Layout(p))
	if !strings.Contains(out, `<a href="/t/acme" data-slug="acme">`) {
		t.Errorf("without a section the switcher should go to the overview:\n%s", between(t, out, `<details`, `</details>`))
	}
}

func TestLayout_NoSwitcherOrNavWithoutUser(t *testing.T) {
	p := samplePage()
	p.User = nil
	out := render(t, views.Layout(p))
	for _, s := range []string{"tenant-switcher", `data-testid="nav"`, "logout-form"} {
		if strings.Contains(out, s) {
			t.Errorf("signed-out page contains %q", s)
		}
	}
}

func TestLayout_MarksActiveNavItem(t *testing.T) {
	p := samplePage()
	p.Nav = views.Sections()
	out := render(t, views.Layout(p))
	nav := between(t, out, `<nav class="sections"`, `</nav>`)
	for _, s := range []string{"teams", "members", "tokens", "audit", "policies"} {
		if !strings.Contains(nav, `href="/t/globex/`+s+`"`) {
			t.Errorf("nav lacks link to %s: %s", s, nav)
		}
	}
	if n := strings.Count(nav, `aria-current="page"`); n != 1 {
		t.Fatalf("aria-current appears %d times, want 1: %s", n, nav)
	}
	active := between(t, nav, `<a href="/t/globex/members"`, `</a>`)
	if !strings.Contains(active, `aria-current="page"`) {
		t.Errorf("members link not marked current: %s", active)
	}
}

func TestLayout_RendersFlashAndChildren(t *testing.T) {
	out := render(t, views.Layout(samplePage()), views.EmptyState("No members yet", "Invite someone."))
	main := between(t, out, `<main`, `</main>`)
	if !strings.Contains(main, `class="flash flash-success" role="status"`) || !strings.Contains(main, "Saved.") {
		t.Errorf("flash missing from main: %s", main)
	}
	if !strings.Contains(main, "No members yet") {
		t.Errorf("children missing from main: %s", main)
	}
}

func TestLayout_EscapesUserData(t *testing.T) {
	const evil = `"><script>alert(1)</script>`
	p := samplePage()
	p.Title = evil
	p.CSRF = evil
	p.User.Name = evil
	p.Tenants = append(p.Tenants, views.TenantLink{Slug: evil, Name: evil, Role: evil})
	p.Flash = &views.Flash{Kind: views.FlashError, Message: evil}
	out := render(t, views.Layout(p), views.RoleBadge(evil), views.SecretOnce(evil, evil))
	if strings.Contains(out, "<script>alert") {
		t.Fatalf("unescaped <script> in output:\n%s", out)
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Errorf("expected escaped &lt;script&gt; in output:\n%s", out)
	}
	if strings.Count(out, "<script") != 3 { // htmx.min.js, app.js and tables.js only
		t.Errorf("want exactly 3 <script> elements:\n%s", out)
	}
}

func TestLayout_NoExternalURLs(t *testing.T) {
	out := render(t, views.Layout(samplePage()))
	for _, s := range []string{"http://", "https://", `src="//`, `href="//`} {
		if strings.Contains(out, s) {
			t.Errorf("layout references an external URL (%q)", s)
		}
	}
}

func TestField_IDIsNameAndErrorIsLinked(t *testing.T) {
	out := render(t, views.Field("Email", "email", "email", "a@b.c", "Enter a valid email.", true))
	input := between(t, out, "<input", ">")
	for _, s := range []string{`id="email"`, `name="email"`, `type="email"`, `value="a@b.c"`, " required", `aria-invalid="true"`, `aria-describedby="email-error"`} {
		if !strings.Contains(input, s) {
			t.Errorf("input lacks %s: %s", s, input)
		}
	}
	if !strings.Contains(out, `<label for="email">`) || !strings.Contains(out, `<p class="field-error" id="email-error">Enter a valid email.</p>`) {
		t.Errorf("label or error missing: %s", out)
	}

	clean := render(t, views.Field("Name", "name", "text", "", "", false))
	if strings.Contains(clean, "aria-invalid") || strings.Contains(clean, "field-error") || strings.Contains(clean, " required") {
		t.Errorf("field without error or required: %s", clean)
	}
}

func TestSelectField_SelectsMatchingOption(t *testing.T) {
	opts := []views.Option{{Value: "viewer", Label: "Viewer"}, {Value: "admin", Label: "Admin"}}
	out := render(t, views.SelectField("Role", "role", opts, "admin", ""))
	if !strings.Contains(out, `<select id="role" name="role">`) {
		t.Errorf("select id/name: %s", out)
	}
	if !strings.Contains(out, `<option value="admin" selected>Admin</option>`) || strings.Contains(out, `<option value="viewer" selected>`) {
		t.Errorf("wrong selection: %s", out)
	}
}

func TestRoleBadge_UnknownRoleGetsPlainClass(t *testing.T) {
	if out := render(t, views.RoleBadge("operator")); !strings.Contains(out, `class="badge badge-operator"`) {
		t.Errorf("operator badge: %s", out)
	}
	if out := render(t, views.RoleBadge("x y")); !strings.Contains(out, `class="badge"`) {
		t.Errorf("unknown role should get the plain badge: %s", out)
	}
}

func TestSecretOnce_HasCopyButtonAndWarning(t *testing.T) {
	out := render(t, views.SecretOnce("Your new token", "sbt_secret"))
	if !strings.Contains(out, `id="secret-once-value" data-testid="secret-value">sbt_secret</code>`) {
		t.Errorf("secret value: %s", out)
	}
	if !strings.Contains(out, `data-copy="secret-once-value"`) {
		t.Errorf("copy button must point at the value's id: %s", out)
	}
	if !strings.Contains(out, "will not be shown again") {
		t.Errorf("warning missing: %s", out)
	}
}

func TestFlashBox_NilRendersNothing(t *testing.T) {
	if out := render(t, views.FlashBox(nil)); out != "" {
		t.Errorf("FlashBox(nil) = %q", out)
	}
}

func TestTenantPath_EscapesSlug(t *testing.T) {
	if got := views.TenantPath("a/b", views.SectionTeams); got != "/t/a%2Fb/teams" {
		t.Errorf("TenantPath = %q", got)
	}
}

func TestAuthLayout_CenteredCardWithoutNav(t *testing.T) {
	out := render(t, views.AuthLayout("Sign in"), views.CSRFInput("tok"))
	if !strings.Contains(out, `class="auth-card"`) || !strings.Contains(out, "<h1>Sign in</h1>") {
		t.Errorf("auth card/title: %s", out)
	}
	if strings.Contains(out, `data-testid="nav"`) || strings.Contains(out, "tenant-switcher") {
		t.Errorf("auth layout must not have nav or switcher: %s", out)
	}
	if !strings.Contains(out, `<input type="hidden" name="_csrf" value="tok">`) {
		t.Errorf("children missing: %s", out)
	}
}
