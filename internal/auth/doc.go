// Package auth owns identity: passwords, sign-up with email verification,
// sign-in, JWT access tokens, revocable API tokens, browser sessions with
// their CSRF tokens, operator rights, and turning a credential plus a tenant
// slug into a Principal.
//
// Invariants:
//   - Passwords are stored only as argon2id hashes; API token and session
//     secrets only as SHA-256 hashes (they are 256-bit random, so a fast hash
//     is enough). A secret is shown once, at creation.
//   - At most Config.HashConcurrency password hashes run at once, with a
//     bounded queue of waiters behind them; beyond it callers are told the
//     server is busy, so memory stays flat under a flood.
//   - JWTs are parsed for exactly one algorithm (EdDSA) and must carry exp,
//     iss and aud; anything else is unauthenticated.
//   - A credential that is not a member of a tenant sees that tenant as not
//     found, never as forbidden.
//   - An API token acts with the lower of its own role and its creator's
//     current role, with the creator's current teams, read in the same query
//     that finds the token; a token whose creator is gone or no longer a
//     member is unauthenticated.
//   - Sign-up answers the same for a known and an unknown address, after the
//     same work; the mail (queued, never sent inline) is what differs.
//   - An address counts only once proved: invitations reach it and operator
//     rights apply only after its verification link (HMAC-signed over the
//     user's current address, expiring, single-use) was followed.
//   - Sign-in attempts are limited per client address and per (client
//     address, account) pair, never per account alone, so failing on purpose
//     cannot lock the owner out; sign-ups per client address; mail per
//     recipient. The buckets live in PostgreSQL (login_throttle), shared by
//     replicas, under HMAC keys.
//   - Verification links are logged only by the mail package's no-SMTP
//     fallback, never here.
package auth
