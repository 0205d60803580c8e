package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
)

const (
	// dbName is the database Start creates for Switchboard.
	dbName = "switchboard"
	// superuser is the cluster's bootstrap role (initdb -U). Only Start
	// itself connects as it, to set the cluster up.
	superuser = "postgres"
	// appRole is the login role URL hands to the application: not a
	// superuser, not BYPASSRLS, so row-level security applies to it (see
	// database.CheckRole); CREATEROLE and owning the database are what the
	// migrations need.
	appRole = "switchboard"
	// port only names the socket file (.s.PGSQL.5432); there is no TCP
	// listener. It is passed explicitly so a PGPORT in the environment
	// cannot move the socket away from the URL.
	port = "5432"

	startTimeout   = 30 * time.Second      // to readiness (crash recovery included), not initdb
	stopTimeout    = 30 * time.Second      // fast shutdown, then SIGKILL
	connectTimeout = 2 * time.Second       // one readiness attempt
	pollInterval   = 25 * time.Millisecond // between readiness attempts
	logTailLines   = 20                    // server log lines quoted in errors
	logTailBytes   = 64 << 10              // at most this much of the log is read for them
	initdbTimeout  = 2 * time.Minute       // initdb --no-sync takes about a second
	socketRoot     = "/tmp"                // short, and traversable by every user
	maxSocketPath  = 107                   // sun_path limit, without the NUL
	socketFileName = "/.s.PGSQL." + port   // appended to the socket dir by PostgreSQL
)

// Config says where the cluster lives.
type Config struct {
	// DataDir is the cluster directory. It is created and initialised with
	// initdb when missing or empty. Required. When we run as root and the
	// postgres user cannot reach it (a clone under /root, or in a 0700
	// temporary folder), the cluster goes to a private directory under
	// /var/lib/switchboard (or, failing that, the temp dir) named after
	// DataDir's absolute path instead; Server.DataDir says which.
	DataDir string
	// BinDir holds initdb and postgres. Optional: when empty the binaries
	// are discovered ($PG_BINDIR, initdb on PATH, pg_config --bindir, then
	// the usual install locations).
	BinDir string
	// Logger receives progress and unexpected-exit messages. Optional.
	Logger *slog.Logger

	// stateRoots replaces defaultStateRoots() in tests, which must not
	// write under /var/lib.
	stateRoots []string
}

// Server is a running PostgreSQL postmaster started by Start. Its methods
// are safe for concurrent use.
type Server struct {
	log     *slog.Logger
	dataDir string
	sockDir string
	logPath string
	cmd     *exec.Cmd

	// exited is closed by the wait goroutine once the postmaster has
	// exited; waitErr holds cmd.Wait's result and is read only after
	// exited is closed.
	exited  chan struct{}
	waitErr error
	// ready is set once the server accepted a connection; stopping is set
	// when Stop begins. Together they tell the wait goroutine whether an
	// exit was unexpected and worth logging.
	ready    atomic.Bool
	stopping atomic.Bool

	stopOnce sync.Once
	stopErr  error // result of the first Stop; written inside stopOnce
}

// Start initialises the cluster in cfg.DataDir if needed, starts postgres
// as a child process and returns once it accepts connections and database
// "switchboard" exists. ctx bounds the start only, not the server's life:
// call Stop to end it.
//
// When no binaries are found the error is ErrNotInstalled, whose message
// is one line fit to show to the user as it is.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("pgembed: Config.DataDir is required")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgembed: data dir: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	bin, err := systemFinder().find(ctx, cfg.BinDir)
	if err != nil {
		return nil, err
	}
	acct, err := runAccount()
	if err != nil {
		return nil, err
	}
	roots := cfg.stateRoots
	if roots == nil {
		roots = defaultStateRoots()
	}
	configured := dataDir
	dataDir, why, err := resolveDataDir(configured, acct, roots)
	if err != nil {
		return nil, err
	}
	if why != nil {
		log.Info("embedded PostgreSQL: the configured data dir is out of the postgres user's reach; using a private dir instead",
			"data_dir", dataDir, "configured", configured, "reason", why)
	}
	fresh, err := prepareDataDir(dataDir, acct)
	if err != nil {
		return nil, err
	}
	if fresh {
		if err := initdb(ctx, bin, dataDir, acct, log); err != nil {
			return nil, err
		}
	}

	logFile, logOffset, err := openServerLog(dataDir, acct)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor; ours is not needed
	// once it has started.
	defer logFile.Close()

	sockDir, err := makeSocketDir(acct)
	if err != nil {
		return nil, err
	}

	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", dataDir,
		"-p", port,
		"-k", sockDir,
		"-c", "listen_addresses=",
		"-c", "fsync=on",
	)
	// Go changes directory after dropping privileges: "/" is reachable by
	// the postgres user, wherever we were started.
	cmd.Dir = "/"
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr(acct)

	startedAt := time.Now()
	if err := cmd.Start(); err != nil {
		removeSocketDir(sockDir, log)
		return nil, fmt.Errorf("pgembed: start postgres: %w", err)
	}
	s := &Server{
		log:     log,
		dataDir: dataDir,
		sockDir: sockDir,
		logPath: logFile.Name(),
		cmd:     cmd,
		exited:  make(chan struct{}),
	}
	go s.wait()

	if err := s.awaitReady(ctx, logOffset); err != nil {
		// The start error says what went wrong; Stop's own error (usually
		// "already exited") would only repeat it.
		_ = s.Stop()
		return nil, err
	}
	s.ready.Store(true)
	if err := s.prepareDatabase(ctx); err != nil {
		if stopErr := s.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	log.Info("embedded PostgreSQL ready",
		"pid", cmd.Process.Pid, "data_dir", dataDir, "socket_dir", sockDir, "role", appRole,
		"log", s.logPath, "bin_dir", bin, "elapsed", time.Since(startedAt).Round(time.Millisecond))
	return s, nil
}

