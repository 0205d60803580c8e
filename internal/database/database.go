package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"switchboard/migrations"
)

// AppRole is the unprivileged role that tenant-scoped transactions assume.
const AppRole = "switchboard_app"

// DB is the shared pool plus the helpers that scope work to a tenant.
type DB struct {
	Pool   *pgxpool.Pool
	tracer *queryTracer
}

// Open connects to url and checks the connection.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	qt := &queryTracer{}
	cfg.ConnConfig.Tracer = qt
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{Pool: pool, tracer: qt}, nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Migrate applies every pending migration, holding an advisory lock so that
// concurrent servers do not race.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	return migrate(ctx, sqlDB)
}

func migrate(ctx context.Context, sqlDB *sql.DB) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// scopeSQL switches the transaction to the app role and sets the tenant; both
// settings end with the transaction.
const scopeSQL = `SELECT set_config('role', '` + AppRole + `', true), set_config('app.tenant_id', $1, true)`

// InTenant runs fn in a transaction scoped to tenant: row-level security is in
// force and sees only that tenant's rows. The transaction commits when fn
// returns nil.
func (db *DB) InTenant(ctx context.Context, tenant uuid.UUID, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := Scope(ctx, tx, tenant); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Scope switches tx to the app role and tenant for the rest of the
// transaction. Work that must touch global tables first (creating an invited
// user, say) does so and then calls Scope.
func Scope(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
	if _, err := tx.Exec(ctx, scopeSQL, tenant.String()); err != nil {
		return fmt.Errorf("scope transaction to tenant: %w", err)
	}
	return nil
}

// ReadTenant runs one read-only query scoped to tenant in a single round
// trip: the scope and the query travel in one pipeline, which PostgreSQL runs
// as one implicit transaction, so the transaction-local settings apply to the
// query and vanish after it. scan is called for each row.
func (db *DB) ReadTenant(ctx context.Context, tenant uuid.UUID, query string, args []any, scan func(pgx.Rows) error) error {
	return db.RunScoped(ctx, scopeSQL, tenant, query, args, scan)
}

// RunScoped is ReadTenant with the caller's scope statement: scope takes the
// tenant id as $1 and must switch to AppRole and set app.tenant_id with
// set_config(..., true), and may set more transaction-local settings. The
// implicit transaction commits at the end, so it serves single writes too.
func (db *DB) RunScoped(ctx context.Context, scope string, tenant uuid.UUID, query string, args []any, scan func(pgx.Rows) error) error {
	return db.runScoped(ctx, scope, tenant, []Query{{SQL: query, Args: args, Scan: scan}})
}

// Query is one statement of ReadTenantAll, with what reads its rows.
type Query struct {
	SQL  string
	Args []any
	Scan func(pgx.Rows) error // called for each row
}

// ReadTenantAll runs read-only queries scoped to tenant in a single round
// trip, as one implicit transaction. Under READ COMMITTED each query sees
// what was committed when it started, not one snapshot: what must agree
// belongs in one statement.
func (db *DB) ReadTenantAll(ctx context.Context, tenant uuid.UUID, qs ...Query) error {
	return db.runScoped(ctx, scopeSQL, tenant, qs)
}

func (db *DB) runScoped(ctx context.Context, scope string, tenant uuid.UUID, qs []Query) error {
	b := &pgx.Batch{}
	b.Queue(scope, tenant.String())
	for _, q := range qs {
		b.Queue(q.SQL, q.Args...)
	}
	br := db.Pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return fmt.Errorf("scope read to tenant: %w", err)
	}
	for _, q := range qs {
		if err := readAll(br, q.Scan); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

func readAll(br pgx.BatchResults, scan func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	rows.Close()
	return rows.Err()
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
