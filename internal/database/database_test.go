package database_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func seedTwoTenants(t *testing.T, db *database.DB) (a, b uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []*uuid.UUID{&a, &b} {
		if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ($1, 'x') RETURNING id`, "t-"+uuid.NewString()[:8]).Scan(id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO teams (tenant_id, slug, name) VALUES ($1, 'core', 'Core')`, *id); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func countTeams(t *testing.T, db *database.DB, tenant uuid.UUID) int {
	t.Helper()
	n := 0
	// Deliberately no tenant_id filter: only row-level security limits it.
	err := db.ReadTenant(context.Background(), tenant, `SELECT count(*) FROM teams`, nil, func(r pgx.Rows) error { return r.Scan(&n) })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRLS_TenantSeesOnlyItsRows(t *testing.T) {
	db := dbtest.New(t)
	a, b := seedTwoTenants(t, db)
	if n := countTeams(t, db, a); n != 1 {
		t.Fatalf("tenant a sees %d teams, want 1", n)
	}
	if n := countTeams(t, db, b); n != 1 {
		t.Fatalf("tenant b sees %d teams, want 1", n)
	}
}

func TestRLS_NoTenantSettingSeesNothing(t *testing.T) {
	db := dbtest.New(t)
	seedTwoTenants(t, db)
	ctx := context.Background()
	// As the connecting role, which owns the table, the rows are there...
	var all int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM teams`).Scan(&all); err != nil || all != 2 {
		t.Fatalf("owner count = %d, %v; want 2", all, err)
	}
	// ...but under the app role without app.tenant_id, nothing is visible.
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+database.AppRole); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM teams`).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("app role without tenant setting sees %d teams, want 0", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRLS_CannotWriteIntoAnotherTenant(t *testing.T) {
	db := dbtest.New(t)
	a, b := seedTwoTenants(t, db)
	err := db.InTenant(context.Background(), a, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO teams (tenant_id, slug, name) VALUES ($1, 'evil', 'Evil')`, b)
		return err
	})
	if err == nil {
		t.Fatal("insert into another tenant succeeded under RLS")
	}
	if n := countTeams(t, db, b); n != 1 {
		t.Fatalf("tenant b has %d teams after the rejected insert, want 1", n)
	}
}

func TestReadTenant_SettingDoesNotLeakToNextUse(t *testing.T) {
	db := dbtest.New(t)
	a, _ := seedTwoTenants(t, db)
	countTeams(t, db, a)
	ctx := context.Background()
	// Every pooled connection must be back to the connecting role.
	for i := 0; i < 4; i++ {
		var role, tenant string
		if err := db.Pool.QueryRow(ctx, `SELECT current_user, coalesce(current_setting('app.tenant_id', true), '')`).Scan(&role, &tenant); err != nil {
			t.Fatal(err)
		}
		if role == database.AppRole || tenant != "" {
			t.Fatalf("pooled connection kept role %q tenant %q", role, tenant)
		}
	}
}
