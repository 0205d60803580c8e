package rbac_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"switchboard/internal/auth"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTenant(t *testing.T) (*rbac.Service, *tenancy.Store, uuid.UUID, func() int64) {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	var tenant uuid.UUID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	version := func() int64 {
		var v int64
		if err := db.Pool.QueryRow(ctx, `SELECT policy_version FROM tenants WHERE id = $1`, tenant).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	return rbac.New(db), tenancy.New(db), tenant, version
}

func principal(tenant uuid.UUID, role tenancy.Role, version int64, teams ...string) auth.Principal {
	return auth.Principal{Tenant: tenant, TenantSlug: "acme", Role: role, Teams: teams, PolicyVersion: version}
}

func code(err error) string {
	if err == nil {
		return "ok"
	}
	return problem.Code(err)
}

func TestAuthorize_BuiltinRoles(t *testing.T) {
	s, _, tenant, version := newTenant(t)
	ctx := context.Background()
	v := version()
	cases := []struct {
		role tenancy.Role
		act  string
		kind string
		want string
	}{
		{tenancy.Viewer, rbac.Read, "team", "ok"},
		{tenancy.Viewer, rbac.Create, "team", "forbidden"},
		{tenancy.Viewer, rbac.Read, "token", "forbidden"},
		{tenancy.Viewer, rbac.Read, "audit", "forbidden"},
		{tenancy.Editor, rbac.Create, "service", "forbidden"}, // no owning team: not theirs
		{tenancy.Editor, rbac.Create, "team", "forbidden"},
		{tenancy.Editor, rbac.Replay, "dlq", "forbidden"},
		{tenancy.Operator, rbac.Replay, "dlq", "forbidden"}, // no owning team: not theirs
		{tenancy.Operator, rbac.Replay, "queue", "ok"},      // into a queue not labelled env=prod
		{tenancy.Operator, rbac.Create, "service", "forbidden"},
		{tenancy.Operator, rbac.Use, "lock", "ok"},
		{tenancy.Admin, rbac.Delete, "team", "ok"},
		{tenancy.Admin, rbac.Delete, "tenant", "forbidden"},
		{tenancy.Owner, rbac.Delete, "tenant", "ok"},
	}
	for _, c := range cases {
		got := code(s.Authorize(ctx, principal(tenant, c.role, v), c.act, rbac.Object{Tenant: tenant, Kind: c.kind}))
		if got != c.want {
			t.Errorf("%s %s %s = %s, want %s", c.role, c.act, c.kind, got, c.want)
		}
	}
}

func TestAuthorize_CatalogEntitiesBelongToTheirTeam(t *testing.T) {
	s, _, tenant, version := newTenant(t)
	ctx := context.Background()
	editor := principal(tenant, tenancy.Editor, version(), "payments")
	admin := principal(tenant, tenancy.Admin, version())
	obj := func(team, env string) rbac.Object {
		return rbac.Object{Tenant: tenant, Kind: "queue", Name: "queue:orders", Team: team, Labels: map[string]string{"env": env}}
	}
	cases := []struct {
		name string
		p    auth.Principal
		act  string
		obj  rbac.Object
		want string
	}{
		{"editor changes their team's queue", editor, rbac.Update, obj("payments", "dev"), "ok"},
		{"editor creates for their team", editor, rbac.Create, obj("payments", "dev"), "ok"},
		{"editor cannot change another team's", editor, rbac.Update, obj("shipping", "dev"), "forbidden"},
		{"editor deletes their dev queue", editor, rbac.Delete, obj("payments", "dev"), "ok"},
		{"editor cannot delete a prod queue", editor, rbac.Delete, obj("payments", "prod"), "forbidden"},
		{"admin deletes a prod queue", admin, rbac.Delete, obj("shipping", "prod"), "ok"},
		{"viewer reads any", principal(tenant, tenancy.Viewer, version()), rbac.Read, obj("shipping", "prod"), "ok"},
	}
	for _, c := range cases {
		if got := code(s.Authorize(ctx, c.p, c.act, c.obj)); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestAuthorize_OtherTenantIsNotFound(t *testing.T) {
	s, _, tenant, version := newTenant(t)
	err := s.Authorize(context.Background(), principal(tenant, tenancy.Owner, version()), rbac.Read, rbac.Object{Tenant: uuid.New(), Kind: "team", Name: "core"})
	if code(err) != problem.CodeNotFound {
		t.Fatalf("got %v, want not_found", err)
	}
}

// The architecture's example: an operator may replay only DLQs owned by one
// of their teams, and replay into env=prod needs the admin role.
func TestAuthorize_ABACConditions(t *testing.T) {
	s, _, tenant, version := newTenant(t)
	ctx := context.Background()
	_, err := s.Add(ctx, tenant, tenancy.Owner, rbac.Rule{Role: tenancy.Operator, Resource: "dlq", Action: rbac.Replay, Effect: "deny",
		Condition: `!hasTeam(r.sub, r.obj.Team) || label(r.obj, "env") == "prod"`})
	if err != nil {
		t.Fatal(err)
	}
	v := version()
	dlq := func(team, env string) rbac.Object {
		return rbac.Object{Tenant: tenant, Kind: "dlq", Name: "orders.dlq", Team: team, Labels: map[string]string{"env": env}}
	}
	cases := []struct {
		name string
		p    auth.Principal
		obj  rbac.Object
		want string
	}{
		{"operator, own team, staging", principal(tenant, tenancy.Operator, v, "payments"), dlq("payments", "staging"), "ok"},
		{"operator, other team", principal(tenant, tenancy.Operator, v, "payments"), dlq("search", "staging"), "forbidden"},
		{"operator, own team, prod", principal(tenant, tenancy.Operator, v, "payments"), dlq("payments", "prod"), "forbidden"},
		{"admin, prod", principal(tenant, tenancy.Admin, v), dlq("search", "prod"), "ok"},
	}
	for _, c := range cases {
		if got := code(s.Authorize(ctx, c.p, rbac.Replay, c.obj)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestAdd_BumpsVersionAndTakesEffect(t *testing.T) {
	s, _, tenant, version := newTenant(t)
	ctx := context.Background()
	v0 := version()
	p := principal(tenant, tenancy.Viewer, v0)
	if err := s.Authorize(ctx, p, rbac.Read, rbac.Object{Tenant: tenant, Kind: "audit"}); code(err) != "forbidden" {
		t.Fatalf("before the rule: %v", err)
	}
	r, err := s.Add(ctx, tenant, tenancy.Owner, rbac.Rule{Role: tenancy.Viewer, Resource: "audit", Action: rbac.Read, Effect: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	v1 := version()
	if v1 <= v0 {
		t.Fatalf("policy_version %d did not move past %d", v1, v0)
	}
	p.PolicyVersion = v1
	if err := s.Authorize(ctx, p, rbac.Read, rbac.Object{Tenant: tenant, Kind: "audit"}); err != nil {
		t.Fatalf("after the rule: %v", err)
	}
	if err := s.Remove(ctx, tenant, r.ID); err != nil {
		t.Fatal(err)
	}
	p.PolicyVersion = version()
	if err := s.Authorize(ctx, p, rbac.Read, rbac.Object{Tenant: tenant, Kind: "audit"}); code(err) != "forbidden" {
		t.Fatalf("after removing the rule: %v", err)
	}
}

func TestAdd_RejectsBadRules(t *testing.T) {
	s, _, tenant, _ := newTenant(t)
	bad := []rbac.Rule{
		{Role: "root", Resource: "team", Action: "read", Effect: "allow"},
		{Role: tenancy.Viewer, Resource: "spaceship", Action: "read", Effect: "allow"},
		{Role: tenancy.Viewer, Resource: "team", Action: "launch", Effect: "allow"},
		{Role: tenancy.Viewer, Resource: "team", Action: "read", Effect: "maybe"},
		{Role: tenancy.Viewer, Resource: "team", Action: "read", Effect: "allow", Condition: "r.sub.Role =="},
		{Role: tenancy.Viewer, Resource: "team", Action: "read", Effect: "allow", Condition: "nosuchfunc(r.sub)"},
	}
	for _, r := range bad {
		if _, err := s.Add(context.Background(), tenant, tenancy.Owner, r); code(err) != problem.CodeInvalid {
			t.Errorf("rule %+v: got %v, want invalid", r, err)
		}
	}
	rules, err := s.List(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !r.Builtin {
			t.Errorf("a rejected rule was stored: %+v", r)
		}
	}
}
