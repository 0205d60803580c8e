package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/e2e/client"
)

const testPassword = "correct horse battery staple"

// wantProblem fails the test unless err is a problem document with status
// and code.
func wantProblem(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %d %s", status, code)
	}
	pe, ok := client.AsError(err)
	if !ok {
		t.Fatalf("got %v, want a %d %s problem", err, status, code)
	}
	if pe.Status != status || pe.Code != code {
		t.Fatalf("got %v, want %d %s", pe, status, code)
	}
	return pe
}

// mustOK fails the test when err is not nil.
func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// signupAndLogin creates an account owning tenant slug and returns a client
// logged in as it.
func signupAndLogin(t *testing.T, ctx context.Context, s *server, email, slug string) *client.Client {
	t.Helper()
	c := s.newClient(t)
	in := client.SignupRequest{Email: email, Password: testPassword, Name: strings.Split(email, "@")[0]}
	if slug != "" {
		in.Tenant = &client.NewTenant{Slug: slug, Name: strings.ToUpper(slug[:1]) + slug[1:]}
	}
	_, err := c.Signup(ctx, in)
	mustOK(t, "signup "+email, err)
	_, err = c.VerifyEmail(ctx, verificationToken(t, s, email))
	mustOK(t, "confirm "+email, err)
	_, err = c.Login(ctx, email, testPassword)
	mustOK(t, "login "+email, err)
	return c
}

// verificationLink waits for the mail s sent to email and returns its link
// to confirm the address.
func verificationLink(t *testing.T, s *server, email string) string {
	t.Helper()
	m := s.Mail.WaitFor(t, email)
	for _, link := range m.Links() {
		// The link starts with the server's public URL (shared by the nodes
		// of a cluster); the browser tests follow it on this server.
		if _, rest, ok := strings.Cut(link, "/verify-email?token="); ok && rest != "" {
			return s.URL + "/verify-email?token=" + rest
		}
	}
	t.Fatalf("the mail to %s holds no confirmation link:\n%s", email, m.Text)
	return ""
}

// verificationToken is the token of verificationLink.
func verificationToken(t *testing.T, s *server, email string) string {
	t.Helper()
	u, err := url.Parse(verificationLink(t, s, email))
	mustOK(t, "parse the confirmation link", err)
	return u.Query().Get("token")
}

// run runs step as a subtest and stops the test at the first failing step:
// the steps of a flow build on each other.
func run(t *testing.T, name string, step func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, step) {
		t.FailNow()
	}
}

