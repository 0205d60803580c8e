// Package tenancy owns the organisation model: tenants, users, memberships
// with roles, invitations, and teams with their members.
//
// Invariants:
//   - Every tenant-owned query filters on tenant_id and runs through
//     database.InTenant / ReadTenant, so row-level security is a second wall.
//     The exceptions read across tenants to establish a scope (Membership,
//     and claiming an address's invitations), filtering on the user.
//   - A tenant always keeps at least one owner. Changes to a tenant's
//     members and invitations take the tenant row's lock first, so they run
//     one at a time and the loser of a race sees the winner's result.
//   - A member can grant at most their own role, as it is when the change
//     runs (Granter), not when the request began.
//   - An address becomes a member only once a user proved it: adding a
//     verified user's address makes a membership, any other address an
//     invitation, which the address's verification turns into one. An
//     invitation has no user, name or join time, and is never listed as a
//     member; only members join teams.
//   - Every change is audited in its own transaction (package audit).
package tenancy
