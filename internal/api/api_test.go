package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/tenancy"
)

func TestSignupLoginMe(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	var me api.MeResponse
	s.must(200, "GET", "/api/v1/me", tok, nil).json(t, &me)
	if me.User == nil || me.User.Email != "ada@example.com" {
		t.Fatalf("me.user = %+v", me.User)
	}
	if len(me.Memberships) != 1 || me.Memberships[0].Tenant.Slug != "acme" || me.Memberships[0].Role != tenancy.Owner {
		t.Fatalf("memberships = %+v", me.Memberships)
	}
}

func TestLogin_WrongPasswordIs401(t *testing.T) {
	s := newTestServer(t)
	s.signup("ada@example.com", "acme")
	r := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "ada@example.com", "password": "wrong password"})
	if r.Status != 401 || r.problemCode(t) != "unauthenticated" {
		t.Fatalf("status %d body %s", r.Status, r.Body)
	}
	r = s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "nobody@example.com", "password": "whatever1"})
	if r.Status != 401 {
		t.Fatalf("unknown user: status %d", r.Status)
	}
}

// Sign-up answers the same for an address that has an account as for a new
// one (only the mail says which), and a taken slug is a conflict that
// leaves nothing behind.
func TestSignup_SameAnswerForKnownAddressAndSlugConflictLeavesNothing(t *testing.T) {
	s := newTestServer(t)
	s.signup("ada@example.com", "acme")
	known := s.must(202, "POST", "/api/v1/auth/signup", "", map[string]any{"email": "ADA@example.com", "password": "another password", "name": "Other",
		"tenant": map[string]string{"slug": "fresh", "name": "Fresh"}})
	fresh := s.must(202, "POST", "/api/v1/auth/signup", "", map[string]any{"email": "eve@example.com", "password": "another password", "name": "Eve",
		"tenant": map[string]string{"slug": "fresh2", "name": "Fresh"}})
	var k, f api.SignupResponse
	known.json(t, &k)
	fresh.json(t, &f)
	if strings.ReplaceAll(k.Message, "ada@example.com", "X") != strings.ReplaceAll(f.Message, "eve@example.com", "X") {
		t.Fatalf("the answers differ: %q / %q", k.Message, f.Message)
	}
	if m := s.App.Mail.WaitFor(t, "ada@example.com"); strings.Contains(m.Text, "/verify-email") || !strings.Contains(m.Text, "/login") {
		t.Fatalf("the mail to a known address should point to sign-in, not confirm:\n%s", m.Text)
	}
	if m := s.App.Mail.WaitFor(t, "eve@example.com"); !strings.Contains(m.Text, "/verify-email?token=") {
		t.Fatalf("the mail to a new address should hold a confirmation link:\n%s", m.Text)
	}
	// The known address kept its password, and made no tenant.
	s.login("ada@example.com")
	// A new user asking for a taken slug: 409, and the user is not created.
	r := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "bob@example.com", "password": "another password", "name": "Bob",
		"tenant": map[string]string{"slug": "acme", "name": "Acme 2"}})
	if r.Status != 409 {
		t.Fatalf("duplicate slug: status %d body %s", r.Status, r.Body)
	}
	var n int
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM users WHERE email = 'bob@example.com'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("half-written signup left %d users (%v)", n, err)
	}
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM tenants WHERE slug = 'fresh'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the known address's sign-up left %d tenants (%v)", n, err)
	}
}

