// Package dbtest gives each test its own PostgreSQL database, cloned from a
// template that holds every migration. The template is built once per set of
// migrations (its name carries their hash) under an advisory lock, so test
// packages running in parallel share it safely.
//
// The server comes from SWITCHBOARD_TEST_DATABASE_URL, by default the
// machine's PostgreSQL at 127.0.0.1:5432 as user postgres. A test that cannot
// reach it fails; it never skips.
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

	tmpl := "template0"
	if migrated {
		if tmpl, err = ensureTemplate(ctx, admin); err != nil {
			tb.Fatalf("build template database: %v", err)
		}
	}
	sweepOnce.Do(func() { sweepStale(ctx, admin) })
	name := testDBPrefix + strconv.FormatInt(time.Now().Unix(), 36) + "_" + randomHex(4)
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
	return withDatabaseURL(AdminURL(), name)
}

// Test databases are named sbtest_<creation time, base 36 unix seconds>_<random>,
// so ones left behind by a killed run can be recognised by age.
const testDBPrefix = "sbtest_"

// staleAfter is the age past which no test run can still be using a
// database (the test timeout is far shorter).
const staleAfter = 6 * time.Hour

var sweepOnce sync.Once

// sweepStale drops test databases older than staleAfter: runs that were
// killed never reached their cleanups. Failures are ignored; the next run
// tries again.
func sweepStale(ctx context.Context, admin *pgx.Conn) {
	rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", testDBPrefix)
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
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

func createFrom(ctx context.Context, admin *pgx.Conn, name, tmpl string) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
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
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		return "", err
	}
	db, err := database.Open(ctx, withDatabaseURL(AdminURL(), tmpl))
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
