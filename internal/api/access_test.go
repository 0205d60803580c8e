package api_test

import (
	"strings"
	"testing"
	"time"

	"switchboard/internal/api"
	"switchboard/internal/audit"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// A rule can look at the object as loaded: with "editors may update the
// teams they are in", an editor renames and staffs their own team, and not
// another, and the decision is made on the team the server loaded, not on
// the path.
func TestAccess_RuleOnTheLoadedTeam(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	editor := s.member(owner, "acme", "ed@acme.test", tenancy.Editor)
	s.member(owner, "acme", "vi@acme.test", tenancy.Viewer)
	base := "/api/v1/tenants/acme/teams"
	for _, slug := range []string{"core", "search"} {
		s.must(201, "POST", base, owner, map[string]string{"slug": slug, "name": slug})
	}
	s.must(200, "POST", base+"/core/members", owner, map[string]string{"email": "ed@acme.test"})
	// Without a rule, an editor may not change teams.
	wantProblem(t, s.do("PATCH", base+"/core", editor, map[string]string{"name": "Core"}), 403, "forbidden")
	s.must(201, "POST", "/api/v1/tenants/acme/policies", owner, map[string]string{
		"role": "editor", "resource": "team", "action": "update", "effect": "allow", "condition": "hasTeam(r.sub, r.obj.Team)"})
	var team tenancy.Team
	s.must(200, "PATCH", base+"/core", editor, map[string]string{"name": "Core services"}).json(t, &team)
	if team.Name != "Core services" {
		t.Fatalf("renamed %+v", team)
	}
	s.must(200, "POST", base+"/core/members", editor, map[string]string{"email": "vi@acme.test"})
	wantProblem(t, s.do("PATCH", base+"/search", editor, map[string]string{"name": "Mine"}), 403, "forbidden")
	wantProblem(t, s.do("POST", base+"/search/members", editor, map[string]string{"email": "ed@acme.test"}), 403, "forbidden")
	// A team that is not there is not found, for anyone.
	wantProblem(t, s.do("PATCH", base+"/nope", editor, map[string]string{"name": "x"}), 404, "not_found")
	// The API token of the editor carries the same current rights.
	var tok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "owner bot", "role": "editor"}).json(t, &tok)
	wantProblem(t, s.do("PATCH", base+"/core", tok.Token, map[string]string{"name": "x"}), 403, "forbidden") // the owner is in no team
}

// Adding or removing a team member moves the team's version on, so an ETag
// read before is stale.
func TestTeams_MemberChangesMoveTheETag(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	s.member(owner, "acme", "ed@acme.test", tenancy.Editor)
	base := "/api/v1/tenants/acme/teams"
	etag := s.must(201, "POST", base, owner, map[string]string{"slug": "core", "name": "Core"}).Header.Get("ETag")
	added := s.must(200, "POST", base+"/core/members", owner, map[string]string{"email": "ed@acme.test"}).Header.Get("ETag")
	if added == etag || added == "" {
		t.Fatalf("ETag %q after adding a member, %q before", added, etag)
	}
	wantProblem(t, s.do("PATCH", base+"/core", owner, map[string]string{"name": "x"}, "If-Match", etag), 412, "precondition")
	removed := s.must(200, "DELETE", base+"/core/members/ed@acme.test", owner, nil).Header.Get("ETag")
	if removed == added {
		t.Fatalf("ETag %q unchanged by removing a member", removed)
	}
	if got := s.must(200, "GET", base+"/core", owner, nil).Header.Get("ETag"); got != removed {
		t.Fatalf("GET ETag %q, the removal answered %q", got, removed)
	}
}

