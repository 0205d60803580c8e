// Package pgembed runs a private PostgreSQL server from the machine's own
// binaries: the zero-configuration database of `make run` when no
// DATABASE_URL is given.
//
// It owns one cluster directory (Config.DataDir), the postmaster process it
// starts there, a private socket directory under /tmp, and the server log at
// DataDir/log/postgres.log. It does not download binaries and does not use
// pg_ctl: the postmaster is our child, so it stops when we stop.
//
// Invariants:
//
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
//     Existing parents are never loosened: one that user cannot traverse is
//     reported as an error instead.
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
