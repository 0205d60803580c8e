package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchboard/internal/api"
	"switchboard/internal/auth"
	"switchboard/internal/tenancy"
)

var defectCSRFFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// defectSignInForm returns the double-submit pair of the sign-in form: the
// sb_csrf cookie and the _csrf field of GET /login.
func defectSignInForm(t *testing.T, s *testServer) (cookie *http.Cookie, field string) {
	t.Helper()
	res, err := http.Get(s.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if c.Name == "sb_csrf" {
			cookie = c
		}
	}
	m := defectCSRFFieldRE.FindSubmatch(body)
	if res.StatusCode != 200 || cookie == nil || m == nil {
		t.Fatalf("GET /login: %d, cookie %v, field %q", res.StatusCode, cookie, m)
	}
	return cookie, string(m[1])
}

// defectPostSignIn signs in through the UI's form with next and returns the
// answer without following it.
func defectPostSignIn(t *testing.T, s *testServer, cookie *http.Cookie, field, email, next string) *http.Response {
	t.Helper()
	form := url.Values{"_csrf": {field}, "email": {email}, "password": {"correct horse battery"}, "next": {next}}
	req, err := http.NewRequest("POST", s.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	res, err := defectNoRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// defectBrowserTarget is where a browser on base goes for Location loc: it reads
// the value as the URL standard does (tabs and newlines dropped anywhere,
// C0 controls and spaces trimmed at the ends, a backslash taken for a
// slash in http(s) URLs) and resolves it against base.
func defectBrowserTarget(base *url.URL, loc string) (*url.URL, error) {
	loc = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, loc)
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
	return base.Parse(loc)
}

// TestDefect_SignInRedirectStaysOnThisSite: after signing in, the browser is
// sent to next only when it is a path of this site, however next hides
// another one (a tab, a newline, a backslash, leading spaces, a scheme).
func TestDefect_SignInRedirectStaysOnThisSite(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.signup("ada@acme.test", "acme")
	base, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	cookie, field := defectSignInForm(t, s)

	// The control: a path of this site is where the browser goes.
	if res := defectPostSignIn(t, s, cookie, field, "ada@acme.test", "/t/acme/teams?x=1"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/t/acme/teams?x=1" {
		t.Fatalf("next=/t/acme/teams?x=1: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, next := range []string{
		"/\t/evil.test/",
		"/\t\\evil.test/",
		"/\n/evil.test/",
		"/\r\n/evil.test/",
		"/\r/evil.test/",
		"  //evil.test/",
		" \t //evil.test/",
		"\x00//evil.test/",
		"\x01/\\evil.test/",
		"//evil.test/",
		"///evil.test/",
		"/\\evil.test/",
		"\\\\evil.test/",
		"\\/evil.test/",
		"/\\/evil.test/",
		"https://evil.test/",
		"HTTPS://evil.test/",
		"http:evil.test",
		"http:/evil.test",
		" https://evil.test/",
		"javascript:alert(1)",
		"JaVaScRiPt:alert(1)",
		"\tjavascript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"/%09/evil.test/",
		"/\u3000/evil.test/",
		"evil.test",
	} {
		t.Run(strconv.Quote(next), func(t *testing.T) {
			res := defectPostSignIn(t, s, cookie, field, "ada@acme.test", next)
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d, want 303", res.StatusCode)
			}
			target, err := defectBrowserTarget(base, loc)
			if err != nil || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\t\r\n\x00 ") ||
				target.Scheme != base.Scheme || target.Host != base.Host {
				t.Fatalf("Location %q (a browser goes to %v, %v): want a path of this site", loc, target, err)
			}
		})
	}
}

// TestDefect_InvitationsAndOperatorRightsNeedAVerifiedAddress: an invited
// address joins, and an operator's address gets the cluster's rights, only
// once its owner followed the mailed link; the Raft group's topology is for
// verified operators only, not for the owner of any tenant.
func TestDefect_InvitationsAndOperatorRightsNeedAVerifiedAddress(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, withOperators("op@example.test"))
	owner := s.signup("owner@acme.test", "acme")

	var inv tenancy.Member
	s.must(201, "POST", "/api/v1/tenants/acme/members", owner, map[string]string{"email": "new@example.test", "role": "editor"}).json(t, &inv)
	if inv.Status != tenancy.Invited {
		t.Fatalf("adding an address without an account: %+v, want invited", inv)
	}
	s.signupUnverified("new@example.test", "")
	newcomer := s.login("new@example.test")
	wantProblem(t, s.do("GET", "/api/v1/tenants/acme/teams", newcomer, nil), 404, "not_found")
	wantProblem(t, s.do("PUT", "/api/v1/tenants/acme/kv/k", newcomer, map[string]any{"value": 1}), 404, "not_found")
	var me api.MeResponse
	s.must(200, "GET", "/api/v1/me", newcomer, nil).json(t, &me)
	if len(me.Memberships) != 0 {
		t.Fatalf("an unverified address holds memberships %+v", me.Memberships)
	}
	// An unverified account that exists before it is added is only invited too.
	s.signupUnverified("early@example.test", "")
	early := s.login("early@example.test")
	s.must(201, "POST", "/api/v1/tenants/acme/members", owner, map[string]string{"email": "early@example.test", "role": "viewer"}).json(t, &inv)
	if inv.Status != tenancy.Invited {
		t.Errorf("adding an unverified account: %+v, want invited", inv)
	}
	wantProblem(t, s.do("GET", "/api/v1/tenants/acme/teams", early, nil), 404, "not_found")

	s.signupUnverified("op@example.test", "")
	op := s.login("op@example.test")
	wantProblem(t, s.do("GET", "/api/v1/cluster", op, nil), 403, "forbidden")
	wantProblem(t, s.do("POST", "/api/v1/cluster/voters", op, map[string]string{"id": "n9", "addr": "127.0.0.1:1"}), 403, "forbidden")

	// The owner of a tenant who is not an operator never sees the group, in
	// the API or in the pages.
	wantProblem(t, s.do("GET", "/api/v1/cluster", owner, nil), 403, "forbidden")
	session := defectSignInCookie(t, s, "owner@acme.test")
	raftAddr := s.App.Locks.Status().Addr
	for _, p := range []string{"/t/acme/coordination", "/t/acme/coordination/cluster"} {
		if res, body := defectFetch(t, s, "GET", p, session, ""); res.StatusCode == 200 && strings.Contains(string(body), raftAddr) {
			t.Errorf("GET %s shows a non-operator the Raft address %s", p, raftAddr)
		}
	}
	wantProblem(t, s.do("GET", "/api/v1/cluster", defectToken(s, owner, "acme", "ops", "owner").Token, nil), 403, "forbidden")

	// Following the mailed links changes both, with the same access tokens.
	s.verifyEmail("new@example.test")
	s.must(200, "GET", "/api/v1/tenants/acme/teams", newcomer, nil)
	s.must(200, "GET", "/api/v1/me", newcomer, nil).json(t, &me)
	if len(me.Memberships) != 1 || me.Memberships[0].Tenant.Slug != "acme" || me.Memberships[0].Role != tenancy.Editor {
		t.Fatalf("after verification: memberships %+v, want acme as editor", me.Memberships)
	}
	s.verifyEmail("early@example.test")
	s.must(200, "GET", "/api/v1/tenants/acme/teams", early, nil)
	s.verifyEmail("op@example.test")
	var st api.ClusterResponse
	s.must(200, "GET", "/api/v1/cluster", op, nil).json(t, &st)
	if st.LeaderID == "" || len(st.Members) == 0 {
		t.Fatalf("cluster %+v", st)
	}
	wantProblem(t, s.do("GET", "/api/v1/cluster", "", nil), 401, "unauthenticated")
}

