// Package dbtest gives each test its own PostgreSQL database, cloned from a
// template that holds every migration. The template is built once per set of
// migrations (its name carries their hash) under an advisory lock, so test
// packages running in parallel share it safely.
//
// The server comes from SWITCHBOARD_TEST_DATABASE_URL, by default the
// machine's PostgreSQL at 127.0.0.1:5432 as user postgres. A test that cannot
// reach it fails; it never skips.
//
// Invariants:
//   - Tests run as the server does in production: every test database, and
//     the template it is cloned from, is owned by, migrated by and connected
//     to as Role, a login role that is neither a superuser nor BYPASSRLS
//     (a superuser skips row-level security, so a test run as one would
//     prove nothing about it). Every URL this package returns names Role.
//   - Only the admin connection (the URL above, a superuser) creates and
//     drops databases and roles; tests never receive it unless they ask
//     for SuperuserURL.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
	"switchboard/migrations"
)

// DefaultAdminURL is used when SWITCHBOARD_TEST_DATABASE_URL is not set.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Role is the login role tests own their databases as and connect as: LOGIN
// NOSUPERUSER NOBYPASSRLS CREATEROLE, the shape README asks of the server's
// own role, and a member of database.AppRole.
const Role = "switchboard_test"

// AdminURL returns the URL of the maintenance database tests connect to.
func AdminURL() string {
	if u := os.Getenv("SWITCHBOARD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// New creates a fresh migrated database for this test, opens a pool on it and
// drops both when the test ends.
func New(tb testing.TB) *database.DB {
	tb.Helper()
	dbURL := NewURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, dbURL)
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(db.Close) // runs before the drop registered by NewURL
	return db
}

// NewURL creates a fresh migrated database and returns its URL; the database
// is dropped when the test ends. Use it to hand a database to a subprocess.
func NewURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, true)
}

// NewEmptyURL is NewURL without the migrations: an empty database.
func NewEmptyURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, false)
}

func newDatabase(tb testing.TB, migrated bool) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		tb.Fatalf("connect to test PostgreSQL at %s: %v", AdminURL(), err)
	}
	defer admin.Close(ctx)

	if err := roleOnce.ensure(ctx, admin); err != nil {
		tb.Fatalf("create test role %s: %v", Role, err)
	}
	tmpl := "template0"
	if migrated {
		if tmpl, err = ensureTemplate(ctx, admin); err != nil {
			tb.Fatalf("build template database: %v", err)
		}
	}
	sweepOnce.Do(func() { sweepStale(ctx, admin) })
	name := newName()
	if err := createFrom(ctx, admin, name, tmpl); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	if migrated {
		// Database privileges are kept in the cluster-wide catalog, so the
		// clone did not inherit what migration 00006 revoked on the template.
		if err := revokeTemporary(ctx, admin, name); err != nil {
			tb.Fatalf("create test database: %v", err)
		}
	}
	return roleURL(name, Role)
}

// SuperuserURL returns dbURL (a URL from NewURL or NewEmptyURL) with the
// admin connection's credentials: for tests that show what a superuser
// connection can or cannot do. Everything else connects as Role.
func SuperuserURL(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return AdminURL()
	}
	return withDatabaseURL(AdminURL(), strings.TrimPrefix(u.Path, "/"))
}

// NewRole creates a login role for this test with the given extra
// attributes (e.g. "BYPASSRLS"; empty for a plain role) and returns dbURL
// connecting as it. The role is dropped when the test ends. Use it to show
// how the server treats a role other than Role.
func NewRole(tb testing.TB, dbURL, attributes string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		tb.Fatalf("connect to test PostgreSQL at %s: %v", AdminURL(), err)
	}
	defer admin.Close(ctx)
	role := newName()
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN "+attributes+passwordClause()); err != nil {
		tb.Fatalf("create role %s: %v", role, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			tb.Errorf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		dropRole(ctx, conn, role, tb.Errorf)
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("parse %q: %v", dbURL, err)
	}
	return roleURL(strings.TrimPrefix(u.Path, "/"), role)
}

// dropRole ends the role's sessions (pools a test forgot to close, which
// would block the drop) and drops it; its memberships go with it.
func dropRole(ctx context.Context, admin *pgx.Conn, role string, errorf func(string, ...any)) {
	_, _ = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
	if _, err := admin.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
		errorf("drop role %s: %v", role, err)
	}
}

// Test databases and roles are named sbtest_<creation time, base 36 unix
// seconds>_<random>, so ones left behind by a killed run can be recognised
// by age.
const testDBPrefix = "sbtest_"

func newName() string {
	return testDBPrefix + strconv.FormatInt(time.Now().Unix(), 36) + "_" + randomHex(4)
}

// roleSetup makes sure Role exists with the right attributes, once per
// process; a failure is retried by the next test.
type roleSetup struct {
	mu   sync.Mutex // guards done
	done bool
}

var roleOnce roleSetup

