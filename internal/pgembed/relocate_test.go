package pgembed

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
)

// openUp makes dirs mode 0755, so that a user other than the test's can
// pass through them (t.TempDir makes its directories 0700).
func openUp(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// privateDir returns a new directory only its owner can enter, like a home
// directory or a `mktemp -d` folder.
func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stateParent returns a directory anyone can pass through, to hold the state
// roots a test gives Start (tests must not write under /var/lib).
func stateParent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	openUp(t, dir, filepath.Dir(dir))
	return dir
}

func TestResolveDataDir(t *testing.T) {
	// Neither the test's user nor root: the private dirs are closed to it.
	stranger := &account{name: "someone", uid: 54321, gid: 54321}
	private := privateDir(t)
	unreachable := filepath.Join(private, "clone", ".switchboard", "postgres")
	parent := stateParent(t)
	good := filepath.Join(parent, "state", "switchboard") // made by resolveDataDir
	open := filepath.Join(parent, "open")                 // others may write here
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil { // whatever the umask
		t.Fatal(err)
	}

	t.Run("not root: the configured dir, whatever it is", func(t *testing.T) {
		got, why, err := resolveDataDir(unreachable, nil, []string{good})
		if err != nil || why != nil || got != unreachable {
			t.Fatalf("= %q, %v, %v; want %q unchanged", got, why, err, unreachable)
		}
	})
	t.Run("reachable: the configured dir", func(t *testing.T) {
		reachable := filepath.Join(parent, "clone", "postgres")
		got, why, err := resolveDataDir(reachable, stranger, []string{good})
		if err != nil || why != nil || got != reachable {
			t.Fatalf("= %q, %v, %v; want %q unchanged", got, why, err, reachable)
		}
	})
	t.Run("unreachable: a private dir under the first usable root, the same each time", func(t *testing.T) {
		got, why, err := resolveDataDir(unreachable, stranger, []string{open, good})
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(got) != good || !strings.HasPrefix(filepath.Base(got), "pgdata-") {
			t.Errorf("moved to %q, want a pgdata-… dir in %s (not in %s, which others may write)", got, good, open)
		}
		if why == nil || !strings.Contains(why.Error(), private) {
			t.Errorf("reason %v does not name the closed dir %s", why, private)
		}
		fi, err := os.Stat(good)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("state root %s: %v, mode %v; want it made 0755", good, err, fi.Mode().Perm())
		}
		again, _, err := resolveDataDir(unreachable, stranger, []string{good})
		if err != nil || again != got {
			t.Errorf("second time: %q, %v; want the same %q", again, err, got)
		}
		other, _, err := resolveDataDir(filepath.Join(private, "other", "postgres"), stranger, []string{good})
		if err != nil || other == got {
			t.Errorf("another configured dir: %q, %v; want a dir of its own", other, err)
		}
	})
	t.Run("no usable root: an error naming both problems", func(t *testing.T) {
		_, _, err := resolveDataDir(unreachable, stranger, []string{open})
		if err == nil || !strings.Contains(err.Error(), private) || !strings.Contains(err.Error(), open) {
			t.Fatalf("error %v, want one naming %s and %s", err, private, open)
		}
	})
}

