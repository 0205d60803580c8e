// Package dlq captures dead letters into PostgreSQL, browses them, and
// replays them as jobs.
//
// What it owns: dlq_settings (per DLQ: capture paused, redaction rules),
// dlq_messages (what capture stored), dlq_replays and dlq_replay_items
// (replay jobs and the messages each one carries).
//
// A DLQ is a queue or topic the catalog names as a dead-letter destination
// (a queue's dead_letter_queue, a topic's dead_letter_topic, the target of
// a dead_letters_to relation); nothing else is ever consumed, since
// consuming a RabbitMQ queue takes its messages. A Kafka DLQ topic can
// also be read where it lies (ReadInPlace: no group, nothing committed or
// stored), and replayed to one consumer group through that group's retry
// topic (KafkaSettings).
//
// Invariants:
//   - Capture acknowledges a delivery only after the transaction that
//     stores it committed (batches are stored two at a time and
//     acknowledged in the order they came). A redelivery has the same
//     fingerprint and is folded; a replayed message that dead-letters
//     again (it carries HeaderMessage) goes back to its own record, and
//     once replayed MaxReplays times it is held back (the loop guard).
//   - A replay fixes its messages when it starts: one dlq_replay_items row
//     each. A pending item is the replay's claim on its message: the
//     message answers as replaying, and neither another replay's start nor
//     a discard takes it (both hold an advisory lock of the DLQ while they
//     choose, so the second sees the first's claims). Pending items exist
//     only in running or paused jobs, and in cancelled ones still leased.
//     The message's stored status stays dead until the transaction that
//     records the broker's confirmation makes it replayed, so starting a
//     replay rewrites no message. One replica runs a job at a time (a
//     lease on the job row). Before a batch is published the job's
//     sent_through moves past it (one write a batch, with the lease), and
//     a run starts from the job's first pending item, so a batch a replica
//     had in flight when it stopped is sent again (consumers deduplicate by
//     HeaderReplayID). Counts move only with the item states they count,
//     so they are exact after any crash.
//   - Cancelling gives what was not sent (pending above sent_through) back
//     to the DLQ; a batch in flight is recorded by its runner, or given
//     back a lease's time after the runner's lease ran out.
//   - A replayed message that comes back before its batch is recorded is
//     confirmed by the capture that stores its return (unless the record
//     holds its item: then the record sees the return and leaves the
//     message dead). Both lock messages in the order of their ids and the
//     job's row last, so neither waits for the other in turn.
//   - A replay is decided on the DLQ (replay) and on each destination the
//     catalog holds (its team and labels); payloads are shown unredacted
//     only to those with payload on the DLQ.
//   - Every query is scoped to its tenant (row-level security), except
//     the server's own reads across tenants (which DLQs to capture, which
//     replays to run).
package dlq
