package dbtest

import (
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"switchboard/internal/database"
	"switchboard/migrations"
)

// NewAt returns a database migrated up to version (included) and a function
// that applies the migrations after it: for a test of a migration over data
// of the schema before it. Both close with the test.
func NewAt(tb testing.TB, version int64) (db *database.DB, migrateRest func()) {
	tb.Helper()
	db, err := database.Open(tb.Context(), NewEmptyURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	tb.Cleanup(func() { _ = sqlDB.Close() }) // closes the wrapper only; the pool closes above
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := p.UpTo(tb.Context(), version); err != nil {
		tb.Fatal(err)
	}
	return db, func() {
		tb.Helper()
		if _, err := p.Up(tb.Context()); err != nil {
			tb.Fatal(err)
		}
	}
}
