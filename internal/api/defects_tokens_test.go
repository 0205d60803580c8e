package api_test

import (
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/tenancy"
)

// TestDefect_TokenRightsFollowTheCreatorsCurrentMembership: an API token
// acts with at most its creator's current role, checked on every request;
// a demotion or a removal takes effect on the very next request, for tokens
// made before it and for tokens minted with a token. A token may be scoped
// below its creator.
func TestDefect_TokenRightsFollowTheCreatorsCurrentMembership(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	admin := s.member(owner, "acme", "admin@acme.test", tenancy.Admin)
	adminID := defectUserID(s, admin)

	adminTok := defectToken(s, admin, "acme", "deploy", "admin").Token
	scoped := defectToken(s, admin, "acme", "read-only", "viewer").Token
	minted := defectToken(s, adminTok, "acme", "minted-by-a-token", "admin").Token

	role := func(cred string) tenancy.Role {
		t.Helper()
		var tr api.TenantResponse
		s.must(200, "GET", "/api/v1/tenants/acme", cred, nil).json(t, &tr)
		return tr.Role
	}
	n := 0
	team := func() map[string]string {
		n++
		return map[string]string{"slug": "team-" + string(rune('a'+n)), "name": "Team"}
	}

	// Before: the admin's tokens act as admins; the scoped one as a viewer.
	for name, cred := range map[string]string{"admin token": adminTok, "minted token": minted} {
		if r := role(cred); r != tenancy.Admin {
			t.Fatalf("%s: role %q before the demotion, want admin", name, r)
		}
		s.must(201, "POST", "/api/v1/tenants/acme/teams", cred, team())
	}
	if r := role(scoped); r != tenancy.Viewer {
		t.Fatalf("a token scoped to viewer by an admin acts as %q", r)
	}
	wantProblem(t, s.do("POST", "/api/v1/tenants/acme/teams", scoped, team()), 403, "forbidden")
	wantProblem(t, s.do("POST", "/api/v1/tenants/acme/tokens", scoped, map[string]string{"name": "x", "role": "viewer"}), 403, "forbidden")

	// The owner demotes the admin to viewer: at once, every token the admin
	// made (directly or through a token) is a viewer's.
	s.must(200, "PATCH", "/api/v1/tenants/acme/members/"+adminID, owner, map[string]string{"role": "viewer"})
	for name, cred := range map[string]string{"admin token": adminTok, "minted token": minted, "scoped token": scoped} {
		t.Run("demoted/"+name, func(t *testing.T) {
			s := s.bind(t)
			if r := role(cred); r != tenancy.Viewer {
				t.Errorf("role %q after the creator's demotion to viewer", r)
			}
			var me api.MeResponse
			s.must(200, "GET", "/api/v1/me", cred, nil).json(t, &me)
			if me.Token == nil || me.Token.Role != tenancy.Viewer {
				t.Errorf("GET /me says %+v, want the token's role viewer", me.Token)
			}
			wantProblem(t, s.do("POST", "/api/v1/tenants/acme/teams", cred, team()), 403, "forbidden")
			wantProblem(t, s.do("POST", "/api/v1/tenants/acme/tokens", cred, map[string]string{"name": "escalate", "role": "admin"}), 403, "forbidden")
			wantProblem(t, s.do("POST", "/api/v1/tenants/acme/tokens", cred, map[string]string{"name": "escalate", "role": "viewer"}), 403, "forbidden")
			wantProblem(t, s.do("POST", "/api/v1/tenants/acme/members", cred, map[string]string{"email": "friend@acme.test", "role": "admin"}), 403, "forbidden")
			wantProblem(t, s.do("POST", "/api/v1/tenants/acme/policies", cred,
				map[string]string{"role": "viewer", "resource": "team", "action": "create", "effect": "allow"}), 403, "forbidden")
			s.must(200, "GET", "/api/v1/tenants/acme/teams", cred, nil) // a viewer still reads
		})
	}

	// The owner removes the former admin: none of the tokens works any more.
	s.must(204, "DELETE", "/api/v1/tenants/acme/members/"+adminID, owner, nil)
	for name, cred := range map[string]string{"admin token": adminTok, "minted token": minted, "scoped token": scoped, "access token": admin} {
		t.Run("removed/"+name, func(t *testing.T) {
			s := s.bind(t)
			for _, c := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/api/v1/tenants/acme/teams", nil},
				{"GET", "/api/v1/tenants/acme/members", nil},
				{"POST", "/api/v1/tenants/acme/teams", team()},
				{"POST", "/api/v1/tenants/acme/tokens", map[string]string{"name": "after-removal", "role": "viewer"}},
			} {
				r := s.do(c.method, c.path, cred, c.body)
				if r.Status != 401 && r.Status != 403 && r.Status != 404 {
					t.Errorf("%s %s after the creator's removal: %d %s, want 401, 403 or 404", c.method, c.path, r.Status, r.Body)
					continue
				}
				r.problemCode(t)
			}
		})
	}
	// Nothing was made after the demotion.
	var toks api.List[map[string]any]
	s.must(200, "GET", "/api/v1/tenants/acme/tokens", owner, nil).json(t, &toks)
	if len(toks.Items) != 3 {
		t.Errorf("the tenant has %d tokens, want the 3 made before the demotion: %v", len(toks.Items), toks.Items)
	}
}