// URL returns the DATABASE_URL of database "switchboard" on this server, as
// role switchboard (which owns the database and is no superuser) over the
// private Unix socket, for example
// "postgres://switchboard@/switchboard?host=/tmp/sbpg123&port=5432&sslmode=disable".
func (s *Server) URL() string { return s.connString(appRole, dbName) }

// DataDir returns the cluster directory in use: Config.DataDir made
// absolute, or the private directory the cluster was moved to when the
// postgres user could not reach that.
func (s *Server) DataDir() string { return s.dataDir }

// Stop shuts the server down with SIGINT (PostgreSQL's fast shutdown:
// sessions are ended, a checkpoint is written) and waits for the postmaster
// to exit; after 30 s it is killed. Stop removes the socket directory. It
// returns an error if the server had already exited or did not stop
// cleanly. Calling Stop again returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	s.stopping.Store(true)
	defer removeSocketDir(s.sockDir, s.log)

	select {
	case <-s.exited:
		return fmt.Errorf("pgembed: postgres had already exited (%v); see %s", s.waitErr, s.logPath)
	default:
	}

	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			<-s.exited
			return nil
		}
		s.log.Warn("embedded PostgreSQL: SIGINT failed; killing", "err", err)
		return s.kill(fmt.Errorf("pgembed: signal postgres: %w", err))
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("pgembed: postgres shutdown: %w; see %s", s.waitErr, s.logPath)
		}
		s.log.Info("embedded PostgreSQL stopped", "data_dir", s.dataDir)
		return nil
	case <-timer.C:
		s.log.Warn("embedded PostgreSQL did not stop in time; killing", "timeout", stopTimeout)
		return s.kill(fmt.Errorf("pgembed: postgres did not stop within %v of SIGINT; killed it", stopTimeout))
	}
}

// kill sends SIGKILL to the postmaster, waits for it and returns cause. Its
// own children notice the postmaster's death and exit; the next start runs
// crash recovery, which fsync=on makes safe.
func (s *Server) kill(cause error) error {
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return errors.Join(cause, fmt.Errorf("pgembed: kill postgres: %w", err))
	}
	<-s.exited
	return cause
}

// wait is the Server's one goroutine: it reaps the postmaster, records how
// it ended and closes exited. It ends when the postmaster does, which Stop
// (or a failed Start) brings about and waits for.
func (s *Server) wait() {
	err := s.cmd.Wait()
	s.waitErr = err
	if s.ready.Load() && !s.stopping.Load() {
		s.log.Error("embedded PostgreSQL exited unexpectedly", "err", err, "log", s.logPath)
	}
	close(s.exited)
}

// awaitReady polls a connection to the postgres database until one
// succeeds, the postmaster exits, ctx ends or startTimeout passes.
func (s *Server) awaitReady(ctx context.Context, logOffset int64) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	connString := s.connString(superuser, "postgres")
	for {
		err := ping(ctx, connString)
		if err == nil {
			return nil
		}
		// An exit wins over a timeout that happens at the same moment: it
		// is the more useful error.
		select {
		case <-s.exited:
			return s.exitedEarly(logOffset)
		default:
		}
		select {
		case <-s.exited:
			return s.exitedEarly(logOffset)
		case <-ctx.Done():
			return fmt.Errorf("pgembed: postgres not accepting connections on %s: %w (last attempt: %v)%s",
				s.sockDir, ctx.Err(), err, logTail(s.logPath, logOffset))
		case <-tick.C:
		}
	}
}

func (s *Server) exitedEarly(logOffset int64) error {
	return fmt.Errorf("pgembed: postgres on %s exited during startup (%v)%s",
		s.dataDir, s.waitErr, logTail(s.logPath, logOffset))
}

