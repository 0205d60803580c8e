package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/internal/api"
	"switchboard/internal/tenancy"
)

// defectStreamPaths are the tenant's WebSocket streams.
var defectStreamPaths = []string{
	"/api/v1/tenants/acme/subscriptions/live",
	"/api/v1/tenants/acme/locks/watch",
	"/api/v1/tenants/acme/elections-watch",
	"/api/v1/tenants/acme/elections/primary/observe",
	"/api/v1/tenants/acme/kv-watch",
}

// defectWantClosed waits until deadline for every stream to be closed with one
// of codes and a reason.
func defectWantClosed(t *testing.T, what string, deadline time.Time, streams []*defectStream, codes ...websocket.StatusCode) {
	t.Helper()
	for _, ls := range streams {
		end, closed := ls.waitClosed(max(time.Until(deadline), time.Millisecond))
		if !closed {
			t.Errorf("%s: %s still open %s after the change (the requirement is one second)", what, ls.path, defectCloseBound)
			continue
		}
		ok := false
		for _, c := range codes {
			ok = ok || end.code == c
		}
		if !ok || end.reason == "" {
			t.Errorf("%s: %s closed with code %d reason %q (%v), want one of %v with a reason", what, ls.path, end.code, end.reason, end.err, codes)
		}
	}
}

// defectDialCookie opens a stream on srv as a browser of origin does, with
// the session cookie, and waits for its "ready" message.
func defectDialCookie(t *testing.T, srv *testServer, origin, path string, session *http.Cookie) *defectStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": {session.String()}, "Origin": {origin}},
	})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s with the session cookie: %v (status %d)", path, err, status)
	}
	t.Cleanup(func() { conn.CloseNow() })
	ls := &defectStream{path: path, conn: conn}
	if m := ls.next(t); m.Type != "ready" {
		t.Fatalf("%s: first message %s %s", path, m.Type, m.Data)
	}
	return ls
}

// defectWantKVEvent writes key through srv and expects the put on ls: the stream
// is still open and delivering.
func defectWantKVEvent(t *testing.T, srv *testServer, cred string, ls *defectStream, key string) {
	t.Helper()
	srv.must(200, "PUT", "/api/v1/tenants/acme/kv/"+key, cred, map[string]any{"value": key})
	for {
		m := ls.next(t)
		if m.Type == "error" {
			t.Fatalf("%s: the stream failed: %s", ls.path, m.Data)
		}
		if m.Type == "kv" && strings.Contains(string(m.Data), `"key":"`+key+`"`) {
			return
		}
	}
}

