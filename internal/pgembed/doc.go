// Package pgembed runs a private PostgreSQL server from the machine's own
// binaries: the zero-configuration database of `make run` when no
// DATABASE_URL is given.
//
// It owns one cluster directory (Config.DataDir, or the private directory it
// was moved to: Server.DataDir), the postmaster process it starts there, a
// private socket directory under /tmp, the server log at
// DataDir/log/postgres.log, and the cluster's roles: the bootstrap superuser
// postgres, which only Start uses, and the application's role switchboard,
// which Server.URL names. It does not download binaries and does not use
// pg_ctl: the postmaster is our child, so it stops when we stop.
//
// Invariants:
//
//   - The application never gets a superuser: Server.URL connects as role
//     switchboard (LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE), which owns
//     database switchboard and everything in its public schema, so
//     row-level security applies to the server and database.CheckRole
//     passes without an override. Start restates this on every start:
//     it creates the role if missing, and gives it the database and the
//     objects a cluster of an earlier version (whose application connected
//     as postgres) left owned by the superuser.
//   - When we run as root and the postgres user cannot reach the configured
//     data dir (a clone under /root or in a 0700 `mktemp -d` folder), the
//     cluster lives instead in <state root>/pgdata-<hash of the configured
//     absolute path>, the state root being /var/lib/switchboard or else
//     $TMPDIR/switchboard: the same configured dir always finds the same
//     cluster. A state root is used only if it is owned by root or postgres
//     and nobody else may write in it (no one can plant the cluster), and
//     it is reachable by postgres; one made here is 0755. The move is
//     logged at info with both paths.
//   - The server listens on a Unix socket only (listen_addresses is empty).
//     The socket directory is private (mode 0700, owned by the user the
//     server runs as), which is what makes the cluster's trust
//     authentication safe: only that user and root can connect.
//   - fsync stays on: the cluster holds a user's data. Only initdb runs
//     with --no-sync.
//   - initdb and postgres refuse to run as root. When the process's
//     effective uid is 0 both run as the "postgres" system user with
//     supplementary groups dropped; a fresh data directory is chowned to
//     that user with mode 0700, and directories created above it are 0755.
//     Existing parents are never loosened: one that user cannot traverse
//     moves the cluster as above, never gets its mode changed.
//   - The postmaster runs in its own process group (a terminal's Ctrl-C goes
//     to the Go server, which stops PostgreSQL after draining), and on
//     Linux receives SIGINT, PostgreSQL's fast shutdown, if the thread that
//     started it dies. Go only ends threads whose goroutine exits while
//     locked with runtime.LockOSThread, so do not call Start from such a
//     goroutine. Other systems have no parent-death signal: there a killed
//     Go server leaves the postmaster running until it is stopped by hand.
//   - A Server owns exactly one goroutine, which waits for the postmaster
//     to exit; Stop returns only after that goroutine is done.
//   - A second Start on a data directory whose server is running fails as
//     soon as that postmaster exits (PostgreSQL's postmaster.pid check),
//     with the end of the server log in the error; it never waits for the
//     readiness timeout.
package pgembed