// syncBuffer collects log output; the server's wait goroutine may log too.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// make run from a clone in a folder only its owner can enter: as root the
// postgres user cannot reach the configured dir, so the cluster moves to a
// private dir, the log says where, and the next start finds it again.
func TestStart_UnreachableDataDirMovesToPrivateDir(t *testing.T) {
	t.Parallel()
	configured := filepath.Join(privateDir(t), "clone", ".switchboard", "postgres")
	if err := os.MkdirAll(filepath.Dir(configured), 0o755); err != nil { // as cmd/server does
		t.Fatal(err)
	}
	roots := []string{filepath.Join(stateParent(t), "switchboard")}

	start := func() (*Server, string) {
		t.Helper()
		var logs syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		log := slog.New(slog.NewTextHandler(&logs, nil))
		s, err := Start(ctx, Config{DataDir: configured, Logger: log, stateRoots: roots})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
		t.Logf("log:\n%s", logs.String())
		return s, logs.String()
	}

	s, logs := start()
	if os.Geteuid() == 0 {
		if filepath.Dir(s.DataDir()) != roots[0] {
			t.Fatalf("DataDir() = %q, want a private dir in %s", s.DataDir(), roots[0])
		}
		if !strings.Contains(logs, s.DataDir()) || !strings.Contains(logs, configured) {
			t.Errorf("log does not name both %s and %s:\n%s", s.DataDir(), configured, logs)
		}
		fi, err := os.Stat(s.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		acct, err := runAccount()
		if err != nil {
			t.Fatal(err)
		}
		if uid, _, _ := fileOwner(fi); uid != acct.uid || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir owner %d mode %v, want %d (postgres) and 0700", uid, fi.Mode().Perm(), acct.uid)
		}
		if _, err := os.Stat(configured); !os.IsNotExist(err) {
			t.Errorf("configured dir %s: %v, want it left alone", configured, err)
		}
	} else if s.DataDir() != configured {
		// Not root: PostgreSQL runs as us, and we can enter our own folder.
		t.Fatalf("DataDir() = %q, want the configured %q", s.DataDir(), configured)
	}
	if !strings.Contains(logs, "data_dir="+s.DataDir()) {
		t.Errorf("ready log does not say data_dir=%s:\n%s", s.DataDir(), logs)
	}
	conn := connect(t, s)
	execSQL(t, conn, `CREATE TABLE kept (v text NOT NULL)`)
	execSQL(t, conn, `INSERT INTO kept VALUES ('found again')`)
	if err := conn.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	s2, _ := start()
	if s2.DataDir() != s.DataDir() {
		t.Fatalf("restart uses %q, want the same %q", s2.DataDir(), s.DataDir())
	}
	if got := queryString(t, connect(t, s2), `SELECT v FROM kept`); got != "found again" {
		t.Errorf("after restart: %q", got)
	}
}

func openDB(t *testing.T, url string) *database.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return db
}

// An earlier version connected as the superuser, so the database and every
// table in it belong to postgres. Start hands them to the application's role,
// which then passes CheckRole, migrates and works under row-level security.
func TestStart_TakesOverAClusterOfAnEarlierVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := newDataDir(t)
	s := startServer(t, dataDir)

	// Turn it into what the earlier version left behind.
	super := openDB(t, s.connString(superuser, "postgres"))
	for _, q := range []string{
		"ALTER DATABASE " + dbName + " OWNER TO " + superuser,
		"DROP ROLE " + appRole,
	} {
		if _, err := super.Pool.Exec(ctx, q); err != nil {
			super.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	super.Close()
	old := openDB(t, s.connString(superuser, dbName))
	if err := database.Migrate(ctx, old.Pool); err != nil {
		old.Close()
		t.Fatalf("migrate as the superuser: %v", err)
	}
	var tenant uuid.UUID
	err := old.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant)
	if err == nil { // a partition, as the span store creates them
		_, err = old.Pool.Exec(ctx, `CREATE TABLE spans_old PARTITION OF spans FOR VALUES FROM ('2026-01-01') TO ('2026-01-02')`)
	}
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s2 := startServer(t, dataDir)
	db := openDB(t, s2.URL())
	defer db.Close()
	if err := db.CheckRole(ctx, false); err != nil {
		t.Fatalf("CheckRole on the embedded URL: %v", err)
	}
	if err := database.Migrate(ctx, db.Pool); err != nil {
		t.Fatalf("migrate as %s: %v", appRole, err)
	}
	var others []string
	rows, err := db.Pool.Query(ctx, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
		UNION ALL SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public' AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)`)
	if err == nil {
		others, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(others) != 0 {
		t.Fatalf("objects still owned by another role: %v (%v)", others, err)
	}
	err = db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO teams (tenant_id, slug, name) VALUES ($1, 'core', 'Core')`, tenant)
		return err
	})
	if err != nil {
		t.Fatalf("scoped write after the takeover: %v", err)
	}
	var slug string
	if err := db.Pool.QueryRow(ctx, `SELECT slug FROM tenants WHERE id = $1`, tenant).Scan(&slug); err != nil || slug != "acme" {
		t.Fatalf("the earlier version's data: %q, %v", slug, err)
	}
}