// TestDefect_SignUpDoesNotTellWhetherAnAddressExists: a sign-up answers the
// same status, headers and body shape for an address with an account
// (verified or not, in any case) as for a new one.
func TestDefect_SignUpDoesNotTellWhetherAnAddressExists(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.signup("known@example.test", "")
	s.signupUnverified("pending@example.test", "")
	signup := func(email, slug string) response {
		body := map[string]any{"email": email, "password": "another password", "name": "Someone"}
		if slug != "" {
			body["tenant"] = map[string]string{"slug": slug, "name": "Org"}
		}
		return s.do("POST", "/api/v1/auth/signup", "", body)
	}
	shape := func(r response, email string) string {
		var m map[string]any
		r.json(t, &m)
		for k, v := range m {
			if defectStr, ok := v.(string); ok {
				m[k] = strings.ReplaceAll(defectStr, email, "<email>")
			}
		}
		body, _ := json.Marshal(m) // sorted keys
		var hs []string
		for h := range r.Header {
			if h != "Date" && h != "X-Request-Id" && h != "Content-Length" {
				hs = append(hs, h+":"+r.Header.Get(h))
			}
		}
		sort.Strings(hs)
		return strconv.Itoa(r.Status) + " " + strings.Join(hs, "|") + " " + string(body)
	}
	fresh := shape(signup("fresh@example.test", ""), "fresh@example.test")
	if !strings.HasPrefix(fresh, "202 ") {
		t.Fatalf("a new address: %s", fresh)
	}
	for i, email := range []string{"known@example.test", "KNOWN@Example.Test", "pending@example.test", "fresh@example.test"} {
		if got := shape(signup(email, ""), strings.ToLower(email)); got != fresh {
			t.Errorf("sign-up of %s answers\n%s\nwhere a new address gets\n%s", email, got, fresh)
		}
		slug := "org-" + strconv.Itoa(i)
		want := shape(signup("fresh-"+strconv.Itoa(i)+"@example.test", slug+"-x"), "fresh-"+strconv.Itoa(i)+"@example.test")
		if got := shape(signup(email, slug), strings.ToLower(email)); got != want {
			t.Errorf("sign-up of %s with a tenant answers\n%s\nwhere a new address gets\n%s", email, got, want)
		}
	}
	// The known account is untouched: its password still works.
	s.login("known@example.test")
}