func TestAPI_SignupLoginTeamsTokensAudit(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := t.Context()
	c := s.newClient(t)

	run(t, "signup", func(t *testing.T) {
		res, err := c.Signup(ctx, client.SignupRequest{Email: "Ada@Example.com", Password: testPassword, Name: "Ada Lovelace",
			Tenant: &client.NewTenant{Slug: "acme", Name: "Acme Corp"}})
		mustOK(t, "signup", err)
		if res.Email != "ada@example.com" || res.Message == "" {
			t.Fatalf("signup answer %+v: want the mail sent to ada@example.com", res)
		}
		v, err := c.VerifyEmail(ctx, verificationToken(t, s, "ada@example.com"))
		mustOK(t, "confirm the address", err)
		if v.User.Email != "ada@example.com" || v.User.ID == "" {
			t.Fatalf("confirmation %+v: want ada@example.com", v)
		}
	})
	run(t, "signup rejects bad input and does not tell a known address", func(t *testing.T) {
		again, err := c.Signup(ctx, client.SignupRequest{Email: "ada@example.com", Password: testPassword, Name: "Ada again"})
		mustOK(t, "signup again", err)
		if again.Email != "ada@example.com" {
			t.Fatalf("a known address answered %+v", again)
		}
		if m := s.Mail.WaitFor(t, "ada@example.com"); strings.Contains(m.Text, "verify-email") {
			t.Fatalf("the mail to a known address holds a confirmation link:\n%s", m.Text)
		}
		_, err = c.Signup(ctx, client.SignupRequest{Email: "not-an-email", Password: "short", Name: "X"})
		pe := wantProblem(t, err, 400, "invalid")
		if pe.Errors["email"] == "" || pe.Errors["password"] == "" {
			t.Fatalf("validation errors %v: want email and password", pe.Errors)
		}
	})
	run(t, "login", func(t *testing.T) {
		_, err := c.Login(ctx, "ada@example.com", "wrong password")
		wantProblem(t, err, 401, "unauthenticated")
		_, err = c.Me(ctx)
		wantProblem(t, err, 401, "unauthenticated")

		res, err := c.Login(ctx, "ada@example.com", testPassword)
		mustOK(t, "login", err)
		if res.TokenType != "Bearer" || res.ExpiresIn <= 0 {
			t.Fatalf("login answer %+v: want a Bearer token with a lifetime", res)
		}
		me, err := c.Me(ctx)
		mustOK(t, "me", err)
		if me.User == nil || me.User.Email != "ada@example.com" || len(me.Memberships) != 1 ||
			me.Memberships[0].Tenant.Slug != "acme" || me.Memberships[0].Role != client.RoleOwner {
			t.Fatalf("me %+v: want ada, owner of acme", me)
		}
	})
	run(t, "create and list teams", func(t *testing.T) {
		team, err := c.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments Core"})
		mustOK(t, "create team", err)
		if team.Slug != "payments" || team.Name != "Payments Core" || team.Version < 1 || team.ID == "" {
			t.Fatalf("created team %+v", team)
		}
		_, err = c.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Again"})
		wantProblem(t, err, 409, "conflict")
		_, err = c.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "Not A Slug", Name: "Bad"})
		if pe := wantProblem(t, err, 400, "invalid"); pe.Errors["slug"] == "" {
			t.Fatalf("validation errors %v: want slug", pe.Errors)
		}
		_, err = c.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "search", Name: "Search"})
		mustOK(t, "create second team", err)

		// Page through with one team per page: every team once, then the end.
		var seen []string
		opts := client.ListOptions{Limit: 1}
		for range 5 {
			page, err := c.ListTeams(ctx, "acme", opts)
			mustOK(t, "list teams", err)
			for _, tm := range page.Items {
				seen = append(seen, tm.Slug)
			}
			if page.NextCursor == "" {
				break
			}
			opts.Cursor = page.NextCursor
		}
		slices.Sort(seen)
		if !slices.Equal(seen, []string{"payments", "search"}) {
			t.Fatalf("listed teams %v: want payments and search, each once", seen)
		}
	})

	var tok client.CreatedToken
	run(t, "an API token works until it is revoked", func(t *testing.T) {
		var err error
		tok, err = c.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "ci-deploy", Role: client.RoleEditor})
		mustOK(t, "create token", err)
		if !strings.HasPrefix(tok.Secret, "sb_") || tok.ID == "" || tok.Role != client.RoleEditor {
			t.Fatalf("created token %+v: want an sb_ secret, an id and the editor role", tok)
		}
		tc := c.WithToken(tok.Secret)
		me, err := tc.Me(ctx)
		mustOK(t, "me with the token", err)
		if me.Token == nil || me.Token.ID != tok.ID || me.Token.Tenant.Slug != "acme" || me.Token.Role != client.RoleEditor {
			t.Fatalf("me with the token %+v: want token %s of acme", me, tok.ID)
		}
		teams, err := tc.ListTeams(ctx, "acme", client.ListOptions{})
		mustOK(t, "list teams with the token", err)
		if len(teams.Items) != 2 {
			t.Fatalf("teams seen with the token %+v: want 2", teams.Items)
		}
		listed, err := c.ListTokens(ctx, "acme", client.ListOptions{})
		mustOK(t, "list tokens", err)
		if len(listed.Items) != 1 || listed.Items[0].LastUsedAt == nil || listed.Items[0].RevokedAt != nil {
			t.Fatalf("listed tokens %+v: want one, used and not revoked", listed.Items)
		}

		mustOK(t, "revoke", c.RevokeToken(ctx, "acme", tok.ID))
		_, err = tc.ListTeams(ctx, "acme", client.ListOptions{})
		wantProblem(t, err, 401, "unauthenticated")
		_, err = tc.Me(ctx)
		wantProblem(t, err, 401, "unauthenticated")
		listed, err = c.ListTokens(ctx, "acme", client.ListOptions{})
		mustOK(t, "list tokens", err)
		if len(listed.Items) != 1 || listed.Items[0].RevokedAt == nil {
			t.Fatalf("listed tokens %+v: want the token, revoked", listed.Items)
		}
	})
	run(t, "a viewer token cannot write", func(t *testing.T) {
		viewer, err := c.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "dashboard", Role: client.RoleViewer,
			ExpiresAt: new(time.Now().Add(24 * time.Hour))})
		mustOK(t, "create viewer token", err)
		vc := c.WithToken(viewer.Secret)
		_, err = vc.ListTeams(ctx, "acme", client.ListOptions{})
		mustOK(t, "viewer lists teams", err)
		_, err = vc.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "nope", Name: "Nope"})
		wantProblem(t, err, 403, "forbidden")
		_, err = vc.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "escalate", Role: client.RoleOwner})
		wantProblem(t, err, 403, "forbidden")
	})
	run(t, "the audit log records the changes", func(t *testing.T) {
		page, err := c.Audit(ctx, "acme", client.ListOptions{Limit: 200})
		mustOK(t, "audit", err)
		byAction := map[string][]client.AuditEntry{}
		for i, e := range page.Items {
			byAction[e.Action] = append(byAction[e.Action], e)
			if i > 0 && e.At.After(page.Items[i-1].At) {
				t.Errorf("audit entries not newest first: %s after %s", e.At, page.Items[i-1].At)
			}
		}
		for _, want := range []struct{ action, object string }{
			{"team.created", "payments"},
			{"team.created", "search"},
			{"token.created", tok.ID},
			{"token.revoked", tok.ID},
		} {
			i := slices.IndexFunc(byAction[want.action], func(e client.AuditEntry) bool { return e.ObjectID == want.object })
			if i < 0 {
				t.Errorf("no %s entry for %s in the audit log: %+v", want.action, want.object, page.Items)
				continue
			}
			e := byAction[want.action][i]
			if e.Actor != "ada@example.com" || e.ActorID == nil || e.RemoteAddr != "127.0.0.1" || e.RequestID == "" {
				t.Errorf("%s entry %+v: want actor ada@example.com from 127.0.0.1 with a request id", want.action, e)
			}
		}
		if e := byAction["token.revoked"]; len(e) == 1 && (len(e[0].Before) == 0 || len(e[0].After) == 0) {
			t.Errorf("token.revoked entry %+v: want before and after", e[0])
		}
		// Failed requests leave nothing behind: one entry per team, none for
		// the duplicate, the invalid team or the viewer's attempts.
		if n := len(byAction["team.created"]); n != 2 {
			t.Errorf("%d team.created entries, want 2", n)
		}
	})
}

