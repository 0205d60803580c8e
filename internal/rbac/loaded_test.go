package rbac_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// sampleDLQs is a domain store shaped as the catalog and the DLQ will be:
// its objects carry an owning team and labels, and an action on one loads
// it for the tenant, asks the check about it as loaded, and only then acts,
// in one transaction.
type sampleDLQs struct{ db *database.DB }

func newSampleDLQs(t *testing.T, db *database.DB) sampleDLQs {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `
		CREATE TABLE sample_dlqs (
			tenant_id uuid NOT NULL, name text NOT NULL, owner_team text NOT NULL,
			labels jsonb NOT NULL DEFAULT '{}', replays int NOT NULL DEFAULT 0,
			PRIMARY KEY (tenant_id, name));
		ALTER TABLE sample_dlqs ENABLE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON sample_dlqs
			USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
		GRANT SELECT, UPDATE ON sample_dlqs TO switchboard_app;`)
	if err != nil {
		t.Fatal(err)
	}
	return sampleDLQs{db}
}

func (s sampleDLQs) add(t *testing.T, tenant uuid.UUID, name, team string, labels map[string]string) {
	t.Helper()
	if _, err := s.db.Pool.Exec(context.Background(), `INSERT INTO sample_dlqs (tenant_id, name, owner_team, labels) VALUES ($1, $2, $3, $4)`,
		tenant, name, team, labels); err != nil {
		t.Fatal(err)
	}
}

// Replay replays the DLQ name of tenant, if allow lets the caller replay it
// as it is.
func (s sampleDLQs) Replay(ctx context.Context, tenant uuid.UUID, name string, allow access.Check) error {
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var team string
		var labels map[string]string
		err := tx.QueryRow(ctx, `SELECT owner_team, labels FROM sample_dlqs WHERE tenant_id = $1 AND name = $2 FOR UPDATE`, tenant, name).Scan(&team, &labels)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("dlq", name)
		}
		if err != nil {
			return err
		}
		if err := allow(ctx, access.Object{Tenant: tenant, Kind: "dlq", Name: name, Team: team, Labels: labels}); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE sample_dlqs SET replays = replays + 1 WHERE tenant_id = $1 AND name = $2`, tenant, name)
		return err
	})
}

func (s sampleDLQs) replays(t *testing.T, tenant uuid.UUID, name string) int {
	t.Helper()
	var n int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT replays FROM sample_dlqs WHERE tenant_id = $1 AND name = $2`, tenant, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The two rules ARCHITECTURE.md names, decided on the object as loaded:
