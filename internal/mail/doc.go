// Package mail sends Switchboard's mail: verification links and notices
// about an account.
//
// A Mailer takes messages into a bounded queue and one goroutine it owns
// delivers them, over SMTP when a URL is configured (smtp:// with STARTTLS
// when the server offers it, smtps:// with implicit TLS) or, without one, by
// writing each message with its link to the log, so a single machine works
// with no mail server at all.
//
// Invariants:
//   - Send never waits on the network: it queues or refuses at once, so a
//     caller's answer time does not depend on what it sends or to whom.
//   - Every network step is bounded by Config.Timeout; a message is tried
//     Config.Attempts times, then dropped with a log line.
//   - Close stops taking messages, delivers what is queued within
//     Config.DrainTimeout, abandons the rest (logged), and returns only when
//     the goroutine has stopped.
//   - The SMTP password is never logged or put in an error. Message bodies
//     are logged only by the no-SMTP fallback, which exists to show them.
package mail