// An admin frees a lock whose holder is gone; the next waiter gets it, the
// old token is dead, and the audit log says who did it. Others may not.
func TestLocks_ForceReleaseByAnAdmin(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	admin := s.member(owner, "acme", "ad@acme.test", tenancy.Admin)
	operator := s.member(owner, "acme", "op@acme.test", tenancy.Operator)
	var l api.LockResponse
	s.must(200, "POST", locksPath+"/report", operator, map[string]any{"owner": "crashed-pod", "ttl_ms": 3_600_000}).json(t, &l)
	wantProblem(t, s.do("POST", locksPath+"/report/force-release", operator, nil), 403, "forbidden")
	var freed api.LockInfo
	s.must(200, "POST", locksPath+"/report/force-release", admin, nil).json(t, &freed)
	if freed.Owner != "crashed-pod" || freed.FencingToken != l.FencingToken {
		t.Fatalf("freed %+v, want the crashed pod's lease", freed)
	}
	wantProblem(t, s.do("PUT", locksPath+"/report", operator, map[string]any{"token": l.Token, "ttl_ms": 1000}), 404, "not_found")
	wantProblem(t, s.do("POST", locksPath+"/report/force-release", admin, nil), 404, "not_found")
	var entries api.List[audit.Entry]
	s.must(200, "GET", "/api/v1/tenants/acme/audit", owner, nil).json(t, &entries)
	if len(entries.Items) == 0 || entries.Items[0].Action != "lock.force_released" || entries.Items[0].Actor != "ad@acme.test" || entries.Items[0].ObjectID != "report" {
		t.Fatalf("latest audit entry %+v", entries.Items[0])
	}
}

// The policy list pages, says each condition in words, and a rule can be
// tried on an example request before it is saved.
func TestPolicies_PagedExplainedAndTried(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	p := "/api/v1/tenants/acme/policies"
	s.must(201, "POST", p, owner, map[string]string{"role": "operator", "resource": "dlq", "action": "replay", "effect": "deny",
		"condition": `!hasTeam(r.sub, r.obj.Team) || label(r.obj, "env") == "prod"`})
	var all []api.PolicyRule
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatal("the pages never end")
		}
		var page api.List[api.PolicyRule]
		s.must(200, "GET", p+"?limit=7&cursor="+cursor, owner, nil).json(t, &page)
		if len(page.Items) > 7 {
			t.Fatalf("a page of %d rules, limit 7", len(page.Items))
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(all) != len(rbac.Builtin())+1 {
		t.Fatalf("%d rules over the pages, want %d", len(all), len(rbac.Builtin())+1)
	}
	last := all[len(all)-1]
	if last.Builtin || last.Explanation != `the caller is not in the object's owning team or the object's label "env" is "prod"` {
		t.Fatalf("the tenant's rule reads %+v", last)
	}
	if all[0].Explanation != "always" {
		t.Fatalf("a built-in rule without condition reads %q", all[0].Explanation)
	}
	wantProblem(t, s.do("GET", p+"?cursor=garbage", owner, nil), 400, "invalid")

	var tried api.TryPolicyResponse
	s.must(200, "POST", p+"/try", owner, map[string]any{
		"rule":    map[string]string{"role": "operator", "resource": "dlq", "action": "replay", "effect": "allow", "condition": `r.obj.Name == "x"`},
		"request": map[string]any{"role": "operator", "teams": []string{"payments"}, "action": "replay", "kind": "dlq", "team": "payments", "labels": map[string]string{"env": "prod"}},
	}).json(t, &tried)
	if tried.Before.Allowed || tried.After.Allowed || !strings.Contains(strings.Join(tried.Before.Because, ";"), "deny operator replay dlq") {
		t.Fatalf("tried %+v: want denied by the tenant's rule before and after", tried)
	}
	wantProblem(t, s.do("POST", p+"/try", owner, map[string]any{"request": map[string]any{"role": "boss", "action": "replay", "kind": "dlq"}}), 400, "invalid")
}

