// Package auth owns identity: passwords, signup and login, JWT access tokens,
// revocable API tokens, browser sessions with their CSRF tokens, and turning a
// credential plus a tenant slug into a Principal.
//
// Invariants:
//   - Passwords are stored only as argon2id hashes; API token and session
//     secrets only as SHA-256 hashes (they are 256-bit random, so a fast hash
//     is enough). A secret is shown once, at creation.
//   - JWTs are parsed for exactly one algorithm (EdDSA) and must carry exp,
//     iss and aud; anything else is unauthenticated.
//   - A credential that is not a member of a tenant sees that tenant as not
//     found, never as forbidden.
//   - Sign-in attempts are limited per address and per email in token
//     buckets kept in PostgreSQL (login_throttle), so replicas share them;
//     keys are stored hashed.
package auth
