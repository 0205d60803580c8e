package api_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/tenancy"
)

// defectSignInCookie signs in through the UI's form and returns the session
// cookie.
func defectSignInCookie(t *testing.T, s *testServer, email string) *http.Cookie {
	t.Helper()
	cookie, field := defectSignInForm(t, s)
	res := defectPostSignIn(t, s, cookie, field, email, "/")
	for _, c := range res.Cookies() {
		if c.Name == "sb_session" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("sign-in answered %d without a session cookie", res.StatusCode)
	return nil
}

// defectFetch sends method to path with the cookie (if any) and bearer token (if
// any) without following redirects.
func defectFetch(t *testing.T, s *testServer, method, path string, cookie *http.Cookie, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := defectNoRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

var (
	defectScriptTagRE   = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	defectInlineEventRE = regexp.MustCompile(`(?i)\son[a-z]+\s*=|\shx-on[:\-]|javascript:`)
)

// TestDefect_SecurityHeaders: pages carry a Content-Security-Policy without
// inline script (and hold none); authenticated pages and API answers are
// not stored by caches; every answer says nosniff; a server whose public URL
// is https sends HSTS.
func TestDefect_SecurityHeaders(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	s.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"})
	session := defectSignInCookie(t, s, "owner@acme.test")

	pages := []string{"/docs", "/login", "/signup", "/tenants/new", "/t/acme/teams", "/t/acme/members", "/t/acme/tokens", "/t/acme/audit", "/t/acme/policies",
		"/t/acme/coordination", "/t/acme/streams"}
	for _, p := range pages {
		t.Run("page "+p, func(t *testing.T) {
			res, body := defectFetch(t, s, "GET", p, session, "")
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("GET %s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
			}
			csp := res.Header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
				!(strings.Contains(csp, "script-src 'self'") || (strings.Contains(csp, "default-src 'self'") && !strings.Contains(csp, "script-src"))) {
				t.Errorf("GET %s: Content-Security-Policy %q, want scripts from this origin only", p, csp)
			}
			for _, tag := range defectScriptTagRE.FindAllString(string(body), -1) {
				if !strings.Contains(tag, "src=") {
					t.Errorf("GET %s: inline script %s", p, tag)
				}
			}
			if m := defectInlineEventRE.FindString(string(body)); m != "" {
				t.Errorf("GET %s: inline script in an attribute or URL (%q)", p, m)
			}
			if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("GET %s: Cache-Control %q, want no-store", p, cc)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no X-Content-Type-Options: nosniff", p)
			}
		})
	}
	for _, c := range []struct {
		path, token string
		status      int
	}{
		{"/api/v1/me", owner, 200},
		{"/api/v1/tenants/acme/teams", owner, 200},
		{"/api/v1/tenants/acme/teams/core", owner, 200},
		{"/api/v1/tenants/acme/teams/none", owner, 404},
		{"/api/v1/tenants/acme/teams", "", 401},
		{"/api/v1/openapi.json", "", 200},
	} {
		res, _ := defectFetch(t, s, "GET", c.path, nil, c.token)
		if res.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, res.StatusCode, c.status)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("GET %s: Cache-Control %q, want no-store", c.path, cc)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", c.path)
		}
	}
	// Error pages and redirects are pages too.
	for _, c := range []struct {
		path   string
		cookie *http.Cookie
		status int
	}{
		{"/t/acme/nowhere", session, 404},
		{"/t/globex/teams", session, 404},
		{"/t/acme/teams", nil, 303},
	} {
		res, _ := defectFetch(t, s, "GET", c.path, c.cookie, "")
		if res.StatusCode != c.status || res.Header.Get("Content-Security-Policy") == "" || !strings.Contains(res.Header.Get("Cache-Control"), "no-store") ||
			res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, CSP %q, Cache-Control %q, X-Content-Type-Options %q; want %d with all three", c.path, res.StatusCode,
				res.Header.Get("Content-Security-Policy"), res.Header.Get("Cache-Control"), res.Header.Get("X-Content-Type-Options"), c.status)
		}
	}
	for _, p := range []string{"/static/app.css", "/healthz", "/nowhere"} {
		if res, _ := defectFetch(t, s, "GET", p, nil, ""); res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", p)
		}
	}

	t.Run("HSTS behind https", func(t *testing.T) {
		hs := newTestServer(t, withBaseURL("https://switchboard.example.test"))
		for _, p := range []string{"/healthz", "/login", "/api/v1/openapi.json", "/api/v1/me"} {
			res, _ := defectFetch(t, hs, "GET", p, nil, "")
			if h := res.Header.Get("Strict-Transport-Security"); !regexp.MustCompile(`max-age=[1-9][0-9]{5,}`).MatchString(h) {
				t.Errorf("GET %s on a server served as https: Strict-Transport-Security %q, want a max-age of days at least", p, h)
			}
		}
	})
}

