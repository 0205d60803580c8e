package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/tenancy"
	"switchboard/internal/web"
)

// bind returns a copy of s whose helpers report to t, so a subtest's
// failures stop the subtest and not its parent.
func (s *testServer) bind(t testing.TB) *testServer {
	c := *s
	c.t = t
	return &c
}

// dbState is a fingerprint of everything a request could write, part by
// part: comparing two tells whether a request changed anything.
type dbState map[string]string

// stateSQL lists the parts of a dbState. Run as the pool's user (the tables'
// owner), so row-level security does not hide rows.
var stateSQL = map[string]string{
	"users":        `SELECT count(*)::text FROM users`,
	"tenants":      `SELECT coalesce(string_agg(slug || ':' || name || ':' || policy_version, ',' ORDER BY slug), '') FROM tenants`,
	"memberships":  `SELECT coalesce(string_agg(tenant_id::text || ':' || user_id::text || ':' || role, ',' ORDER BY tenant_id, user_id), '') FROM memberships`,
	"teams":        `SELECT coalesce(string_agg(tenant_id::text || ':' || slug || ':' || version || ':' || name, ',' ORDER BY tenant_id, slug), '') FROM teams`,
	"team_members": `SELECT coalesce(string_agg(team_id::text || ':' || user_id::text, ',' ORDER BY team_id, user_id), '') FROM team_members`,
	"api_tokens":   `SELECT coalesce(string_agg(id::text || ':' || (revoked_at IS NULL)::text, ',' ORDER BY id), '') FROM api_tokens`,
	"policies":     `SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM policies`,
	"audit_log":    `SELECT count(*)::text FROM audit_log`,
	"invitations":  `SELECT coalesce(string_agg(tenant_id::text || ':' || email || ':' || role, ',' ORDER BY tenant_id, email), '') FROM invitations`,
	"sessions":     `SELECT count(*)::text FROM sessions`,
}

func (s *testServer) state(t testing.TB) dbState {
	t.Helper()
	st := dbState{}
	for part, q := range stateSQL {
		var v string
		if err := s.DB.Pool.QueryRow(t.Context(), q).Scan(&v); err != nil {
			t.Fatalf("read %s: %v", part, err)
		}
		st[part] = v
	}
	return st
}

// assertUnchanged fails t when a table differs between before and now.
func (s *testServer) assertUnchanged(t testing.TB, before dbState, what string) {
	t.Helper()
	after := s.state(t)
	var parts []string
	for part := range stateSQL {
		if before[part] != after[part] {
			parts = append(parts, part)
		}
	}
	sort.Strings(parts)
	for _, p := range parts {
		t.Errorf("%s changed table %s:\nbefore %s\nafter  %s", what, p, before[p], after[p])
	}
}

// wantProblem fails t unless r is a problem+json answer with status and code.
func wantProblem(t testing.TB, r response, status int, code string) web.Problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.Status, status, code, r.Body)
	}
	if got := r.problemCode(t); got != code {
		t.Fatalf("code %q, want %q; body %s", got, code, r.Body)
	}
	var p web.Problem
	r.json(t, &p)
	if p.Status != status {
		t.Fatalf("problem status %d, HTTP status %d", p.Status, status)
	}
	return p
}

// codeFor is the problem code each error status of the matrix must carry.
var codeFor = map[int]string{400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 422: "unprocessable", 502: "bad_gateway", 503: "unavailable"}

// matrixPrincipals are the callers of the matrix, in the column order of
// matrixRow.want.
var matrixPrincipals = [...]string{"owner", "admin", "editor", "operator", "viewer", "token:viewer", "token:admin"}

// authzFixture holds two tenants: acme with an owner, one member per role
// and an API token per tested role; globex with its own owner and member.
// Both have a team "core" and a policy rule.
type authzFixture struct {
	cred    map[string]string // principal → credential in acme
	owner   map[string]string // tenant → its owner's access token
	member  map[string]string // tenant → email of a member who is not an owner
	ownerID map[string]string // tenant → its owner's user id
	n       int
}

func (f *authzFixture) next() int { f.n++; return f.n }

// neutralRule changes no decision: viewers have no replay on clusters anyway.
var neutralRule = map[string]string{"role": "viewer", "resource": "cluster", "action": "replay", "effect": "deny"}