// "an operator may replay only DLQs owned by one of their teams" and
// "replay into env=prod needs admin". Another tenant's object is not found.
func TestAuthorize_OnTheLoadedObject_TeamAndLabels(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	var tenant uuid.UUID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	s := rbac.New(db)
	version := func() int64 {
		var v int64
		if err := db.Pool.QueryRow(ctx, `SELECT policy_version FROM tenants WHERE id = $1`, tenant).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, r := range []rbac.Rule{
		{Role: tenancy.Operator, Resource: "dlq", Action: rbac.Replay, Effect: "deny", Condition: "!hasTeam(r.sub, r.obj.Team)"},
		{Role: tenancy.Operator, Resource: "dlq", Action: rbac.Replay, Effect: "deny", Condition: `label(r.obj, "env") == "prod"`},
	} {
		if _, err := s.Add(ctx, tenant, tenancy.Owner, r); err != nil {
			t.Fatal(err)
		}
	}
	dlqs := newSampleDLQs(t, db)
	dlqs.add(t, tenant, "orders.dlq", "payments", map[string]string{"env": "staging"})
	dlqs.add(t, tenant, "orders-prod.dlq", "payments", map[string]string{"env": "prod"})
	dlqs.add(t, tenant, "search.dlq", "search", map[string]string{"env": "staging"})
	var other uuid.UUID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('globex', 'Globex') RETURNING id`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	dlqs.add(t, other, "orders.dlq", "payments", map[string]string{})

	v := version()
	operator := principal(tenant, tenancy.Operator, v, "payments")
	admin := principal(tenant, tenancy.Admin, v)
	for _, c := range []struct {
		name string
		who  string
		dlq  string
		want string
	}{
		{"an operator of the owning team", "operator", "orders.dlq", "ok"},
		{"an operator of another team", "operator", "search.dlq", problem.CodeForbidden},
		{"an operator, into prod", "operator", "orders-prod.dlq", problem.CodeForbidden},
		{"an admin, into prod", "admin", "orders-prod.dlq", "ok"},
		{"a missing DLQ", "operator", "nope.dlq", problem.CodeNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := map[string]auth.Principal{"operator": operator, "admin": admin}[c.who]
			before := 0
			if c.want != problem.CodeNotFound {
				before = dlqs.replays(t, tenant, c.dlq)
			}
			err := dlqs.Replay(ctx, tenant, c.dlq, s.Check(p, rbac.Replay))
			if got := code(err); got != c.want {
				t.Fatalf("replay: %s (%v), want %s", got, err, c.want)
			}
			if c.want == problem.CodeNotFound {
				return
			}
			after := dlqs.replays(t, tenant, c.dlq)
			if (c.want == "ok") != (after == before+1) {
				t.Fatalf("replays went from %d to %d", before, after)
			}
		})
	}
	// The same principal's check, on another tenant's object of the same
	// name: the load sees nothing (row-level security and the tenant
	// filter), and the check itself would say not found, never forbidden.
	if err := dlqs.Replay(ctx, tenant, "orders.dlq", s.Check(operator, rbac.Replay)); err != nil {
		t.Fatal(err)
	}
	if got := dlqs.replays(t, other, "orders.dlq"); got != 0 {
		t.Fatalf("another tenant's DLQ was replayed %d times", got)
	}
	err := s.Authorize(ctx, operator, rbac.Replay, access.Object{Tenant: other, Kind: "dlq", Name: "orders.dlq", Team: "payments"})
	if code(err) != problem.CodeNotFound {
		t.Fatalf("another tenant's object: %v, want not found", err)
	}
}

// Try answers an example request as Authorize would, before and after a
// candidate rule, and says which rules decided.
func TestTry_BeforeAndAfterACandidateRule(t *testing.T) {
	s, _, tenant, _ := newTenant(t)
	ctx := context.Background()
	req := rbac.Request{Role: tenancy.Operator, Teams: []string{"payments"}, Action: rbac.Replay, Kind: "dlq", Name: "orders.dlq",
		Team: "payments", Labels: map[string]string{"env": "prod"}}
	cand := &rbac.Rule{Role: tenancy.Operator, Resource: "dlq", Action: rbac.Replay, Effect: "deny", Condition: `label(r.obj, "env") == "prod"`}
	before, after, err := s.Try(ctx, tenant, cand, req)
	if err != nil {
		t.Fatal(err)
	}
	if !before.Allowed || after.Allowed {
		t.Fatalf("before %+v after %+v: want allowed, then denied", before, after)
	}
	if len(after.Because) != 1 || after.Because[0] != `deny operator replay dlq when the object's label "env" is "prod"` {
		t.Fatalf("after because %q", after.Because)
	}
	if len(before.Because) != 1 || before.Because[0] != "built in: allow operator replay dlq when the caller is in the object's owning team" {
		t.Fatalf("before because %q", before.Because)
	}
	// Staging is unaffected by the candidate.
	req.Labels = map[string]string{"env": "staging"}
	if _, after, err := s.Try(ctx, tenant, cand, req); err != nil || !after.Allowed {
		t.Fatalf("staging after the candidate: %+v, %v", after, err)
	}
	// Nothing was saved.
	rules, err := s.List(ctx, tenant)
	if err != nil || len(rules) != len(rbac.Builtin()) {
		t.Fatalf("%d rules after trying (%v), want only the built-in ones", len(rules), err)
	}
	// A bad candidate or request is refused, field by field.
	_, _, err = s.Try(ctx, tenant, &rbac.Rule{Role: "boss", Resource: "dlq", Action: "replay", Effect: "allow"}, req)
	if pe, ok := problem.As(err); !ok || pe.Fields["rule.role"] == "" {
		t.Fatalf("bad candidate: %v", err)
	}
	_, _, err = s.Try(ctx, tenant, nil, rbac.Request{Role: tenancy.Viewer, Action: "fly", Kind: "dlq"})
	if pe, ok := problem.As(err); !ok || pe.Fields["request.action"] == "" {
		t.Fatalf("bad request: %v", err)
	}
}