// ping opens and closes one connection.
func ping(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// prepareDatabase gives the application its role and database: role
// switchboard (LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE, a member of
// database.AppRole) owning database switchboard and everything the
// migrations made in it. It runs on every start and changes only what is not
// so yet, which also brings a cluster of an earlier version, whose
// application connected as the superuser and so created everything as it,
// over to the role.
func (s *Server) prepareDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.connString(superuser, "postgres"))
	if err != nil {
		return fmt.Errorf("pgembed: connect to prepare database %s: %w", dbName, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	role, app := pgx.Identifier{appRole}.Sanitize(), pgx.Identifier{database.AppRole}.Sanitize()
	for _, q := range []string{
		// Nothing else connects to this cluster while Start runs, so
		// "create unless it exists" cannot race here.
		`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + appRole + `') THEN CREATE ROLE ` + role + `; END IF;
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + database.AppRole + `') THEN CREATE ROLE ` + app + ` NOLOGIN; END IF;
		END $$`,
		"ALTER ROLE " + role + " LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE",
		// The migrations grant this too, but they cannot where an earlier
		// version had the superuser create the role.
		"GRANT " + app + " TO " + role,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgembed: role %s: %w", appRole, err)
		}
	}

	var owner string
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1`, dbName).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()+" OWNER "+role)
		if err != nil {
			return fmt.Errorf("pgembed: create database %s: %w", dbName, err)
		}
		s.log.Info("embedded PostgreSQL: created database", "database", dbName, "owner", appRole)
		return nil
	case err != nil:
		return fmt.Errorf("pgembed: look up database %s: %w", dbName, err)
	case owner != appRole:
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{dbName}.Sanitize()+" OWNER TO "+role); err != nil {
			return fmt.Errorf("pgembed: give database %s to role %s: %w", dbName, appRole, err)
		}
		s.log.Info("embedded PostgreSQL: database now owned by its own role", "database", dbName, "owner", appRole, "was", owner)
	}
	return s.transferObjects(ctx)
}

// ownedByOthersSQL lists, as ALTER statements, what in schema public of the
// current database belongs to a role other than $1: the schema itself,
// tables (partitioned ones and each partition), views and sequences (not
// those a table owns: they follow it) and functions, leaving out what
// belongs to an extension. REASSIGN OWNED cannot do this: it refuses the
// bootstrap superuser, which owns the system catalogs too.
const ownedByOthersSQL = `
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $1::text)
  FROM pg_namespace n
 WHERE n.nspname = 'public' AND pg_get_userbyid(n.nspowner)::text NOT IN ($1::text, 'pg_database_owner')
UNION ALL
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
              c.oid::regclass, $1::text)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND pg_get_userbyid(c.relowner)::text <> $1::text
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))))
UNION ALL
SELECT format('ALTER %s %s OWNER TO %I',
              CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
              p.oid::regprocedure, $1::text)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner)::text <> $1::text
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`

// transferObjects gives appRole what in database switchboard belongs to
// another role, in one transaction. On a cluster set up by this version
// there is nothing to give and it costs one query.
func (s *Server) transferObjects(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.connString(superuser, dbName))
	if err != nil {
		return fmt.Errorf("pgembed: connect to database %s: %w", dbName, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, ownedByOthersSQL, appRole)
	if err != nil {
		return fmt.Errorf("pgembed: list objects to give to role %s: %w", appRole, err)
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("pgembed: list objects to give to role %s: %w", appRole, err)
	}
	if len(stmts) == 0 {
		return nil
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgembed: give database %s's objects to role %s: %w", dbName, appRole, err)
	}
	s.log.Info("embedded PostgreSQL: objects now owned by the application's role", "database", dbName, "owner", appRole, "objects", len(stmts))
	return nil
}

// connString is a pgx/libpq URL for database db as role user over the
// socket. The socket directory is ours (/tmp/sbpg + digits) and the names
// are our constants, so nothing needs escaping.
func (s *Server) connString(user, db string) string {
	return "postgres://" + user + "@/" + db + "?host=" + s.sockDir + "&port=" + port + "&sslmode=disable"
}

// logTail returns the last lines written to the server log since offset,
// formatted to follow an error message, or "" if there are none.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("; cannot read %s: %v", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("; cannot read %s: %v", path, err)
	}
	from := max(offset, fi.Size()-logTailBytes)
	if from >= fi.Size() {
		return ""
	}
	buf := make([]byte, fi.Size()-from)
	n, err := f.ReadAt(buf, from)
	if n == 0 && err != nil {
		return fmt.Sprintf("; cannot read %s: %v", path, err)
	}
	tail := lastLines(string(buf[:n]), logTailLines)
	if tail == "" {
		return ""
	}
	return fmt.Sprintf("; end of %s:\n%s", path, tail)
}

// lastLines returns up to n last non-empty lines of text, each indented.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("    " + l)
	}
	return b.String()
}

func removeSocketDir(dir string, log *slog.Logger) {
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("embedded PostgreSQL: cannot remove socket dir", "dir", dir, "err", err)
	}
}