func newAuthzFixture(s *testServer) *authzFixture {
	s.t.Helper()
	f := &authzFixture{cred: map[string]string{}, owner: map[string]string{}, member: map[string]string{}, ownerID: map[string]string{}}
	acme := s.signup("owner@acme.test", "acme")
	f.owner["acme"], f.cred["owner"] = acme, acme
	for _, role := range []tenancy.Role{tenancy.Admin, tenancy.Editor, tenancy.Operator, tenancy.Viewer} {
		f.cred[string(role)] = s.member(acme, "acme", string(role)+"@acme.test", role)
	}
	f.member["acme"] = "viewer@acme.test"
	for _, role := range []string{"viewer", "admin"} {
		var tok api.CreateTokenResponse
		s.must(201, "POST", "/api/v1/tenants/acme/tokens", acme, map[string]string{"name": role + " bot", "role": role}).json(s.t, &tok)
		f.cred["token:"+role] = tok.Token
	}
	globex := s.signup("owner@globex.test", "globex")
	f.owner["globex"] = globex
	s.member(globex, "globex", "member@globex.test", tenancy.Viewer)
	f.member["globex"] = "member@globex.test"
	for _, tenant := range []string{"acme", "globex"} {
		s.must(201, "POST", "/api/v1/tenants/"+tenant+"/teams", f.owner[tenant], map[string]string{"slug": "core", "name": "Core"})
		s.must(201, "POST", "/api/v1/tenants/"+tenant+"/policies", f.owner[tenant], neutralRule)
		s.must(201, "POST", "/api/v1/tenants/"+tenant+"/tokens", f.owner[tenant], map[string]string{"name": "to revoke", "role": "viewer"})
		s.must(201, "POST", "/api/v1/tenants/"+tenant+"/streams/order-1/events", f.owner[tenant], map[string]any{"events": []any{map[string]any{"type": "Placed", "data": map[string]int{"n": 1}}}})
		s.must(204, "PUT", "/api/v1/tenants/"+tenant+"/streams/order-1/snapshot", f.owner[tenant], map[string]any{"version": 0, "data": map[string]int{"n": 1}})
		var me api.MeResponse
		s.must(200, "GET", "/api/v1/me", f.owner[tenant], nil).json(s.t, &me)
		f.ownerID[tenant] = me.User.ID.String()
	}
	return f
}

// Targets created fresh for one cell, in tenant, by its owner.

func (f *authzFixture) newTeam(s *testServer, tenant string) string {
	s.t.Helper()
	slug := fmt.Sprintf("cell-%d", f.next())
	s.must(201, "POST", "/api/v1/tenants/"+tenant+"/teams", f.owner[tenant], map[string]string{"slug": slug, "name": "Cell"})
	return slug
}

func (f *authzFixture) newMember(s *testServer, tenant string) string {
	s.t.Helper()
	email := fmt.Sprintf("cell-%d@%s.test", f.next(), tenant)
	s.signup(email, "")
	var m tenancy.Member
	s.must(201, "POST", "/api/v1/tenants/"+tenant+"/members", f.owner[tenant],
		map[string]string{"email": email, "role": "viewer"}).json(s.t, &m)
	if m.Status != tenancy.Active {
		s.t.Fatalf("a confirmed account was not made a member at once: %+v", m)
	}
	return m.UserID.String()
}

func (f *authzFixture) newInvitation(s *testServer, tenant string) string {
	s.t.Helper()
	email := fmt.Sprintf("invitee-%d@%s.test", f.next(), tenant)
	s.must(201, "POST", "/api/v1/tenants/"+tenant+"/members", f.owner[tenant], map[string]string{"email": email, "role": "viewer"})
	return email
}

func (f *authzFixture) newToken(s *testServer, tenant string) string {
	s.t.Helper()
	var tok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/"+tenant+"/tokens", f.owner[tenant], map[string]string{"name": "cell", "role": "viewer"}).json(s.t, &tok)
	return tok.ID.String()
}

func (f *authzFixture) newPolicy(s *testServer, tenant string) string {
	s.t.Helper()
	var r struct{ ID string }
	s.must(201, "POST", "/api/v1/tenants/"+tenant+"/policies", f.owner[tenant], neutralRule).json(s.t, &r)
	return r.ID
}

// cell is the request one matrix cell sends.
type cell struct {
	path string
	body any
}

