package pgembed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// helperEnv, when set, makes the test binary a stand-in Go server: it starts
// PostgreSQL on the data dir named by the variable, prints the postmaster's
// pid and socket dir and waits to be killed (see TestServer_StopsWhenParentDies).
const helperEnv = "PGEMBED_TEST_HELPER_DATADIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(runHelper(dir))
	}
	goleak.VerifyTestMain(m)
}

func runHelper(dataDir string) int {
	s, err := Start(context.Background(), Config{DataDir: dataDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d %s\n", s.cmd.Process.Pid, s.sockDir)
	// Block until the parent kills us or closes stdin; either way exit
	// without Stop, as a crashed server would.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 2
}

// newDataDir returns a path for a cluster that does not exist yet, inside
// a test temp dir. t.TempDir makes its directories 0700; when the tests
// run as root PostgreSQL runs as user postgres, which must reach the
// cluster, so they are opened to 0755.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "pgdata")
}

// startServer starts a server on dataDir and stops it when the test ends.
func startServer(t *testing.T, dataDir string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, Config{DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// connect opens a connection on s.URL(), as the application would.
func connect(t *testing.T, s *Server) *pgx.Conn {
	t.Helper()
	return connectTo(t, s.URL())
}

// connectAs opens a connection to database switchboard as role user.
func connectAs(t *testing.T, s *Server, user string) *pgx.Conn {
	t.Helper()
	return connectTo(t, s.connString(user, dbName))
}

func connectTo(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() {
		// After Stop the session is gone and Close may report it; that
		// is not what these tests check.
		_ = conn.Close(context.Background())
	})
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v string
	if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func execSQL(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestStart_PersistsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)

	s := startServer(t, dataDir)
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatalf("URL %q: %v", s.URL(), err)
	}
	host := u.Query().Get("host")
	if !strings.HasPrefix(host, "/tmp/") || len(host+socketFileName) > maxSocketPath {
		t.Errorf("socket dir %q: want a short dir under /tmp", host)
	}
	if s.DataDir() != dataDir {
		t.Errorf("DataDir() = %q, want the configured %q", s.DataDir(), dataDir)
	}
	conn := connect(t, s)
	for sql, want := range map[string]string{
		"SELECT current_database()": "switchboard",
		"SELECT current_user":       appRole,
		// The application's role must be one row-level security applies to.
		"SELECT (rolsuper OR rolbypassrls)::text FROM pg_roles WHERE rolname = current_user":       "false",
		"SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()": appRole,
		"SHOW fsync":            "on",
		"SHOW listen_addresses": "",
		"SHOW server_encoding":  "UTF8",
	} {
		if got := queryString(t, conn, sql); got != want {
			t.Errorf("%s = %q, want %q", sql, got, want)
		}
	}
	// Only a superuser may read this setting, which is as it should be.
	super := connectAs(t, s, superuser)
	if got := queryString(t, super, "SHOW unix_socket_directories"); got != host {
		t.Errorf("unix_socket_directories = %q, want %q", got, host)
	}
	if err := super.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	execSQL(t, conn, `CREATE TABLE kept (v text NOT NULL)`)
	execSQL(t, conn, `INSERT INTO kept VALUES ('survives a restart')`)
	if err := conn.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(host); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir %s after Stop: %v, want it removed", host, err)
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		uid, _, _ := fileOwner(fi)
		acct, err := runAccount()
		if err != nil {
			t.Fatal(err)
		}
		if uid != acct.uid || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir owner %d mode %v, want %d (postgres) and 0700", uid, fi.Mode().Perm(), acct.uid)
		}
	}

	s2 := startServer(t, dataDir)
	if s2.URL() == s.URL() {
		t.Errorf("restart reused socket dir %s", s.URL())
	}
	conn2 := connect(t, s2)
	if got := queryString(t, conn2, `SELECT v FROM kept`); got != "survives a restart" {
		t.Errorf("after restart: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "log", "postgres.log")); err != nil {
		t.Errorf("server log: %v", err)
	}
}

func TestStart_SecondServerOnSameDataDirFails(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)
	first := startServer(t, dataDir)

	// A generous deadline: the error must come from the second postmaster
	// exiting, not from the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second, err := Start(ctx, Config{DataDir: dataDir})
	if err == nil {
		second.Stop()
		t.Fatal("second Start on a running data dir succeeded")
	}
	t.Logf("second Start: %v", err)
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("second Start hung until its deadline: %v", err)
	}
	if !strings.Contains(err.Error(), "postmaster.pid") {
		t.Errorf("error %q does not name the lock file postmaster.pid", err)
	}

	conn := connect(t, first)
	if got := queryString(t, conn, "SELECT 'still serving'"); got != "still serving" {
		t.Errorf("first server after the failed second start: %q", got)
	}
}

func TestStart_RequiresDataDir(t *testing.T) {
	if _, err := Start(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Fatalf("Start without DataDir: %v, want an error naming DataDir", err)
	}
}

func TestStart_RejectsDirThatIsNotACluster(t *testing.T) {
	dir := newDataDir(t)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Config{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "PG_VERSION") {
		t.Fatalf("Start on a non-empty non-cluster dir: %v, want an error about PG_VERSION", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("the user's file: %v", err)
	}
}

func TestCanSearch(t *testing.T) {
	dir := t.TempDir()
	fi0, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	owner, group, ok := fileOwner(fi0)
	if !ok {
		t.Fatal("no owner information on this system")
	}
	const stranger = 54321 // neither owner nor group of dir
	cases := []struct {
		name string
		mode os.FileMode
		acct account
		want bool
	}{
		{"owner with u+x", 0o700, account{uid: owner, gid: stranger}, true},
		{"owner without u+x, others x", 0o601, account{uid: owner, gid: stranger}, false},
		{"group with g+x", 0o710, account{uid: stranger, gid: group}, true},
		{"other with o+x", 0o711, account{uid: stranger, gid: stranger}, true},
		{"other without o+x", 0o770, account{uid: stranger, gid: stranger}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.Chmod(dir, c.mode); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := canSearch(fi, &c.acct); got != c.want {
				t.Errorf("canSearch(mode %v) = %v, want %v", c.mode, got, c.want)
			}
		})
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err = checkTraversable(filepath.Join(dir, "sub"), &account{name: "someone", uid: stranger, gid: stranger})
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("checkTraversable below a 0700 dir: %v, want an error naming %s", err, dir)
	}
}

func TestLastLines(t *testing.T) {
	got := lastLines("a\n\nb\nc\nd\n", 3)
	if want := "    b\n    c\n    d"; got != want {
		t.Errorf("lastLines = %q, want %q", got, want)
	}
}

func TestPrepareDataDir_UnreachableParentLeavesNothing(t *testing.T) {
	private := t.TempDir() // owned by whoever runs the tests
	if err := os.Chmod(filepath.Dir(private), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	stranger := &account{name: "someone", uid: 54321, gid: 54321}
	_, err := prepareDataDir(filepath.Join(private, "a", "pgdata"), stranger)
	if err == nil || !strings.Contains(err.Error(), private) {
		t.Fatalf("prepareDataDir under a private dir: %v, want an error naming %s", err, private)
	}
	if _, err := os.Stat(filepath.Join(private, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the error %s/a: %v, want nothing created", private, err)
	}
}
