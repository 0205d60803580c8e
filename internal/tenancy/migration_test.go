package tenancy_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// identityMigration is the migration that brought invitations.
const identityMigration = 7

// TestMigration_InvitedUsersBecomeInvitations runs the identity migration
// over data of the previous schema: users who were only invited (no
// password) become invitations, so nobody can claim them by signing up
// first; everyone else stays, unverified, with their memberships.
func TestMigration_InvitedUsersBecomeInvitations(t *testing.T) {
	ctx := t.Context()
	db, migrateRest := dbtest.NewAt(t, identityMigration-1)

	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	ada, inv, acme := uuid.New(), uuid.New(), uuid.New()
	exec(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'ada@example.com', 'Ada', '$argon2id$x')`, ada)
	exec(`INSERT INTO users (id, email, name) VALUES ($1, 'Carol@Example.com', 'carol')`, inv) // invited, never signed up
	exec(`INSERT INTO tenants (id, slug, name) VALUES ($1, 'acme', 'Acme')`, acme)
	exec(`INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner'), ($1, $3, 'admin')`, acme, ada, inv)
	exec(`INSERT INTO teams (tenant_id, slug, name) VALUES ($1, 'core', 'Core')`, acme)
	exec(`INSERT INTO team_members (tenant_id, team_id, user_id) SELECT $1, id, $2 FROM teams WHERE tenant_id = $1`, acme, inv)

	migrateRest()

	s := tenancy.New(db)
	var users int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users); err != nil || users != 1 {
		t.Fatalf("%d users (%v), want only ada", users, err)
	}
	u, err := s.User(ctx, ada)
	if err != nil || u.EmailVerified {
		t.Fatalf("ada %+v %v: want kept, unverified", u, err)
	}
	if m, err := s.Membership(ctx, ada, "acme"); err != nil || m.Role != tenancy.Owner {
		t.Fatalf("ada's membership %+v %v", m, err)
	}
	invs, _, err := s.ListInvitations(ctx, acme, "", 10)
	if err != nil || len(invs) != 1 || invs[0].Email != "carol@example.com" || invs[0].Role != tenancy.Admin {
		t.Fatalf("invitations %+v %v: want carol as admin", invs, err)
	}
	if _, err := s.Membership(ctx, inv, "acme"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("the invited user's membership survived: %v", err)
	}
	var audited int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'member.invited' AND object_id = 'carol@example.com'`, acme).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("%d audit rows (%v) for the conversion, want 1", audited, err)
	}
	// A password is required from now on.
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO users (email, name) VALUES ('x@example.com', 'x')`); err == nil {
		t.Fatal("a user without a password was created")
	}
}