// TestDefect_MetricsNeedATokenOrTheirOwnListener: /metrics on the main
// listener answers only a request with the metrics token, and not at all
// when no token is configured.
func TestDefect_MetricsNeedATokenOrTheirOwnListener(t *testing.T) {
	t.Parallel()
	open := newTestServer(t)
	owner := open.signup("owner@acme.test", "acme")
	for _, cred := range []string{"", owner, "anything"} {
		if res, body := defectFetch(t, open, "GET", "/metrics", nil, cred); res.StatusCode == 200 || strings.Contains(string(body), "switchboard_http_requests_total") {
			t.Errorf("GET /metrics without a configured token (bearer %.10q): %d, exposes the metrics", cred, res.StatusCode)
		}
	}
	// A listener of its own serves the metrics without a token.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close() // free again for the server to take (a port taken meanwhile fails the start, not the check)
	s := newTestServer(t, withMetricsToken("metrics-secret-0123456789"), func(c *app.Config) { c.MetricsAddr = metricsAddr })
	var res *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // a bound on a hang: Serve listens after start
		if res, err = http.Get("http://" + metricsAddr + "/metrics"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("GET /metrics on the metrics listener: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics on the metrics listener: %d", res.StatusCode)
	}
	jwt := s.signup("owner@acme.test", "acme")
	for _, cred := range []string{"", jwt, "metrics-secret", "metrics-secret-0123456789x", "METRICS-SECRET-0123456789"} {
		res, body := defectFetch(t, s, "GET", "/metrics", nil, cred)
		if res.StatusCode != 401 || strings.Contains(string(body), "switchboard_http_requests_total") {
			t.Errorf("GET /metrics with bearer %.12q: %d, want 401", cred, res.StatusCode)
		}
	}
	if res, body := defectFetch(t, s, "GET", "/metrics", nil, "metrics-secret-0123456789"); res.StatusCode != 200 || !strings.Contains(string(body), "switchboard_http_requests_total") {
		t.Errorf("GET /metrics with the token: %d", res.StatusCode)
	}
}

// defectHeadFixture is a tenant with one object of each kind a GET route reads,
// and a browser session.
func defectHeadFixture(t *testing.T) (s *testServer, owner string, session *http.Cookie) {
	t.Helper()
	s = newTestServer(t)
	owner = s.signup("owner@acme.test", "acme")
	s.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"})
	s.must(201, "POST", "/api/v1/tenants/acme/streams/orders-1/events", owner, map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]int{}}}})
	s.must(201, "PUT", "/api/v1/tenants/acme/subscriptions/sub1", owner, map[string]any{})
	s.must(200, "PUT", "/api/v1/tenants/acme/kv/k", owner, map[string]any{"value": 1})
	s.must(200, "POST", "/api/v1/tenants/acme/elections/e/campaign", owner, map[string]any{"candidate": "c", "ttl_ms": 60000})
	return s, owner, defectSignInCookie(t, s, "owner@acme.test")
}

// defectCompareHead checks that HEAD path answers the status and headers GET does,
// with no body.
func defectCompareHead(t *testing.T, s *testServer, path string, cookie *http.Cookie, token string) {
	t.Helper()
	get, _ := defectFetch(t, s, "GET", path, cookie, token)
	head, body := defectFetch(t, s, "HEAD", path, cookie, token)
	if head.StatusCode != get.StatusCode {
		t.Errorf("HEAD %s: %d, GET %d", path, head.StatusCode, get.StatusCode)
		return
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "ETag", "Location", "WWW-Authenticate", "Content-Security-Policy", "X-Content-Type-Options"} {
		if head.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("HEAD %s: %s %q, GET %q", path, h, head.Header.Get(h), get.Header.Get(h))
		}
	}
	if len(body) != 0 {
		t.Errorf("HEAD %s answered a body of %d bytes", path, len(body))
	}
}

