// Package live is Switchboard's one WebSocket transport. Every stream the
// server offers (event-store subscriptions, lock, election and KV watches;
// dead letters and traces next) is served by a Hub from a Stream: the hub
// does the upgrade, checks the Origin exactly, authorizes the subscription,
// wraps every message in one envelope, keeps the connection alive, drops a
// client that cannot keep up, and closes a stream the moment its principal
// loses the right to it.
//
// # The wire
//
// Every message is a JSON object {"type", "data", "seq"}:
//
//   - "ready" first, with data {"resumed": bool}: whether the stream picked up
//     after the seq the client asked to resume after (?resume_after=N). A
//     client that asked and was not resumed reloads what it shows.
//   - the stream's own types ("event", "lock", "election", "leader", "kv",
//     ...) with a seq that grows along the stream; a client reconnects with
//     resume_after set to the last seq it saw.
//   - "ping" every Config.PingInterval; the client answers {"type":"pong"}.
//     A connection that has not answered for two intervals is closed.
//   - "error" with a problem document as data, just before the server
//     closes a stream that failed (the source ended on an error, or the
//     client fell behind).
//
// A source whose messages go to many connections (an event to every live
// subscriber of a log) may hand their data already encoded (Encoded): the
// hub then writes the same bytes into each envelope instead of encoding
// them again per connection.
//
// Close codes: 1000 the stream ended, 1001 the server is shutting down,
// 4401 the credential is no longer valid (revoked, expired, signed out),
// 4403 the principal may no longer read the stream (removed, demoted, a
// policy changed), 4408 the client was too slow or stopped answering pings,
// 1011 the stream failed.
//
// # Invariants
//
//   - A stream is authorized before the upgrade and again whenever the
//     rights of its principal may have changed: PostgreSQL notifies every
//     replica (channel switchboard_auth, sent by triggers on memberships,
//     team members, API tokens, sessions, users and policy versions) and the
//     hub re-derives the principal from the stream's credential and
//     re-authorizes it. A stream that fails is closed (4401/4403) with the
//     reason; one that still passes carries on with the new rights.
//   - A slow client never stalls anything else: push sources give it a
//     bounded buffer and end it when the buffer fills; every write has a
//     deadline.
//   - Messages published with Publish reach the subscribers of their topic
//     on every replica, through PostgreSQL NOTIFY, in the order each
//     publisher sent them.
package live