// matrixRow is one route of /api/v1/tenants/{tenant}/... and the status each
// principal gets in its own tenant. In another tenant every principal gets
// 404 and without a credential everyone gets 401.
type matrixRow struct {
	method string
	route  string // as registered, under /api/v1/tenants/:tenant
	want   [len(matrixPrincipals)]int
	// target builds the request in tenant, creating whatever the request
	// acts on, fresh, so that cells do not depend on each other.
	target func(s *testServer, f *authzFixture, tenant string) cell
}

func tenantPath(tenant, rest string) string { return "/api/v1/tenants/" + tenant + rest }

func fixed(rest string, body any) func(*testServer, *authzFixture, string) cell {
	return func(_ *testServer, _ *authzFixture, tenant string) cell { return cell{tenantPath(tenant, rest), body} }
}

// The expectation table. Columns: owner, admin, editor, operator, viewer,
// token:viewer, token:admin.
var matrix = []matrixRow{
	{"GET", "", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("", nil)},

	{"GET", "/teams", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/teams", nil)},
	{"POST", "/teams", [7]int{201, 201, 403, 403, 403, 403, 201}, func(_ *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/teams"), map[string]string{"slug": fmt.Sprintf("new-%d", f.next()), "name": "New"}}
	}},
	{"GET", "/teams/:team", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/teams/core", nil)},
	{"PATCH", "/teams/:team", [7]int{200, 200, 403, 403, 403, 403, 200}, func(_ *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/teams/core"), map[string]string{"name": fmt.Sprintf("Core %d", f.next())}}
	}},
	{"DELETE", "/teams/:team", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/teams/"+f.newTeam(s, tenant)), nil}
	}},
	{"POST", "/teams/:team/members", [7]int{200, 200, 403, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/teams/"+f.newTeam(s, tenant)+"/members"), map[string]string{"email": f.member[tenant]}}
	}},
	{"DELETE", "/teams/:team/members/:email", [7]int{200, 200, 403, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
		team := f.newTeam(s, tenant)
		s.must(200, "POST", tenantPath(tenant, "/teams/"+team+"/members"), f.owner[tenant], map[string]string{"email": f.member[tenant]})
		return cell{tenantPath(tenant, "/teams/"+team+"/members/"+f.member[tenant]), nil}
	}},

	{"GET", "/members", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/members", nil)},
	{"GET", "/invitations", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/invitations", nil)},
	{"DELETE", "/invitations/:email", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/invitations/"+f.newInvitation(s, tenant)), nil}
	}},
	{"POST", "/members", [7]int{201, 201, 403, 403, 403, 403, 201}, func(_ *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/members"), map[string]string{"email": fmt.Sprintf("invitee-%d@example.com", f.next()), "role": "viewer"}}
	}},
	{"PATCH", "/members/:user", [7]int{200, 200, 403, 403, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/members/"+f.newMember(s, tenant)), map[string]string{"role": "editor"}}
	}},
	{"DELETE", "/members/:user", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/members/"+f.newMember(s, tenant)), nil}
	}},

	{"GET", "/tokens", [7]int{200, 200, 403, 403, 403, 403, 200}, fixed("/tokens", nil)},
	{"POST", "/tokens", [7]int{201, 201, 403, 403, 403, 403, 201}, fixed("/tokens", map[string]string{"name": "cell", "role": "viewer"})},
	{"DELETE", "/tokens/:id", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/tokens/"+f.newToken(s, tenant)), nil}
	}},

	{"GET", "/audit", [7]int{200, 200, 403, 403, 403, 403, 200}, fixed("/audit", nil)},

	{"GET", "/policies", [7]int{200, 200, 403, 403, 403, 403, 200}, fixed("/policies", nil)},
	{"POST", "/policies/try", [7]int{200, 200, 403, 403, 403, 403, 200}, fixed("/policies/try", map[string]any{
		"rule":    neutralRule,
		"request": map[string]any{"role": "operator", "action": "replay", "kind": "dlq", "team": "core", "labels": map[string]string{"env": "prod"}}})},
	{"POST", "/policies", [7]int{201, 201, 403, 403, 403, 403, 201}, fixed("/policies", neutralRule)},
	{"DELETE", "/policies", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/policies"), map[string]string{"id": f.newPolicy(s, tenant)}}
	}},
	{"DELETE", "/policies/:id", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, "/policies/"+f.newPolicy(s, tenant)), nil}
	}},

	// The lock, election and KV services. This server runs no Raft group, so
	// a request that passes authorization answers 503 unavailable: the cells
	// check who gets past authorization (Use for editors, operators, admins
	// and owners; Read for everyone). lock_handlers_test.go checks the same
	// rules against a server with a Raft group.
	{"GET", "/locks", [7]int{pass, pass, pass, pass, pass, pass, pass}, fixed("/locks", nil)},
	{"POST", "/streams/:stream/events", [7]int{201, 201, 201, 201, 403, 403, 201}, func(s *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, fmt.Sprintf("/streams/cell-%d/events", f.next())), map[string]any{"events": []any{map[string]any{"type": "T", "data": map[string]int{}}}}}
	}},
	{"GET", "/streams/:stream/events", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/streams/order-1/events", nil)},
	{"GET", "/streams", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/streams", nil)},
	{"DELETE", "/streams/:stream", [7]int{204, 204, 403, 403, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		name := fmt.Sprintf("del-%d", f.next())
		s.must(201, "POST", tenantPath(tenant, "/streams/"+name+"/events"), f.owner[tenant], map[string]any{"events": []any{map[string]any{"type": "T", "data": map[string]int{}}}})
		return cell{tenantPath(tenant, "/streams/"+name), nil}
	}},
	{"GET", "/events", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/events?from_position=0", nil)},
	// Without an Upgrade header an allowed caller is told to speak WebSocket.
	{"GET", "/subscriptions/live", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/subscriptions/live", nil)},
	// Named subscriptions: reading needs Read on streams, creating,
	// deleting and acknowledging need Use.
	{"PUT", "/subscriptions/:name", [7]int{201, 201, 201, 201, 403, 403, 201}, func(_ *testServer, f *authzFixture, tenant string) cell {
		return cell{tenantPath(tenant, fmt.Sprintf("/subscriptions/cell-%d", f.next())), map[string]any{"category": "order"}}
	}},
	{"GET", "/subscriptions", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/subscriptions", nil)},
	{"GET", "/subscriptions/:name", [7]int{200, 200, 200, 200, 200, 200, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
		name := fmt.Sprintf("cell-%d", f.next())
		s.must(201, "PUT", tenantPath(tenant, "/subscriptions/"+name), f.owner[tenant], map[string]any{})
		return cell{tenantPath(tenant, "/subscriptions/"+name), nil}
	}},
	{"DELETE", "/subscriptions/:name", [7]int{204, 204, 204, 204, 403, 403, 204}, func(s *testServer, f *authzFixture, tenant string) cell {
		name := fmt.Sprintf("cell-%d", f.next())
		s.must(201, "PUT", tenantPath(tenant, "/subscriptions/"+name), f.owner[tenant], map[string]any{})
		return cell{tenantPath(tenant, "/subscriptions/"+name), nil}
	}},
	{"GET", "/subscriptions/:name/events", [7]int{200, 200, 200, 200, 200, 200, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
		name := fmt.Sprintf("cell-%d", f.next())
		s.must(201, "PUT", tenantPath(tenant, "/subscriptions/"+name), f.owner[tenant], map[string]any{})
		return cell{tenantPath(tenant, "/subscriptions/"+name+"/events"), nil}
	}},
	{"POST", "/subscriptions/:name/ack", [7]int{200, 200, 200, 200, 403, 403, 200}, func(s *testServer, f *authzFixture, tenant string) cell {
		name := fmt.Sprintf("cell-%d", f.next())
		s.must(201, "PUT", tenantPath(tenant, "/subscriptions/"+name), f.owner[tenant], map[string]any{})
		return cell{tenantPath(tenant, "/subscriptions/"+name+"/ack"), map[string]any{"position": 0}}
	}},
	{"PUT", "/streams/:stream/snapshot", [7]int{204, 204, 204, 204, 403, 403, 204}, fixed("/streams/order-1/snapshot", map[string]any{"version": 0, "data": map[string]int{"n": 2}})},
	{"GET", "/streams/:stream/snapshot", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/streams/order-1/snapshot", nil)},
	{"PUT", "/streams/:stream/metadata", [7]int{200, 200, 200, 200, 403, 403, 200}, fixed("/streams/order-1/metadata", map[string]any{"max_count": 1000})},
	{"GET", "/streams/:stream/metadata", [7]int{200, 200, 200, 200, 200, 200, 200}, fixed("/streams/order-1/metadata", nil)},
	// The stream endpoints below, like /subscriptions/live, tell an allowed
	// caller without an Upgrade header to speak WebSocket.
	{"GET", "/locks/watch", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/locks/watch", nil)},
	{"POST", "/locks/:name", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/locks/cell", map[string]any{"owner": "cell", "ttl_ms": 1000})},
	{"PUT", "/locks/:name", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/locks/cell", map[string]any{"token": "t", "ttl_ms": 1000})},
	{"DELETE", "/locks/:name", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/locks/cell", map[string]any{"token": "t"})},
	{"POST", "/locks/:name/force-release", [7]int{pass, pass, 403, 403, 403, 403, pass}, fixed("/locks/cell/force-release", nil)},
	{"POST", "/locks/:name/verify", [7]int{pass, pass, pass, pass, pass, pass, pass}, fixed("/locks/cell/verify", map[string]any{"fencing_token": 1})},
	{"POST", "/elections/:name/campaign", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/elections/cell/campaign", map[string]any{"candidate": "cell", "ttl_ms": 1000})},
	{"GET", "/elections", [7]int{pass, pass, pass, pass, pass, pass, pass}, fixed("/elections", nil)},
	{"GET", "/elections-watch", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/elections-watch", nil)},
	{"GET", "/elections/:name", [7]int{pass, pass, pass, pass, pass, pass, pass}, fixed("/elections/cell", nil)},
	{"POST", "/elections/:name/renew", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/elections/cell/renew", map[string]any{"token": "t", "ttl_ms": 1000})},
	{"POST", "/elections/:name/resign", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/elections/cell/resign", map[string]any{"token": "t"})},
	{"GET", "/elections/:name/observe", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/elections/cell/observe", nil)},
	{"GET", "/kv", [7]int{pass, pass, pass, pass, pass, pass, pass}, fixed("/kv?prefix=a", nil)},
	{"GET", "/kv-watch", [7]int{400, 400, 400, 400, 400, 400, 400}, fixed("/kv-watch?prefix=a", nil)},
	{"GET", "/kv/:key", [7]int{pass, pass, pass, pass, pass, pass, pass}, fixed("/kv/cell", nil)},
	{"PUT", "/kv/:key", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/kv/cell", map[string]any{"value": "v"})},
	{"DELETE", "/kv/:key", [7]int{pass, pass, pass, pass, 403, 403, pass}, fixed("/kv/cell", nil)},
}

// pass in the matrix means the caller is let through: the service answers
// whatever the object's state makes it answer (a lock held by another
// caller, a key not set), but not 401, 403 or the tenant's 404.
const pass = -1

// checkCell sends one cell's request and checks its status, its problem code
// and, for a refused request, that nothing was written.
func checkCell(t *testing.T, s *testServer, method string, c cell, cred string, want int) {
	t.Helper()
	before := s.state(t)
	r := s.do(method, c.path, cred, c.body)
	if want == pass {
		var p web.Problem
		_ = json.Unmarshal(r.Body, &p)
		if r.Status == 401 || r.Status == 403 || r.Status >= 500 || (r.Status == 404 && strings.HasPrefix(p.Detail, "tenant ")) {
			t.Fatalf("%s %s: status %d, want the caller let through; body %s", method, c.path, r.Status, r.Body)
		}
		return
	}
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, c.path, r.Status, want, r.Body)
	}
	if want >= 400 {
		wantProblem(t, r, want, codeFor[want])
		s.assertUnchanged(t, before, "a refused request")
	}
	if want == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without a Bearer WWW-Authenticate challenge: %q", r.Header.Get("WWW-Authenticate"))
	}
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	f := newAuthzFixture(s)
	cells := 0
	for _, row := range matrix {
		t.Run(row.method+" "+row.route, func(t *testing.T) {
			s := s.bind(t)
			for i, who := range matrixPrincipals {
				t.Run(who+"/own", func(t *testing.T) {
					s := s.bind(t)
					checkCell(t, s, row.method, row.target(s, f, "acme"), f.cred[who], row.want[i])
				})
				// Another tenant's objects exist, yet are not found: never 403.
				t.Run(who+"/other", func(t *testing.T) {
					s := s.bind(t)
					checkCell(t, s, row.method, row.target(s, f, "globex"), f.cred[who], http.StatusNotFound)
				})
				cells += 2
			}
			t.Run("no token", func(t *testing.T) {
				s := s.bind(t)
				checkCell(t, s, row.method, row.target(s, f, "acme"), "", http.StatusUnauthorized)
			})
			cells++
		})
	}

	// The routes outside any tenant that need a credential.
	identityRows := []struct {
		method, path string
		body         func() any
		want         [len(matrixPrincipals)]int
	}{
		{"GET", "/api/v1/me", func() any { return nil }, [7]int{200, 200, 200, 200, 200, 200, 200}},
		{"POST", "/api/v1/tenants", func() any { return map[string]string{"slug": fmt.Sprintf("own-%d", f.next()), "name": "Own"} },
			[7]int{201, 201, 201, 201, 201, 403, 403}},
	}
	for _, row := range identityRows {
		t.Run(row.method+" "+row.path, func(t *testing.T) {
			s := s.bind(t)
			for i, who := range matrixPrincipals {
				t.Run(who, func(t *testing.T) {
					s := s.bind(t)
					before := s.state(t)
					r := s.do(row.method, row.path, f.cred[who], row.body())
					if r.Status != row.want[i] {
						t.Fatalf("status %d, want %d; body %s", r.Status, row.want[i], r.Body)
					}
					if r.Status == 403 {
						wantProblem(t, r, 403, "forbidden")
						s.assertUnchanged(t, before, "a refused request")
					}
				})
				cells++
			}
			t.Run("no token", func(t *testing.T) {
				s := s.bind(t)
				wantProblem(t, s.do(row.method, row.path, "", row.body()), 401, "unauthenticated")
			})
			cells++
		})
	}
	t.Logf("%d cells", cells)
}

// TestAuthorizationMatrix_CoversEveryTenantRoute fails when a route is added
// under /api/v1/tenants/:tenant without a row in the matrix.
func TestAuthorizationMatrix_CoversEveryTenantRoute(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	inMatrix := map[string]bool{}
	for _, row := range matrix {
		inMatrix[row.method+" /api/v1/tenants/:tenant"+row.route] = true
	}
	seen := 0
	for _, r := range s.App.Web.Echo().Routes() {
		if r.Method == http.MethodHead || !strings.HasPrefix(r.Path, "/api/v1/tenants/:tenant") {
			continue
		}
		seen++
		if !inMatrix[r.Method+" "+r.Path] {
			t.Errorf("route %s %s has no row in the authorization matrix", r.Method, r.Path)
		}
	}
	if seen != len(matrix) {
		t.Errorf("the server has %d tenant routes, the matrix %d rows", seen, len(matrix))
	}
}

// TestAuthorization_ForeignIDsAreNotFoundAndUntouched uses ids and names of
// globex's objects under acme's path, where the caller is allowed to act: each
// is 404, and globex is unchanged.
func TestAuthorization_ForeignIDsAreNotFoundAndUntouched(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	acme := s.signup("owner@acme.test", "acme")
	s.must(201, "POST", "/api/v1/tenants/acme/teams", acme, map[string]string{"slug": "core", "name": "Core"})
	var acmeAdminTok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", acme, map[string]string{"name": "admin bot", "role": "admin"}).json(t, &acmeAdminTok)

	globex := s.signup("owner@globex.test", "globex")
	var me api.MeResponse
	s.must(200, "GET", "/api/v1/me", globex, nil).json(t, &me)
	globexOwner := me.User.ID.String()
	s.signup("member@globex.test", "")
	var gMember tenancy.Member
	s.must(201, "POST", "/api/v1/tenants/globex/members", globex, map[string]string{"email": "member@globex.test", "role": "editor"}).json(t, &gMember)
	s.must(201, "POST", "/api/v1/tenants/globex/members", globex, map[string]string{"email": "invitee@globex.test", "role": "viewer"})
	s.must(201, "POST", "/api/v1/tenants/globex/teams", globex, map[string]string{"slug": "secret", "name": "Secret"})
	var gTok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/globex/tokens", globex, map[string]string{"name": "globex bot", "role": "viewer"}).json(t, &gTok)
	var gPolicy struct{ ID string }
	s.must(201, "POST", "/api/v1/tenants/globex/policies", globex, neutralRule).json(t, &gPolicy)

	cases := []struct {
		name, method, path string
		body               any
	}{
		{"revoke a globex token", "DELETE", "/api/v1/tenants/acme/tokens/" + gTok.ID.String(), nil},
		{"demote the globex owner", "PATCH", "/api/v1/tenants/acme/members/" + globexOwner, map[string]string{"role": "viewer"}},
		{"promote a globex member", "PATCH", "/api/v1/tenants/acme/members/" + gMember.UserID.String(), map[string]string{"role": "admin"}},
		{"remove the globex owner", "DELETE", "/api/v1/tenants/acme/members/" + globexOwner, nil},
		{"remove a globex member", "DELETE", "/api/v1/tenants/acme/members/" + gMember.UserID.String(), nil},
		{"delete a globex policy", "DELETE", "/api/v1/tenants/acme/policies/" + gPolicy.ID, nil},
		{"read a globex team", "GET", "/api/v1/tenants/acme/teams/secret", nil},
		{"rename a globex team", "PATCH", "/api/v1/tenants/acme/teams/secret", map[string]string{"name": "Mine"}},
		{"delete a globex team", "DELETE", "/api/v1/tenants/acme/teams/secret", nil},
		{"add to a globex team", "POST", "/api/v1/tenants/acme/teams/secret/members", map[string]string{"email": "owner@acme.test"}},
		{"put a globex member in an acme team", "POST", "/api/v1/tenants/acme/teams/core/members", map[string]string{"email": "member@globex.test"}},
		{"take a globex member out of an acme team", "DELETE", "/api/v1/tenants/acme/teams/core/members/owner@globex.test", nil},
		{"cancel a globex invitation", "DELETE", "/api/v1/tenants/acme/invitations/invitee@globex.test", nil},
	}
	for _, who := range []struct{ name, cred string }{{"owner", acme}, {"token:admin", acmeAdminTok.Token}} {
		for _, c := range cases {
			t.Run(who.name+"/"+c.name, func(t *testing.T) {
				s := s.bind(t)
				before := s.state(t)
				wantProblem(t, s.do(c.method, c.path, who.cred, c.body), 404, "not_found")
				s.assertUnchanged(t, before, c.name)
			})
		}
	}

	// globex's objects still work.
	s.must(200, "GET", "/api/v1/tenants/globex/teams", gTok.Token, nil)
	var gm api.List[tenancy.Member]
	s.must(200, "GET", "/api/v1/tenants/globex/members", globex, nil).json(t, &gm)
	roles := map[string]tenancy.Role{}
	for _, m := range gm.Items {
		roles[m.Email] = m.Role
	}
	if roles["owner@globex.test"] != tenancy.Owner || roles["member@globex.test"] != tenancy.Editor {
		t.Errorf("globex members changed: %v", roles)
	}

	// acme's lists show nothing of globex.
	for _, path := range []string{"/teams", "/members", "/tokens", "/policies", "/audit"} {
		body := string(s.must(200, "GET", "/api/v1/tenants/acme"+path, acme, nil).Body)
		for _, secret := range []string{"secret", "globex", gTok.ID.String(), gPolicy.ID, globexOwner, gMember.UserID.String()} {
			if strings.Contains(body, secret) {
				t.Errorf("GET acme%s shows globex's %q: %s", path, secret, body)
			}
		}
	}
}

// TestAuthorization_OtherTenantLooksLikeNoTenant: another tenant's answer is
// the same as a tenant that does not exist, so its existence does not leak.
func TestAuthorization_OtherTenantLooksLikeNoTenant(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	acme := s.signup("owner@acme.test", "acme")
	s.signup("owner@globex.test", "globex")
	var tok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", acme, map[string]string{"name": "bot", "role": "admin"}).json(t, &tok)
	for _, who := range []struct{ name, cred string }{{"user", acme}, {"token", tok.Token}} {
		for _, rest := range []string{"", "/teams", "/members", "/tokens", "/audit", "/policies"} {
			t.Run(who.name+rest, func(t *testing.T) {
				other := wantProblem(t, s.bind(t).do("GET", "/api/v1/tenants/globex"+rest, who.cred, nil), 404, "not_found")
				none := wantProblem(t, s.bind(t).do("GET", "/api/v1/tenants/nosuchco"+rest, who.cred, nil), 404, "not_found")
				if got, want := strings.ReplaceAll(other.Detail, "globex", "X"), strings.ReplaceAll(none.Detail, "nosuchco", "X"); got != want {
					t.Errorf("another tenant answers %q, a missing one %q", other.Detail, none.Detail)
				}
				if other.Title != none.Title || other.Type != none.Type || len(other.Errors) != len(none.Errors) {
					t.Errorf("another tenant %+v, a missing one %+v", other, none)
				}
			})
		}
	}
}