// TestDefect_SignUpAndSignInAreRateLimited: sign-ups per client address and
// sign-ins per client and account pair are limited (429 with Retry-After);
// a stranger's failed attempts do not lock the account's owner out, who
// signs in from another address.
func TestDefect_SignUpAndSignInAreRateLimited(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, defectTrustProxy(), withAuth(func(c *auth.Config) {
		c.SignupBurst, c.SignupEvery = 2, time.Hour
		c.LoginBurst, c.LoginEvery = 2, time.Hour
	}))
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	wantLimited := func(t *testing.T, r response) {
		t.Helper()
		wantProblem(t, r, 429, "rate_limited")
		n, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || n <= 0 || n > 3600 {
			t.Fatalf("Retry-After %q: want whole seconds, at most the refill interval", r.Header.Get("Retry-After"))
		}
	}
	signup := func(email, addr string) response {
		return s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": "correct horse battery", "name": "Someone"}, from(addr)...)
	}

	t.Run("sign-up per address", func(t *testing.T) {
		s := s.bind(t)
		s.must(202, "POST", "/api/v1/auth/signup", "", map[string]any{"email": "a1@example.test", "password": "correct horse battery", "name": "A"}, from("203.0.113.1")...)
		s.must(202, "POST", "/api/v1/auth/signup", "", map[string]any{"email": "a2@example.test", "password": "correct horse battery", "name": "A"}, from("203.0.113.1")...)
		wantLimited(t, signup("a3@example.test", "203.0.113.1"))
		wantLimited(t, signup("a4@example.test", "203.0.113.1"))
		// Another client is not held back.
		if r := signup("b1@example.test", "203.0.113.2"); r.Status != 202 {
			t.Fatalf("a sign-up from another address: %d %s", r.Status, r.Body)
		}
	})

	t.Run("X-Forwarded-For is not trusted by default", func(t *testing.T) {
		d := newTestServer(t, withAuth(func(c *auth.Config) { c.LoginBurst, c.LoginEvery = 2, time.Hour }))
		d.signup("ada@example.test", "") // its sign-in is the first attempt
		r := d.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "ada@example.test", "password": "wrong password"}, "X-Forwarded-For", "198.51.100.1")
		wantProblem(t, r, 401, "unauthenticated")
		// Another claimed address does not buy new attempts.
		r = d.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "ada@example.test", "password": "wrong password"}, "X-Forwarded-For", "198.51.100.2")
		wantLimited(t, r)
	})

	t.Run("sign-in per client and account", func(t *testing.T) {
		s := s.bind(t)
		if r := signup("victim@example.test", "192.0.2.10"); r.Status != 202 {
			t.Fatalf("sign-up: %d %s", r.Status, r.Body)
		}
		s.verifyEmail("victim@example.test")
		login := func(password, addr string) response {
			return s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "victim@example.test", "password": password}, from(addr)...)
		}
		for i := 0; i < 2; i++ {
			wantProblem(t, login("wrong password", "198.51.100.7"), 401, "unauthenticated")
		}
		wantLimited(t, login("wrong password", "198.51.100.7"))
		wantLimited(t, login("correct horse battery", "198.51.100.7"))
		// The owner, elsewhere, is not locked out by the stranger.
		s.must(200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "victim@example.test", "password": "correct horse battery"}, from("192.0.2.44")...)
		s.must(200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "Victim@Example.test", "password": "correct horse battery"}, from("192.0.2.45")...)
	})
}