// The audit log filters in the database: a page holds every match, however
// far back, and never an entry that does not match.
func TestAudit_FiltersByActionActorAndTime(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	admin := s.member(owner, "acme", "ad@acme.test", tenancy.Admin)
	s.must(201, "POST", "/api/v1/tenants/acme/teams", admin, map[string]string{"slug": "old", "name": "Old"})
	for i := 0; i < 30; i++ {
		s.must(201, "POST", "/api/v1/tenants/acme/policies", owner, map[string]string{"role": "viewer", "resource": "cluster", "action": "replay", "effect": "deny"})
	}
	var page api.List[audit.Entry]
	s.must(200, "GET", "/api/v1/tenants/acme/audit?action=team.&limit=5", owner, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Action != "team.created" || page.Items[0].Actor != "ad@acme.test" {
		t.Fatalf("team entries %+v", page.Items)
	}
	s.must(200, "GET", "/api/v1/tenants/acme/audit?actor=AD@ACME&limit=50", owner, nil).json(t, &page)
	for _, e := range page.Items {
		if e.Actor != "ad@acme.test" {
			t.Fatalf("an entry by %s matched actor AD@ACME", e.Actor)
		}
	}
	if len(page.Items) == 0 {
		t.Fatal("no entry by the admin")
	}
	s.must(200, "GET", "/api/v1/tenants/acme/audit?until=2000-01-01T00:00:00Z", owner, nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("%d entries before 2000", len(page.Items))
	}
	wantProblem(t, s.do("GET", "/api/v1/tenants/acme/audit?since=yesterday", owner, nil), 400, "invalid")
}

// Members' rights and verified tokens are remembered, not read on every
// request, yet a demotion, a removal or a revocation still takes effect at
// once on the replica that made it, and on every other replica as soon as
// the change's notification arrives (a bound of seconds here, not a
// measurement).
func TestRights_RememberedButNeverStale(t *testing.T) {
	t.Parallel()
	a := newTestServer(t)
	b := newTestServer(t, replicaOf(a), joining("n2"))
	owner := a.signup("owner@acme.test", "acme")
	admin := a.member(owner, "acme", "ad@acme.test", tenancy.Admin)
	ed := a.member(owner, "acme", "ed@acme.test", tenancy.Editor)
	var tok api.CreateTokenResponse
	a.must(201, "POST", "/api/v1/tenants/acme/tokens", admin, map[string]string{"name": "bot", "role": "admin"}).json(t, &tok)
	teams := "/api/v1/tenants/acme/teams"
	// Each replica has seen, and remembers, each credential.
	for _, s := range []*testServer{a, b} {
		for _, cred := range []string{admin, ed, tok.Token} {
			s.must(200, "GET", teams, cred, nil)
			s.must(200, "GET", teams, cred, nil)
		}
	}
	eventually := func(s *testServer, what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s never took effect on %s", what, s.URL)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The admin is demoted to viewer on replica a: their token (created
	// as admin) can no longer create a team, at once on a.
	var adID string
	var members api.List[tenancy.Member]
	a.must(200, "GET", "/api/v1/tenants/acme/members", owner, nil).json(t, &members)
	for _, m := range members.Items {
		if m.Email == "ad@acme.test" {
			adID = m.UserID.String()
		}
	}
	a.must(200, "PATCH", "/api/v1/tenants/acme/members/"+adID, owner, map[string]string{"role": "viewer"})
	wantProblem(t, a.do("POST", teams, tok.Token, map[string]string{"slug": "x", "name": "X"}), 403, "forbidden")
	wantProblem(t, a.do("POST", teams, admin, map[string]string{"slug": "x", "name": "X"}), 403, "forbidden")
	eventually(b, "the demotion", func() bool {
		return b.do("POST", teams, tok.Token, map[string]string{"slug": "y", "name": "Y"}).Status == 403
	})
	// The editor is removed on replica b: not found at once on b, and soon
	// on a.
	var edID string
	for _, m := range members.Items {
		if m.Email == "ed@acme.test" {
			edID = m.UserID.String()
		}
	}
	b.must(204, "DELETE", "/api/v1/tenants/acme/members/"+edID, owner, nil)
	wantProblem(t, b.do("GET", teams, ed, nil), 404, "not_found")
	eventually(a, "the removal", func() bool { return a.do("GET", teams, ed, nil).Status == 404 })
	// The token is revoked on a: refused at once on a, soon on b.
	a.must(204, "DELETE", "/api/v1/tenants/acme/tokens/"+tok.ID.String(), owner, nil)
	wantProblem(t, a.do("GET", teams, tok.Token, nil), 401, "unauthenticated")
	eventually(b, "the revocation", func() bool { return b.do("GET", teams, tok.Token, nil).Status == 401 })
}
