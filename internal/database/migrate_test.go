package database_test

import (
	"context"
	"sync"
	"testing"

	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
)

// Servers starting together all run Migrate; each migration must apply once.
func TestMigrate_ConcurrentServersApplyEachMigrationOnce(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewEmptyURL(t)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			db, err := database.Open(ctx, dbURL)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = database.Migrate(ctx, db.Pool)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
	}
	db, err := database.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dup int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT version_id FROM goose_db_version WHERE is_applied GROUP BY version_id HAVING count(*) > 1) d`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Fatalf("%d migrations recorded more than once", dup)
	}
	var teams bool
	if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('public.teams') IS NOT NULL`).Scan(&teams); err != nil || !teams {
		t.Fatalf("teams table missing after migration (%v)", err)
	}
}