// TestDefect_HeadAnswersLikeGet: HEAD on a GET route of the API answers the
// status and headers GET would, with no body.
func TestDefect_HeadAnswersLikeGet(t *testing.T) {
	t.Parallel()
	s, owner, _ := defectHeadFixture(t)
	acme := "/api/v1/tenants/acme"
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/me", acme, acme + "/teams", acme + "/teams/core", acme + "/teams/none",
		acme + "/members", acme + "/invitations", acme + "/tokens", acme + "/audit", acme + "/policies", acme + "/streams", acme + "/events",
		acme + "/streams/orders-1/events", acme + "/streams/orders-1/metadata", acme + "/streams/orders-1/snapshot", acme + "/subscriptions",
		acme + "/subscriptions/sub1", acme + "/locks", acme + "/elections", acme + "/elections/e", acme + "/kv", acme + "/kv/k", acme + "/kv/none",
		"/api/v1/tenants/globex/teams", acme + "/teams?limit=0"} {
		t.Run(p, func(t *testing.T) { defectCompareHead(t, s, p, nil, owner) })
	}
	t.Run("without credentials", func(t *testing.T) { defectCompareHead(t, s, acme+"/teams", nil, "") })
}

// TestDefect_HeadAnswersLikeGetOnPages: the same for the browser's GET
// routes (pages and static files).
func TestDefect_HeadAnswersLikeGetOnPages(t *testing.T) {
	t.Parallel()
	s, _, session := defectHeadFixture(t)
	for _, p := range []string{"/login", "/signup", "/t/acme/teams", "/t/acme/members", "/t/acme/streams", "/t/acme/coordination", "/static/app.css", "/t/acme/nowhere"} {
		t.Run(p, func(t *testing.T) { defectCompareHead(t, s, p, session, "") })
	}
	t.Run("signed out", func(t *testing.T) { defectCompareHead(t, s, "/t/acme/teams", nil, "") })
}

