// Package secrets seals small secrets at rest (broker credentials) with
// AES-256-GCM under a keyring of named keys.
//
// Invariants:
//   - The first key seals; every key of the ring opens. Rotation is adding
//     a new key first and re-sealing what Stale reports; a ciphertext
//     names the key that sealed it, never the key itself.
//   - Every ciphertext is bound to its place by associated data (the
//     caller passes the row's tenant and id): copied into another row it
//     does not open.
//   - No error, log line or answer holds a key or a plaintext.
package secrets