// TestDefect_StreamsCloseWhenRightsChange: every open stream of a principal
// is closed (4401/4403 with a reason) within a second of a change that takes
// its right away — a revoked token, a removed member, a demotion below the
// stream's permission, a policy rule that denies its read — on both
// replicas of one deployment, whichever replica made the change. Streams
// the principal may still read stay open.
func TestDefect_StreamsCloseWhenRightsChange(t *testing.T) {
	t.Parallel()
	a := newTestServer(t)
	b := newTestServer(t, replicaOf(a))
	owner := a.signup("owner@acme.test", "acme")
	servers := map[string]*testServer{"replica a": a, "replica b": b}
	open := func(t *testing.T, cred string, paths ...string) []*defectStream {
		t.Helper()
		var out []*defectStream
		for _, srv := range []*testServer{a, b} {
			for _, p := range paths {
				out = append(out, defectDial(t, srv.URL, p, cred))
			}
		}
		return out
	}

	// member adds email as an admin (only admins and owners make tokens),
	// has them make a token scoped to scope, and leaves them with role.
	member := func(t *testing.T, email string, role, scope tenancy.Role) (jwt string, tok api.CreateTokenResponse, id string) {
		t.Helper()
		a := a.bind(t)
		jwt = a.member(owner, "acme", email, tenancy.Admin)
		tok = defectToken(a, jwt, "acme", "ci-"+email, string(scope))
		id = defectUserID(a, jwt)
		if role != tenancy.Admin {
			a.must(200, "PATCH", "/api/v1/tenants/acme/members/"+id, owner, map[string]string{"role": string(role)})
		}
		return jwt, tok, id
	}

	t.Run("token revoked", func(t *testing.T) {
		a := a.bind(t)
		jwt, tok, _ := member(t, "m1@acme.test", tenancy.Editor, tenancy.Editor)
		streams := open(t, tok.Token, defectStreamPaths...)
		own := defectDial(t, b.URL, "/api/v1/tenants/acme/kv-watch", jwt) // the user's own stream is not the token's
		a.must(204, "DELETE", "/api/v1/tenants/acme/tokens/"+tok.ID.String(), owner, nil)
		defectWantClosed(t, "revoked token", time.Now().Add(defectCloseBound), streams, 4401)
		defectWantKVEvent(t, b.bind(t), owner, own, "after-revocation")
		for name, srv := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+defectStreamPaths[0],
				&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.Token}}})
			cancel()
			if err == nil || res == nil || res.StatusCode != 401 {
				t.Errorf("%s: a revoked token reopens a stream: %v %v", name, res, err)
			}
		}
	})

	t.Run("member removed", func(t *testing.T) {
		jwt, tok, id := member(t, "m2@acme.test", tenancy.Editor, tenancy.Editor)
		streams := append(open(t, jwt, defectStreamPaths...), open(t, tok.Token, defectStreamPaths...)...)
		// The change is made on replica b this time.
		b.bind(t).must(204, "DELETE", "/api/v1/tenants/acme/members/"+id, b.login("owner@acme.test"), nil)
		defectWantClosed(t, "removed member", time.Now().Add(defectCloseBound), streams, 4401, 4403)
	})

	t.Run("demoted below the stream's permission", func(t *testing.T) {
		a := a.bind(t)
		// Viewers may not read locks in this tenant.
		a.must(201, "POST", "/api/v1/tenants/acme/policies", owner, map[string]string{"role": "viewer", "resource": "lock", "action": "read", "effect": "deny"})
		jwt, tok, id := member(t, "m3@acme.test", tenancy.Editor, tenancy.Editor)
		locks := append(open(t, jwt, "/api/v1/tenants/acme/locks/watch"), open(t, tok.Token, "/api/v1/tenants/acme/locks/watch")...)
		kv := defectDial(t, b.URL, "/api/v1/tenants/acme/kv-watch", tok.Token)
		a.must(200, "PATCH", "/api/v1/tenants/acme/members/"+id, owner, map[string]string{"role": "viewer"})
		defectWantClosed(t, "demoted to viewer", time.Now().Add(defectCloseBound), locks, 4403)
		defectWantKVEvent(t, b.bind(t), owner, kv, "after-demotion")
	})

	t.Run("removed from the team a rule asks for", func(t *testing.T) {
		a := a.bind(t)
		a.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"})
		// Editors read elections only as members of team core.
		a.must(201, "POST", "/api/v1/tenants/acme/policies", owner, map[string]string{"role": "editor", "resource": "election", "action": "read",
			"effect": "deny", "condition": `!hasTeam(r.sub, "core")`})
		jwt, tok, _ := member(t, "m6@acme.test", tenancy.Editor, tenancy.Editor)
		a.must(200, "POST", "/api/v1/tenants/acme/teams/core/members", owner, map[string]string{"email": "m6@acme.test"})
		streams := append(open(t, jwt, "/api/v1/tenants/acme/elections-watch"), open(t, tok.Token, "/api/v1/tenants/acme/elections/primary/observe")...)
		kv := defectDial(t, b.URL, "/api/v1/tenants/acme/kv-watch", tok.Token)
		a.must(200, "DELETE", "/api/v1/tenants/acme/teams/core/members/m6@acme.test", owner, nil)
		defectWantClosed(t, "removed from the team", time.Now().Add(defectCloseBound), streams, 4403)
		defectWantKVEvent(t, b.bind(t), owner, kv, "after-team")
	})

	t.Run("browser signed out", func(t *testing.T) {
		a := a.bind(t)
		a.member(owner, "acme", "m5@acme.test", tenancy.Admin) // the rules of the other cases are for other roles
		session := defectSignInCookie(t, a, "m5@acme.test")
		var streams []*defectStream
		for _, srv := range []*testServer{a, b} {
			for _, p := range defectStreamPaths {
				streams = append(streams, defectDialCookie(t, srv, a.URL, p, session))
			}
		}
		_, page := defectFetch(t, a, "GET", "/t/acme/teams", session, "")
		m := defectCSRFFieldRE.FindSubmatch(page)
		if m == nil {
			t.Fatal("the teams page has no _csrf field")
		}
		form := url.Values{"_csrf": {string(m[1])}}
		req, err := http.NewRequest("POST", b.URL+"/logout", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		res, err := defectNoRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /logout: %d", res.StatusCode)
		}
		defectWantClosed(t, "signed out", time.Now().Add(defectCloseBound), streams, 4401)
	})

	t.Run("policy rule denies the stream's read", func(t *testing.T) {
		a := a.bind(t)
		jwt, tok, _ := member(t, "m4@acme.test", tenancy.Operator, tenancy.Operator)
		elections := append(open(t, jwt, "/api/v1/tenants/acme/elections-watch", "/api/v1/tenants/acme/elections/primary/observe"),
			open(t, tok.Token, "/api/v1/tenants/acme/elections-watch", "/api/v1/tenants/acme/elections/primary/observe")...)
		kv := defectDial(t, b.URL, "/api/v1/tenants/acme/kv-watch", jwt)
		a.must(201, "POST", "/api/v1/tenants/acme/policies", owner, map[string]string{"role": "operator", "resource": "election", "action": "read", "effect": "deny"})
		defectWantClosed(t, "deny rule", time.Now().Add(defectCloseBound), elections, 4403)
		defectWantKVEvent(t, b.bind(t), owner, kv, "after-rule")
	})
}