func TestAPI_AnotherTenantsObjectsAreNotFound(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := t.Context()
	ada := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	bob := signupAndLogin(t, ctx, s, "bob@example.com", "globex")

	_, err := ada.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
	mustOK(t, "ada creates a team", err)
	adaTok, err := ada.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "ci", Role: client.RoleAdmin})
	mustOK(t, "ada creates a token", err)

	// Bob, signed in, reaches into acme: every answer is 404, the same as
	// for a tenant that does not exist, so nothing leaks.
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"list teams", func() error { _, err := bob.ListTeams(ctx, "acme", client.ListOptions{}); return err }},
		{"create team", func() error {
			_, err := bob.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "x", Name: "X"})
			return err
		}},
		{"create token", func() error {
			_, err := bob.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "x", Role: client.RoleViewer})
			return err
		}},
		{"revoke token", func() error { return bob.RevokeToken(ctx, "acme", adaTok.ID) }},
		{"audit", func() error { _, err := bob.Audit(ctx, "acme", client.ListOptions{}); return err }},
		{"revoke acme's token in globex", func() error { return bob.RevokeToken(ctx, "globex", adaTok.ID) }},
		{"acme's token on globex", func() error {
			_, err := ada.WithToken(adaTok.Secret).ListTeams(ctx, "globex", client.ListOptions{})
			return err
		}},
		{"a tenant that does not exist", func() error { _, err := bob.ListTeams(ctx, "no-such-tenant", client.ListOptions{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblem(t, tc.call(), 404, "not_found") })
	}

	// Nothing of Bob's attempts took effect.
	_, err = ada.WithToken(adaTok.Secret).ListTeams(ctx, "acme", client.ListOptions{})
	mustOK(t, "ada's token still works", err)
	page, err := ada.Audit(ctx, "acme", client.ListOptions{})
	mustOK(t, "acme's audit log", err)
	for _, e := range page.Items {
		if strings.Contains(e.Actor, "bob") {
			t.Errorf("bob appears in acme's audit log: %+v", e)
		}
	}
}

