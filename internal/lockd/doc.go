// Package lockd is Switchboard's coordination service: one hashicorp/raft
// group whose replicated state machine holds, per tenant, locks with leases
// and fencing tokens, elections, and a compare-and-set key-value space.
//
// A Node is one member of the group. It stores the Raft log and stable state
// in a segmented write-ahead log (raft-wal, DataDir/wal: one fsync per batch
// of entries), snapshots in DataDir/snapshots, and talks to its peers over
// TCP. A log that an earlier version kept in DataDir/raft.db (raft-boltdb)
// is copied into the write-ahead log at start and raft.db renamed
// raft.db.migrated, a backup of the log as it was. Earlier versions cannot
// read the write-ahead log. A node never starts on files it cannot use, and
// never panics on them: before Raft reads anything, New checks that every
// log entry reads back under its index, that a snapshot restores when there
// are any, and that the snapshot and the log leave no gap; a damaged file
// or a data dir laid out as no version of this package leaves it (segment
// files without their index, an unfinished move whose raft.db is gone, a
// moved log that went missing) is an error naming the file and saying what
// to do — in a group of several nodes, move the files aside and restart the
// node as a joining member, which copies the state from the leader. With no
// configuration it is a single-node group
// that bootstraps itself; 3 or 5 voters come from Config.Peers or from
// AddVoter on the leader.
//
// # Requests
//
// Writes (Acquire, Renew, Release, Campaign, RenewLeadership, Resign, Put,
// Delete) are proposed by the leader. Commands that arrive while earlier
// ones commit share one log entry (batch.go); Apply still checks, applies
// and numbers each command as if it were an entry of its own. Reads that promise the latest state
// (Verify, ListLocks, Leader, Get, ListKV) run on the leader after a ReadIndex
// round: commit index, quorum heartbeat, wait for apply. A follower answers
// both with *ErrNotLeader (problem code unavailable, Retry-After 1) naming the
// leader, for the HTTP layer to redirect or forward; with no leader, or while
// a new leader takes over, the answer is unavailable with Retry-After, never
// a stale value. Streams (WatchLocks, Observe, Watch) run on any node from
// what it has applied.
//
// A write whose entry may have reached the log but whose commit was not
// confirmed (leadership lost mid-flight) answers *ErrOutcomeUnknown: it may
// still take effect. An Acquire lost that way leaves an orphaned lease that
// ends with its TTL.
//
// All names (locks, elections, owners, candidates, keys) are 1..256 bytes of
// printable UTF-8; TTLs are 100ms..1h, waits 0..1min, values up to 64 KiB.
// Tenants are separate name spaces: another tenant's lock is not found.
//
// # Invariants
//
// Determinism. Apply reads only the log entry and the state. Time enters as
// data: the leader stamps its clock into every command it proposes ("now"),
// the state machine's clock is the largest stamp applied so far, and lease
// expiry is itself a command (expire) the leader proposes when its clock
// passes a lease's ExpiresAt. Tokens are drawn by the proposer and carried in
// the command; fencing tokens and revisions are counted by Apply itself. A
// follower, or a node replaying its log after a restart, reaches exactly the
// leader's state, and never ends a lease early or late on account of its own
// clock. The leader's clock is wall time at start plus monotonic time since,
// so a wall-clock step does not shorten leases.
//
// No double holder. A lease exists only with a holder; waiters queue FIFO
// behind it and are granted only when the holder's lease ends (release or
// expiry) in the same log entry that ends it. Two holders of one lock at one
// log position are impossible by construction. A client holding a lock must
// still stop using it at its own send time + ttl at the latest; the fencing
// token lets the protected resource reject a holder that did not.
//
// Fencing monotonic. Every number a tenant is shown — a lock's fencing token,
// an election's term, a key's Revision and CreateRevision, the Index of a
// watch or observe event — is a value of that tenant's revision, a counter
// held in the replicated state. Apply advances a tenant's revision by one in
// every log entry that changes the tenant's state (a grant, renewal, release
// or expiry, a waiter joining or leaving a queue, a put or delete), from the
// entry and the state alone; the changes one entry makes to one tenant (a
// release and the grant to the next waiter) share the new value. Here, and
// wherever these rules say entry, each command of a batch entry counts as
// an entry of its own. A lock's fencing token is the revision of the entry
// that granted it. Each grant comes in a later entry than the last, and
// the counters are replayed with the log and carried by snapshots, so
// tokens of one lock (terms of one election, revisions of one key, indexes
// along a stream) strictly increase across leader changes, restarts and
// snapshot installs. Verify answers true only for the current holder's
// token while its lease runs. WaitApplied takes a tenant and one of its
// revisions.
//
// Numbers per tenant. The counters are per tenant, not Raft log indexes
// (which earlier versions used), because a global counter is a side channel:
// a tenant taking two tokens a minute apart would learn from their
// difference how many writes every other tenant made in that minute. A
// tenant's revision moves only with its own changes and with a new leader's
// promote entry extending its own leases — never with another tenant's
// writes. Raft indexes and terms remain for operators, in Status.
//
// Upgrading from Raft-index numbers. Numbers handed out before an upgrade
// keep their meaning and are never handed out again. Log entries written by
// earlier versions (command version 1) are still numbered by their Raft
// index, as those versions numbered them, and raise a floor under every
// tenant's revision to that index; a snapshot written by an earlier version
// (snapshot version 1, no counters) sets the floor to the last Raft index it
// covers. The floor is one number for all tenants, fixed at the upgrade: it
// starts even a tenant whose locks left no trace in the state above every
// token it was ever given, and tells a tenant only how long the log was
// then, not how fast anyone writes now. Earlier versions cannot apply the
// entries this version writes (command version 2, and batches of them,
// version 3) and refuse its snapshots, so a multi-node group is upgraded whole — stop every node,
// start them all on this version — never node by node.
//
// Grace period (the exact rule). A node that becomes leader, before it serves
// a linearizable read or proposes any expiry, (1) commits a barrier so every
// entry of earlier terms is applied, then (2) commits a promote entry stamped
// with its clock now_L carrying G = max(Config.LeaseGrace,
// Config.ElectionTimeout). Applying promote sets ExpiresAt := max(ExpiresAt,
// now_L + G) for every lock and election lease. The leader then expires a
// lease only in an expire entry stamped with a time ≥ ExpiresAt, checked
// again by Apply against the state clock. So a lease whose holder could not
// renew while there was no leader lasts at least G after the new leader
// took over — long enough to find it and renew — and no lease ends before
// the time it was last promised. Waiters' deadlines are not extended: their
// callers were attached to the old leader and have been told to retry.
//
// Acquire waiting. A queued waiter carries a deadline (proposal time +
// wait). The state machine never grants a waiter past its deadline, the
// waiting call withdraws itself with a cancel entry when its wait runs out
// (a grant that raced the cancel is returned to the caller, never lost), and
// the leader sweeps waiters whose deadline passed long ago.
package lockd