// TestDefect_ListsRefuseGarbageCursorsAndPoliciesPaginate: every list
// refuses a cursor it did not issue with 400 naming cursor; the policies
// list pages with limit and cursor like the others.
func TestDefect_ListsRefuseGarbageCursorsAndPoliciesPaginate(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	s.must(201, "POST", "/api/v1/tenants/acme/streams/orders-1/events", owner, map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]int{}}}})
	for _, l := range []string{"teams", "members", "invitations", "tokens", "audit", "policies", "streams", "events", "streams/orders-1/events",
		"subscriptions", "locks", "elections", "kv"} {
		for _, cursor := range []string{"garbage", "!!!", "%00", "AA", "_w"} {
			r := s.do("GET", "/api/v1/tenants/acme/"+l+"?cursor="+cursor, owner, nil)
			if r.Status != 400 {
				t.Errorf("GET %s?cursor=%s: %d %s, want 400", l, cursor, r.Status, r.Body)
				continue
			}
			if p := wantProblem(t, r, 400, "invalid"); p.Errors["cursor"] == "" {
				t.Errorf("GET %s?cursor=%s: errors %v do not name cursor", l, cursor, p.Errors)
			}
		}
	}

	for i, res := range []string{"team", "member", "token", "stream", "lock"} {
		s.must(201, "POST", "/api/v1/tenants/acme/policies", owner, map[string]string{"role": "viewer", "resource": res, "action": "replay", "effect": "deny",
			"condition": `r.obj.Name == "x` + string(rune('0'+i)) + `"`})
	}
	var all api.List[map[string]any]
	s.must(200, "GET", "/api/v1/tenants/acme/policies?limit=200", owner, nil).json(t, &all)
	if len(all.Items) < 6 {
		t.Fatalf("the policy lists %d rules", len(all.Items))
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > len(all.Items) {
			t.Fatalf("paging never ends")
		}
		var page api.List[map[string]any]
		s.must(200, "GET", "/api/v1/tenants/acme/policies?limit=2&cursor="+cursor, owner, nil).json(t, &page)
		if len(page.Items) > 2 {
			t.Fatalf("limit=2 answered %d rules", len(page.Items))
		}
		for _, it := range page.Items {
			k := strings.Join([]string{defectStr(it["id"]), defectStr(it["role"]), defectStr(it["resource"]), defectStr(it["action"]), defectStr(it["effect"]), defectStr(it["condition"])}, "|")
			if seen[k] {
				t.Fatalf("rule %s listed twice", k)
			}
			seen[k] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != len(all.Items) {
		t.Fatalf("paging visited %d rules of %d", len(seen), len(all.Items))
	}
}

func defectStr(v any) string {
	s, _ := v.(string)
	return s
}

// TestDefect_JSONKeysMatchExactlyAndOnce: a request body whose member names
// differ in case from the fields, or name a field twice (at any depth), is
// refused with 400 naming the field, and nothing is written.
func TestDefect_JSONKeysMatchExactlyAndOnce(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	acme := "/api/v1/tenants/acme"
	for _, c := range []struct {
		method, path, body, field string
	}{
		{"POST", "/api/v1/auth/login", `{"Email": "owner@acme.test", "password": "correct horse battery"}`, "Email"},
		{"POST", "/api/v1/auth/login", `{"email": "owner@acme.test", "PASSWORD": "correct horse battery"}`, "PASSWORD"},
		{"POST", "/api/v1/auth/login", `{"email": "x@acme.test", "email": "owner@acme.test", "password": "correct horse battery"}`, "email"},
		{"POST", acme + "/teams", `{"Slug": "a", "name": "A"}`, "Slug"},
		{"POST", acme + "/teams", `{"slug": "a", "slug": "b", "name": "A"}`, "slug"},
		{"POST", acme + "/members", `{"email": "new@example.test", "role": "viewer", "role": "owner"}`, "role"},
		{"POST", acme + "/members", `{"email": "new@example.test", "Role": "owner", "role": "viewer"}`, "Role"},
		{"POST", acme + "/tokens", `{"name": "t", "role": "viewer", "role": "owner"}`, "role"},
		{"POST", acme + "/policies", `{"role": "viewer", "resource": "team", "action": "create", "effect": "deny", "effect": "allow"}`, "effect"},
		{"PUT", acme + "/kv/k", `{"value": 1, "value": 2}`, "value"},
		{"PUT", acme + "/kv/k", `{"Value": 1}`, "Value"},
		{"POST", acme + "/streams/s/events", `{"events": [{"type": "a", "type": "b", "data": {}}]}`, "type"},
		{"POST", acme + "/streams/s/events", `{"events": [{"Type": "a", "data": {}}]}`, "Type"},
		{"PUT", acme + "/subscriptions/sub", `{"category": "a", "category": "b"}`, "category"},
		{"POST", acme + "/locks/l", `{"owner": "a", "owner": "b", "ttl_ms": 1000}`, "owner"},
		{"POST", acme + "/locks/l", `{"owner": "a", "TTL_MS": 1000}`, "TTL_MS"},
	} {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			s := s.bind(t)
			before := s.state(t)
			p := wantProblem(t, s.do(c.method, c.path, owner, c.body), 400, "invalid")
			if _, ok := p.Errors[c.field]; !ok && !strings.Contains(fmt.Sprint(p.Errors), "."+c.field+":") {
				t.Errorf("errors %v do not name %q", p.Errors, c.field)
			}
			s.assertUnchanged(t, before, c.body)
		})
	}
	wantProblem(t, s.do("GET", acme+"/kv/k", owner, nil), 404, "not_found")
	wantProblem(t, s.do("GET", acme+"/streams/s/events", owner, nil), 404, "not_found")
	if r := s.do("GET", acme+"/locks", owner, nil); strings.Contains(string(r.Body), `"name":"l"`) {
		t.Errorf("a refused acquire took the lock: %s", r.Body)
	}

	// Duplicate names inside a free-form value are refused too: which one
	// would be stored is not the client's to guess.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", acme + "/kv/dup", `{"value": {"a": 1, "a": 2}}`},
		{"POST", acme + "/streams/dup/events", `{"events": [{"type": "t", "data": {"a": 1, "a": 2}}]}`},
		{"POST", acme + "/streams/dup/events", `{"events": [{"type": "t", "data": {}, "metadata": {"m": 1, "m": 2}}]}`},
	} {
		if r := s.do(c.method, c.path, owner, c.body); r.Status != 400 {
			t.Errorf("%s %s %s: %d %s, want 400", c.method, c.path, c.body, r.Status, r.Body)
		}
	}
}
