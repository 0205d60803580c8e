// Package tenancy owns the organisation model: tenants, users, memberships
// with roles, and teams with their members.
//
// Invariants:
//   - Every tenant-owned query filters on tenant_id and runs through
//     database.InTenant / ReadTenant, so row-level security is a second wall.
//   - A tenant always keeps at least one owner.
//   - A member can grant at most their own role.
//   - Every change is audited in its own transaction (package audit).
package tenancy