func TestAPI_OpenAPIDocumentIsJSON(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	raw, err := s.newClient(t).OpenAPI(t.Context())
	mustOK(t, "GET /api/v1/openapi.json", err)
	if !json.Valid(raw) {
		t.Fatalf("the OpenAPI document is not valid JSON")
	}
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Info    struct{ Title string }     `json:"info"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode the OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Info.Title == "" {
		t.Errorf("openapi %q, title %q: want 3.1.x and a title", doc.OpenAPI, doc.Info.Title)
	}
	// Every path this client calls is documented.
	for _, p := range []string{
		"/readyz", "/api/v1/openapi.json", "/api/v1/auth/signup", "/api/v1/auth/login", "/api/v1/me",
		"/api/v1/tenants/{tenant}/teams", "/api/v1/tenants/{tenant}/tokens", "/api/v1/tenants/{tenant}/tokens/{id}",
		"/api/v1/tenants/{tenant}/audit",
		"/api/v1/tenants/{tenant}/locks", "/api/v1/tenants/{tenant}/locks/{name}", "/api/v1/tenants/{tenant}/locks/{name}/verify",
		"/api/v1/tenants/{tenant}/elections", "/api/v1/tenants/{tenant}/elections/{name}",
		"/api/v1/tenants/{tenant}/elections/{name}/campaign", "/api/v1/tenants/{tenant}/elections/{name}/renew",
		"/api/v1/tenants/{tenant}/elections/{name}/resign",
		"/api/v1/tenants/{tenant}/kv", "/api/v1/tenants/{tenant}/kv/{key}", "/api/v1/cluster",
		"/api/v1/tenants/{tenant}/streams/{stream}/events", "/api/v1/tenants/{tenant}/events",
	} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("the OpenAPI document lacks %s", p)
		}
	}
}

// The operator endpoints of the real binary: ready once the database and the
// Raft group are, and metrics (for the holder of the metrics token) with the
// HTTP, runtime and event-store gauges.
func TestAPI_OperatorEndpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for path, want := range map[string][]string{
		"/readyz":  {`"ready"`},
		"/healthz": {`"ok"`},
		"/metrics": {"switchboard_http_requests_total", "go_goroutines", "switchboard_eventstore_pending_events", "switchboard_eventstore_lag_seconds"},
	} {
		req, err := http.NewRequest("GET", s.URL+path, nil)
		mustOK(t, "GET "+path, err)
		if path == "/metrics" {
			req.Header.Set("Authorization", "Bearer "+metricsToken)
		}
		res, err := http.DefaultClient.Do(req)
		mustOK(t, "GET "+path, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		mustOK(t, "read "+path, err)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s lacks %s", path, w)
			}
		}
	}
}
