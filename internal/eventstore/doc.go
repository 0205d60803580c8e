// Package eventstore owns Switchboard's event store on PostgreSQL: streams
// with optimistic concurrency, a commit-ordered log per tenant, reads,
// catch-up-then-live subscriptions, snapshots, stream metadata and deletion.
// It has no HTTP; internal/api calls it.
//
// # Model
//
// A stream is named by the client ("order-123"); its category is the part of
// the name before the first "-" ("order"). An event has a client-chosen (or
// generated) UUID, a type, JSON data and optional JSON metadata; it gets a
// version in its stream (0, 1, 2, ... without gaps) when appended and a
// position in its tenant's log (1, 2, 3, ... without gaps) moments after
// its transaction commits. Everything is per tenant: every table has
// tenant_id, every query filters on it, and every tenant-scoped statement
// runs under the switchboard_app role with app.tenant_id set, so row-level
// security is the second wall.
//
// # Commit order: why the log never skips an event
//
// An append stamps its rows with its transaction id (txid, xid8, the
// column default pg_current_xact_id()) and an identity id. Ids and xids are
// handed out when rows are written, but transactions commit in any order,
// so "every event after the last id I read" skips an event whose
// transaction took a lower id and committed later — the trap message-db and
// SQLStreamStore users meet. Waiting for gaps to fill only narrows the
// window.
//
// The horizon fixes it. Let x be pg_snapshot_xmin(pg_current_snapshot()) of
// a statement: every transaction with an xid below x has ended (committed or
// aborted) before the snapshot was taken, and every transaction that starts
// writing later gets an xid of at least x. So the set
//
//	C(x) = committed events with txid < x
//
// is entirely visible to that statement and final: no event can ever join
// it. Snapshot xmins never go down, so C only grows, and everything that
// joins it later has a txid at or above the x it was taken at — ordering C by
// (txid, id) and handing out positions in that order never puts a new event
// before one already handed out. That is what the single sequencer does
// (sequencer.go): one statement takes the oldest unpositioned transactions
// of C(x) in txid order (a bounded batch of whole transactions; what is left
// is again a prefix of the rest), numbers their events per tenant after that
// tenant's last position (event_log_heads) in (txid, id) order, records the
// numbering, and commits. Positions are therefore contiguous and
// increasing, and become visible in order, one whole batch at a time: a
// reader of "position >= next" can never see position p+1 before p. Log
// reads (ReadAll, ReadCategory) and subscriptions read only positioned
// events, so they never skip.
//
// The same argument shows that the positioned transactions are always a
// prefix of the txid order, so the sequencer keeps one mark, the last
// transaction it positioned (event_sequencer, moved in the same
// transaction), and resumes after it. It also shows that an event's position
// is a function of the committed events alone (its rank in its tenant's
// (txid, id) order), which is why the sequencer may commit without waiting
// for its WAL to reach disk: after a crash that loses its last commits it
// hands out the very same positions again.
//
// # Where positions are written: one row per commit
//
// Since the sequencer never splits a transaction, the events one transaction
// appended for a tenant (a run) hold consecutive positions in id order. So
// the numbering is recorded per run, not per event: one narrow event_commits
// row (tenant, txid, first position, count), and an event's position is its
// run's first position plus the number of the run's events with a smaller
// id (counted on the events_txn index). Of the ways to record positions this
// one writes least: a position column on events would rewrite every wide
// row once more (in every index: the position is indexed, so no HOT update),
// and a row per event (what event_positions was, before migration 00010)
// costs a heap row and three index entries per event. Here a commit of any
// size costs one small row, and group commit (below) makes the rows fewer
// still. Log reads walk the runs in position order ($all) or the category's
// events in (txid, id) order (events_category), and derive positions as
// they go.
//
// Inside a stream the log agrees with the versions: writers of a stream
// queue on a transaction-scoped advisory lock keyed by (tenant, stream)
// taken before the transaction writes anything, so the waiter gets its xid
// only after the holder committed, and a larger one. (Queuing on the stream
// row's lock would not do: locking a row needs an xid, so a waiter could
// hold the smaller xid and its later version would sort first.
// TestLog_StreamOrderMatchesVersionOrder fails within a second with
// SELECT ... FOR UPDATE in place of the advisory lock.) Writers of different
// streams share no lock: concurrency is per stream.
//
// The costs, designed for: the horizon is cluster-wide, so any long write
// transaction anywhere on the PostgreSQL server — in any database, CREATE
// DATABASE included — holds every log reader back until it ends (appends are
// kept to one short statement for that reason). Lag reports the
// positioned-vs-appended gap for a metric. Stream reads do not wait for
// positions: they see an append as soon as it commits.
//
// # The sequencer
//
// Start runs it. Exactly one Store per database leads, holding a session
// advisory lock on a connection of its own and running every sequencer
// statement on that same connection, so losing the connection loses the
// lock and the work together; standbys retry the lock every
// Config.LeaderRetry. It runs when appends commit, not on a timer: an
// append through the leading Store wakes it as soon as it returns, and a
// Store that does not lead sends one notification on the channel
// "eventstore_append" after its appends commit (a statement of its own,
// folding together the appends that commit meanwhile: a notification inside
// the append's transaction would hold PostgreSQL's notification lock across
// the commit and make concurrent appends commit one at a time). Appends that
// commit while a statement runs are taken by the next, so under load one
// statement positions the events of many appends. Config.SequencerPoll is
// only a safety net, and events held back by an older open transaction are
// looked at again within milliseconds (nothing announces its end). Each
// statement notifies on the channel "eventstore" with the tenant, and every
// Store listens and wakes its readers of that tenant, so subscriptions on
// any replica go live without polling.
//
// Append does not wait for positions (so appends never queue behind the
// sequencer or a long transaction elsewhere); it returns the versions and
// event ids, and AwaitPosition waits for a position when a caller needs it
// (the HTTP API does so only when asked: ?await=position).
//
// # Appends and group commit
//
// An append is one call of a SQL function (eventstore_append) in one round
// trip. It writes the events and the stream's row and nothing else: no
// foreign key checks each event against its stream (that check was a query
// per event; eventstore_write writes the stream row and its events together,
// and a trigger removes the events of removed streams). Small appends of one tenant that are in flight at the same moment
// share a transaction and its commit (group.go): the commit's WAL flush is
// most of a small append's cost. Each keeps its own outcome; a grouped
// append never waits for a stream's lock (a busy stream sends it back to
// run alone), so one slow stream holds up no other.
//
// # Live subscriptions share their reads
//
// A subscription catches up on its own reads; at the head of the log it
// follows its tenant's tail (fanout.go), one reader per tenant and Store
// that reads each new page once, when the sequencer positions events, and
// hands each event to the followers that want it, in memory. Followers count
// in positions, so joining the tail, being let go by it when they cannot
// keep up (its channel is full), and catching up alone again never skip, repeat
// or reorder an event. The copies of an event handed out by one read share
// one JSON encoding (Event.JSON), so a live stream with thousands of
// subscribers encodes each event once.
//
// # Plans
//
// The pool caches one generic plan per statement and connection, made at its
// first use — possibly while the tables are empty, when a sequential scan
// looks cheapest and would then be kept for good. Every transaction of this
// package therefore turns sequential and bitmap scans (and JIT, which their
// disabled cost estimates would trigger) off, and log reads test visibility in a
// scalar subquery so that they always walk the position index in order.
//
// # Deletion and retention
//
// event_streams holds one row per stream incarnation. A soft delete stamps
// the live row's deleted_at; the row and its events stay, with their
// positions, so the log keeps its order. Appending to the name again creates
// a new row: the new incarnation starts at version 0, and the old events,
// which point at the old row, stay hidden. A hard delete marks the live row
// tombstoned (or inserts a tombstone row); it holds the name forever.
//
// One visibility rule applies to every read — stream, $all, category,
// subscription: an event is returned only if its incarnation is live and it
// is within the stream's metadata (version >= truncate_before, among the
// newest max_count, appended within max_age_seconds). Hidden events are not
// deleted, and log positions skip over them.
//
// # Named subscriptions and consumer groups
//
// A named subscription (named.go) keeps its checkpoint in the database: a
// consumer fetches the events after it and acknowledges a position, and a
// restart resumes where the last acknowledgement left off. Consumers that
// fetch with a member id form a consumer group: the live members (seen within
// the subscription's member TTL), sorted by id, split the category's streams
// by FNV-1a(stream) mod N, so each stream goes to exactly one member. Every
// change of the live set starts a new generation and rewinds each member to
// the group's lowest checkpoint; acknowledgements of an older generation are
// refused. Delivery is therefore at least once: after a rebalance a member
// may see again events up to its old checkpoint, and none is skipped.
//
// # Invariants
//
//   - Within a stream, versions are 0..n-1 without gaps or repeats
//     (events_stream_version, and the per-stream lock).
//   - Within a tenant, positions are 1..m without gaps or repeats, in
//     (txid, id) order, and an event is positioned once: its transaction
//     has one run per tenant (event_commits' keys; only the sequencer, as
//     the owning role, writes there), and runs never overlap (each starts
//     after the tenant's head, which moves past it in the same statement).
//   - Events are never updated or deleted by the app role (it has SELECT and
//     INSERT on them only).
//   - Position order agrees with version order inside every stream.
//   - An event id is stored once per tenant; an append is all or nothing.
//   - No read returns an event whose stream incarnation is deleted or that
//     its stream's metadata hides.
package eventstore