// TestDefect_WebSocketOriginMustMatchSchemeHostAndPort: a browser page may
// open a stream only from the server's own origin; the same host under
// another scheme or port is another origin.
func TestDefect_WebSocketOriginMustMatchSchemeHostAndPort(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	host := strings.TrimPrefix(s.URL, "http://")
	hostname, port, _ := strings.Cut(host, ":")
	otherPort := "1"
	if port == "1" {
		otherPort = "2"
	}
	dial := func(origin string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{"Authorization": {"Bearer " + owner}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		conn, res, err := websocket.Dial(ctx, "ws://"+host+"/api/v1/tenants/acme/locks/watch", &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			conn.Close(websocket.StatusNormalClosure, "")
			return 101, nil
		}
		if res == nil {
			return 0, err
		}
		return res.StatusCode, err
	}
	// The control: the server's own origin is accepted.
	if st, err := dial(s.URL); st != 101 {
		t.Fatalf("the server's own origin %s is refused: %d %v", s.URL, st, err)
	}
	for _, origin := range []string{
		"https://" + host,                      // another scheme
		"http://" + hostname + ":" + otherPort, // another port
		"http://" + hostname,                   // no port: 80
		"https://" + hostname,                  // no port: 443
		"ws://" + host,                         // not a page origin
		"http://localhost:" + port,             // another host, same port
		"http://" + host + ".evil.test",        // a suffix
		"http://evil.test/" + host,             // the host in the path
		"null",
	} {
		if st, _ := dial(origin); st != 403 {
			t.Errorf("Origin %q: status %d, want 403", origin, st)
		}
	}
}
