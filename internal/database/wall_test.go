package database_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
)

// The tests here prove the second wall under the role the server really
// connects as. The first one shows that role is not one that skips
// row-level security; without it the others could pass for the wrong
// reason.

func TestConnectingRole_IsNeitherSuperuserNorBypassRLS(t *testing.T) {
	db := dbtest.New(t)
	var login, owner string
	var super, bypass bool
	err := db.Pool.QueryRow(context.Background(), `SELECT session_user::text, r.rolsuper, r.rolbypassrls, pg_get_userbyid(d.datdba)::text
		FROM pg_roles r, pg_database d WHERE r.rolname = session_user AND d.datname = current_database()`).Scan(&login, &super, &bypass, &owner)
	if err != nil {
		t.Fatal(err)
	}
	if login != dbtest.Role || super || bypass {
		t.Fatalf("connected as %q (superuser %v, bypassrls %v), want %q with neither", login, super, bypass, dbtest.Role)
	}
	if owner != dbtest.Role {
		t.Fatalf("test database owned by %q, want %q", owner, dbtest.Role)
	}
}

// seedUsers makes tenants a and b and four users: one member of each, one
// of both, one of neither. It returns the tenants and every email.
func seedUsers(t *testing.T, db *database.DB) (a, b uuid.UUID, onlyA, onlyB, both, none string) {
	t.Helper()
	ctx := context.Background()
	a, b = seedTwoTenants(t, db)
	suffix := uuid.NewString()[:8] + "@example.test"
	onlyA, onlyB, both, none = "a-"+suffix, "b-"+suffix, "ab-"+suffix, "none-"+suffix
	members := map[string][]uuid.UUID{onlyA: {a}, onlyB: {b}, both: {a, b}, none: nil}
	for email, tenants := range members {
		var id uuid.UUID
		if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email, name, password_hash) VALUES ($1, 'x', 'not a hash') RETURNING id`, email).Scan(&id); err != nil {
			t.Fatal(err)
		}
		for _, tenant := range tenants {
			if _, err := db.Pool.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'viewer')`, tenant, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	return a, b, onlyA, onlyB, both, none
}