// ensure creates Role and database.AppRole if missing, (re)states Role's
// attributes, and makes Role a member of AppRole. Test processes run in
// parallel and CREATE ROLE is not idempotent, so all of it happens under an
// advisory lock. The admin grants the membership, rather than leaving it to
// migration 00001, because AppRole may have been created by another role.
func (r *roleSetup) ensure(ctx context.Context, admin *pgx.Conn) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	const lockKey = 7_341_829_002
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck // the session ends soon after

	role, app := pgx.Identifier{Role}.Sanitize(), pgx.Identifier{database.AppRole}.Sanitize()
	for _, q := range []string{
		`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + Role + `') THEN CREATE ROLE ` + role + `; END IF;
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + database.AppRole + `') THEN CREATE ROLE ` + app + ` NOLOGIN; END IF;
		END $$`,
		// Restated every time: a role left by someone else with more rights
		// would make the tests prove nothing.
		"ALTER ROLE " + role + " LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE" + passwordClause(),
		"GRANT " + app + " TO " + role,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			return err
		}
	}
	r.done = true
	return nil
}

// passwordClause gives test roles a password when the admin URL has one
// (the server then probably asks for passwords): one derived from it, so
// every test process sets the same. With trust authentication there is
// none to give.
func passwordClause() string {
	if p := rolePassword(); p != "" {
		return " PASSWORD '" + p + "'" // hex digits: nothing to escape
	}
	return " PASSWORD NULL"
}

func rolePassword() string {
	u, err := url.Parse(AdminURL())
	if err != nil || u.User == nil {
		return ""
	}
	p, ok := u.User.Password()
	if !ok || p == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("switchboard test role\x00" + p))
	return hex.EncodeToString(sum[:16])
}

// roleURL is the admin URL pointed at database name as role.
func roleURL(name, role string) string {
	u, err := url.Parse(withDatabaseURL(AdminURL(), name))
	if err != nil {
		return withDatabaseURL(AdminURL(), name)
	}
	if p := rolePassword(); p != "" {
		u.User = url.UserPassword(role, p)
	} else {
		u.User = url.User(role)
	}
	return u.String()
}

// revokeTemporary repeats on a cloned database what migration 00006 does on
// a migrated one: the app role may not create temporary tables.
func revokeTemporary(ctx context.Context, admin *pgx.Conn, name string) error {
	_, err := admin.Exec(ctx, "REVOKE TEMPORARY ON DATABASE "+pgx.Identifier{name}.Sanitize()+" FROM PUBLIC")
	return err
}

// staleAfter is the age past which no test run can still be using a
// database (the test timeout is far shorter).
const staleAfter = 6 * time.Hour

var sweepOnce sync.Once

// sweepStale drops test databases, then test roles, older than staleAfter:
// runs that were killed never reached their cleanups. Failures are ignored;
// the next run tries again.
func sweepStale(ctx context.Context, admin *pgx.Conn) {
	for _, q := range []struct{ list, drop string }{
		{"SELECT datname FROM pg_database WHERE starts_with(datname, $1)", "DROP DATABASE IF EXISTS %s WITH (FORCE)"},
		{"SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", "DROP ROLE IF EXISTS %s"},
	} {
		rows, err := admin.Query(ctx, q.list, testDBPrefix)
		if err != nil {
			return
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return
		}
		for _, name := range names {
			created, _, ok := strings.Cut(strings.TrimPrefix(name, testDBPrefix), "_")
			secs, err := strconv.ParseInt(created, 36, 64)
			if !ok || err != nil || time.Since(time.Unix(secs, 0)) < staleAfter {
				continue
			}
			_, _ = admin.Exec(ctx, fmt.Sprintf(q.drop, pgx.Identifier{name}.Sanitize()))
		}
	}
}

// createFrom creates database name, owned by Role, as a copy of tmpl.
func createFrom(ctx context.Context, admin *pgx.Conn, name, tmpl string) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
			" OWNER "+pgx.Identifier{Role}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
		// Another process may be cloning the template at this instant.
		if err == nil || !strings.Contains(err.Error(), "is being accessed by other users") {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// ensureTemplate returns the name of the migrated template, building it if
// this set of migrations has none yet.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	tmpl := "sbtmpl_" + sum
	// One builder at a time across all test processes.
	const lockKey = 7_341_829_001
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck // the session ends right after

	var ready bool
	err = admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", tmpl).Scan(&ready)
	if err != nil || ready {
		return tmpl, err
	}
	// A half-built template from an interrupted run is rebuilt.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{tmpl}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{tmpl}.Sanitize()+" OWNER "+pgx.Identifier{Role}.Sanitize()); err != nil {
		return "", err
	}
	// Migrated as Role, so Role owns every object, as the server's role does.
	db, err := database.Open(ctx, roleURL(tmpl, Role))
	if err != nil {
		return "", err
	}
	err = database.Migrate(ctx, db.Pool)
	db.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{tmpl}.Sanitize()+" WITH IS_TEMPLATE true"); err != nil {
		return "", err
	}
	return tmpl, nil
}

func migrationsHash() (string, error) {
	entries, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return "", err
	}
	sort.Strings(entries)
	h := sha256.New()
	// Templates built before tests ran as Role belong to another owner.
	fmt.Fprintf(h, "owner %s\n", Role)
	for _, name := range entries {
		b, err := migrations.FS.ReadFile(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n%d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func withDatabaseURL(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