func TestTeams_CRUDWithETagsAndAudit(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	base := "/api/v1/tenants/acme/teams"
	r := s.must(201, "POST", base, tok, map[string]string{"slug": "payments", "name": "Payments"})
	etag := r.Header.Get("ETag")
	if etag != `"1"` {
		t.Fatalf("ETag %q", etag)
	}
	var team tenancy.Team
	s.must(200, "PATCH", base+"/payments", tok, map[string]string{"name": "Payments Core"}, "If-Match", etag).json(t, &team)
	if team.Name != "Payments Core" || team.Version != 2 {
		t.Fatalf("after patch: %+v", team)
	}
	// The old ETag is stale now.
	if r := s.do("PATCH", base+"/payments", tok, map[string]string{"name": "Lost update"}, "If-Match", etag); r.Status != 412 || r.problemCode(t) != "precondition" {
		t.Fatalf("stale If-Match: %d %s", r.Status, r.Body)
	}
	var page api.List[tenancy.Team]
	s.must(200, "GET", base, tok, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "Payments Core" {
		t.Fatalf("list: %+v", page)
	}
	s.must(204, "DELETE", base+"/payments", tok, nil)
	s.must(404, "GET", base+"/payments", tok, nil)

	var log api.List[map[string]any]
	s.must(200, "GET", "/api/v1/tenants/acme/audit", tok, nil).json(t, &log)
	var actions []string
	for _, e := range log.Items {
		actions = append(actions, e["action"].(string))
	}
	want := "team.deleted,team.updated,team.created,tenant.created"
	if got := strings.Join(actions, ","); got != want {
		t.Fatalf("audit actions %s, want %s", got, want)
	}
	if log.Items[1]["before"] == nil || log.Items[1]["after"] == nil || log.Items[1]["actor"] != "ada@example.com" {
		t.Fatalf("audit entry lacks before/after/actor: %v", log.Items[1])
	}
}

func TestTeams_PaginationVisitsEveryTeamOnce(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	for i := 0; i < 7; i++ {
		s.must(201, "POST", "/api/v1/tenants/acme/teams", tok, map[string]string{"slug": "team-" + string(rune('a'+i)), "name": "T"})
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		var page api.List[tenancy.Team]
		s.must(200, "GET", "/api/v1/tenants/acme/teams?limit=3&cursor="+cursor, tok, nil).json(t, &page)
		for _, tm := range page.Items {
			if seen[tm.Slug] {
				t.Fatalf("team %s on two pages", tm.Slug)
			}
			seen[tm.Slug] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != 7 {
		t.Fatalf("saw %d teams, want 7", len(seen))
	}
}

func TestTokens_CreateUseRevoke(t *testing.T) {
	s := newTestServer(t)
	owner := s.signup("ada@example.com", "acme")
	var created api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "ci", "role": "viewer"}).json(t, &created)
	if !strings.HasPrefix(created.Token, "sb_") {
		t.Fatalf("token %q", created.Token)
	}
	s.must(200, "GET", "/api/v1/tenants/acme/teams", created.Token, nil)
	// A viewer token cannot write.
	s.must(403, "POST", "/api/v1/tenants/acme/teams", created.Token, map[string]string{"slug": "x", "name": "X"})
	// The secret is never listed.
	r := s.must(200, "GET", "/api/v1/tenants/acme/tokens", owner, nil)
	if strings.Contains(string(r.Body), created.Token[10:]) {
		t.Fatal("token list leaks the secret")
	}
	var listed api.List[map[string]any]
	r.json(t, &listed)
	if len(listed.Items) != 1 || listed.Items[0]["last_used_at"] == nil {
		t.Fatalf("listed tokens %v: want one with last_used_at", listed.Items)
	}
	s.must(204, "DELETE", "/api/v1/tenants/acme/tokens/"+created.ID.String(), owner, nil)
	s.must(401, "GET", "/api/v1/tenants/acme/teams", created.Token, nil)
}

func TestOpenAPI_CoversEveryRoute(t *testing.T) {
	s := newTestServer(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	s.must(200, "GET", "/api/v1/openapi.json", "", nil).json(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	// The routes the running server's router really has (HEAD mirrors GET).
	n := 0
	for _, r := range s.App.Web.Echo().Routes() {
		if r.Method == http.MethodHead || r.Path == "/metrics" || !(strings.HasPrefix(r.Path, "/api/") || r.Path == "/healthz" || r.Path == "/readyz") {
			continue
		}
		p := strings.NewReplacer(":tenant", "{tenant}", ":team", "{team}", ":user", "{user}", ":id", "{id}", ":email", "{email}", ":name", "{name}", ":key", "{key}", ":stream", "{stream}", ":ref", "{ref}", ":trace_id", "{trace_id}", ":service", "{service}").Replace(r.Path)
		if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, r.Path)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d routes checked", n)
	}
	raw := s.must(200, "GET", "/api/v1/openapi.json", "", nil).Body
	if !json.Valid(raw) {
		t.Fatal("document is not JSON")
	}
	// Query parameters a route reads are documented with it.
	var full struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string }
		}
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{
		"/api/v1/tenants/{tenant}/events":                      {"from_position", "category", "limit", "cursor"},
		"/api/v1/tenants/{tenant}/streams/{stream}/events":     {"from", "direction"},
		"/api/v1/tenants/{tenant}/subscriptions/{name}/events": {"member", "limit"},
		"/api/v1/tenants/{tenant}/kv":                          {"prefix"},
	} {
		var got []string
		for _, p := range full.Paths[path]["get"].Parameters {
			if p.In == "query" {
				got = append(got, p.Name)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("GET %s documents the query parameters %v, not %s", path, got, w)
			}
		}
	}
}