// emailsIn runs query (which returns emails) scoped to tenant.
func emailsIn(t *testing.T, db *database.DB, tenant uuid.UUID, query string) []string {
	t.Helper()
	var out []string
	err := db.ReadTenant(context.Background(), tenant, query, nil, func(r pgx.Rows) error {
		var e string
		err := r.Scan(&e)
		out = append(out, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestRLS_TenantSeesOnlyItsOwnUsers(t *testing.T) {
	db := dbtest.New(t)
	a, b, onlyA, onlyB, both, _ := seedUsers(t, db)

	var all int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&all); err != nil || all != 4 {
		t.Fatalf("unscoped count = %d, %v; want 4", all, err)
	}
	for _, c := range []struct {
		tenant uuid.UUID
		want   []string
	}{
		{a, []string{onlyA, both}},
		{b, []string{onlyB, both}},
	} {
		want := slices.Sorted(slices.Values(c.want))
		// Deliberately unfiltered: only row-level security limits it.
		if got := emailsIn(t, db, c.tenant, `SELECT email FROM users`); !slices.Equal(got, want) {
			t.Errorf("tenant %s sees users %v, want %v", c.tenant, got, want)
		}
		// The member list's join keeps working under the policy.
		if got := emailsIn(t, db, c.tenant, `SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id`); !slices.Equal(got, want) {
			t.Errorf("tenant %s member join gives %v, want %v", c.tenant, got, want)
		}
	}
}

func TestRLS_NoTenantSettingSeesNoUsers(t *testing.T) {
	db := dbtest.New(t)
	seedUsers(t, db)
	ctx := context.Background()
	for _, scope := range []string{
		`SELECT set_config('role', '` + database.AppRole + `', true)`,
		`SELECT set_config('role', '` + database.AppRole + `', true), set_config('app.tenant_id', '', true)`,
	} {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, scope); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				t.Errorf("app role after %q sees %d users, want 0", scope, n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func isPermissionDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

func TestAuditLog_AppendOnlyForAppRole(t *testing.T) {
	db := dbtest.New(t)
	a, _ := seedTwoTenants(t, db)
	ctx := context.Background()

	err := db.InTenant(ctx, a, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit_log (tenant_id, actor, action, object_kind, object_id) VALUES ($1, 'me', 'team.created', 'team', 'core')`, a)
		return err
	})
	if err != nil {
		t.Fatalf("app role appends an audit entry: %v", err)
	}
	for _, stmt := range []string{
		`UPDATE audit_log SET action = 'rewritten' WHERE tenant_id = $1`,
		`DELETE FROM audit_log WHERE tenant_id = $1`,
	} {
		err := db.InTenant(ctx, a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, stmt, a)
			return err
		})
		if !isPermissionDenied(err) {
			t.Errorf("%s as the app role: %v, want permission denied", stmt, err)
		}
	}
	var n int
	err = db.ReadTenant(ctx, a, `SELECT count(*) FROM audit_log WHERE action = 'team.created'`, nil, func(r pgx.Rows) error { return r.Scan(&n) })
	if err != nil || n != 1 {
		t.Fatalf("app role reads %d untouched entries (%v), want 1", n, err)
	}

	// Removing a tenant, which the owner does, still takes its log along.
	if _, err := db.Pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, a); err != nil {
		t.Fatalf("delete tenant: %v", err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE tenant_id = $1`, a).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d audit entries (%v) left after the tenant was deleted, want 0", n, err)
	}
}

// A temporary table made by the app role would shadow public tables for the
// owner's next queries on the same pooled connection.
func TestAppRole_CannotCreateTemporaryTables(t *testing.T) {
	ctx := context.Background()
	migrated := dbtest.NewEmptyURL(t)
	db, err := database.Open(ctx, migrated)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := database.Migrate(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string]*database.DB{"migrated in place": db, "cloned from the template": dbtest.New(t)} {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if err := database.Scope(ctx, tx, uuid.New()); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE users (id uuid, email text)`)
			return err
		})
		if !isPermissionDenied(err) {
			t.Errorf("%s: app role creates a temporary table: %v, want permission denied", name, err)
		}
	}
}

func openAs(t *testing.T, dbURL string) *database.DB {
	t.Helper()
	db, err := database.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func roleOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || u.User == nil {
		t.Fatalf("no role in %q (%v)", dbURL, err)
	}
	return u.User.Username()
}

func TestCheckRole_AcceptsTheTestRole(t *testing.T) {
	db := dbtest.New(t)
	if err := db.CheckRole(context.Background(), false); err != nil {
		t.Fatalf("CheckRole as %s: %v", dbtest.Role, err)
	}
}

func TestCheckRole_RefusesRolesThatBypassRLS(t *testing.T) {
	dbURL := dbtest.NewURL(t)
	bypass := dbtest.NewRole(t, dbURL, "BYPASSRLS")
	memberOfBypass := dbtest.NewRole(t, dbURL, "IN ROLE "+pgx.Identifier{roleOf(t, bypass)}.Sanitize())
	cases := []struct {
		name, url string
		says      []string
	}{
		{"superuser", dbtest.SuperuserURL(dbURL), []string{"is a superuser"}},
		{"bypassrls", bypass, []string{"has BYPASSRLS"}},
		{"member of a bypassrls role", memberOfBypass, []string{"can SET ROLE to " + `"` + roleOf(t, bypass) + `"`, "BYPASSRLS"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openAs(t, c.url)
			err := db.CheckRole(context.Background(), false)
			if !errors.Is(err, database.ErrPrivilegedRole) {
				t.Fatalf("CheckRole as %s: %v, want ErrPrivilegedRole", roleOf(t, c.url), err)
			}
			// The message must tell the operator both ways out.
			for _, s := range append(c.says, `"`+roleOf(t, c.url)+`"`, database.AllowSuperuserSetting, "CREATE ROLE switchboard LOGIN", "NOSUPERUSER NOBYPASSRLS CREATEROLE") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("CheckRole error %q does not say %q", err, s)
				}
			}
			if err := db.CheckRole(context.Background(), true); err != nil {
				t.Errorf("CheckRole with the override: %v", err)
			}
		})
	}
}