func TestOperatorEndpoints(t *testing.T) {
	const metricsToken = "metrics-secret-0123456789"
	s := newTestServer(t, withMetricsToken(metricsToken))
	s.must(200, "GET", "/healthz", "", nil)
	s.must(200, "GET", "/readyz", "", nil)
	s.must(200, "GET", "/api/v1/docs", "", nil)
	s.must(200, "GET", "/api/v1/me", s.signup("ada@example.com", ""), nil)
	// The figures are for operators: not without the metrics token.
	wantProblem(t, s.do("GET", "/metrics", "", nil), 401, "unauthenticated")
	wantProblem(t, s.do("GET", "/metrics", "wrong-token-0123456789", nil), 401, "unauthenticated")
	r := s.must(200, "GET", "/metrics", metricsToken, nil)
	for _, want := range []string{"switchboard_http_requests_total", "go_goroutines", `route="/api/v1/me"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id header")
	}
	_ = http.StatusOK
}

func TestIdempotencyKey_ReplaysTheFirstAnswer(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	body := map[string]string{"slug": "payments", "name": "Payments"}
	first := s.must(201, "POST", "/api/v1/tenants/acme/teams", tok, body, "Idempotency-Key", "k-1")
	again := s.must(201, "POST", "/api/v1/tenants/acme/teams", tok, body, "Idempotency-Key", "k-1")
	if again.Header.Get("Idempotency-Replayed") != "true" || string(again.Body) != string(first.Body) {
		t.Fatalf("retry was not a replay: %s / %s", again.Header, again.Body)
	}
	// Without the key the same request is a real second attempt: 409.
	s.must(409, "POST", "/api/v1/tenants/acme/teams", tok, body)
	// The same key with another body is refused and creates nothing.
	r := s.do("POST", "/api/v1/tenants/acme/teams", tok, map[string]string{"slug": "search", "name": "Search"}, "Idempotency-Key", "k-1")
	if r.Status != 409 || r.problemCode(t) != "conflict" {
		t.Fatalf("key reuse with another body: %d %s", r.Status, r.Body)
	}
	s.must(404, "GET", "/api/v1/tenants/acme/teams/search", tok, nil)
	// A rejected request changed nothing, so it leaves the key free: the
	// client fixes the request and sends it again under the same key.
	s.must(400, "POST", "/api/v1/tenants/acme/teams", tok, map[string]string{"slug": "Bad Slug", "name": "x"}, "Idempotency-Key", "k-2")
	if r := s.must(201, "POST", "/api/v1/tenants/acme/teams", tok, map[string]string{"slug": "fixed", "name": "Fixed"}, "Idempotency-Key", "k-2"); r.Header.Get("Idempotency-Replayed") != "" {
		t.Fatal("the corrected request was answered from the key's record")
	}
	if r := s.must(201, "POST", "/api/v1/tenants/acme/teams", tok, map[string]string{"slug": "fixed", "name": "Fixed"}, "Idempotency-Key", "k-2"); r.Header.Get("Idempotency-Replayed") != "true" {
		t.Fatal("the corrected request's answer was not kept")
	}
	// Another caller's identical key is their own.
	other := s.member(tok, "acme", "bob@example.com", tenancy.Admin)
	s.must(201, "POST", "/api/v1/tenants/acme/teams", other, map[string]string{"slug": "ops", "name": "Ops"}, "Idempotency-Key", "k-1")
	var n int
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE action = 'team.created'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d teams created (%v), want 3", n, err)
	}
}
