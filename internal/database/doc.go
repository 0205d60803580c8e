// Package database owns Switchboard's connection to PostgreSQL: opening the
// pool, applying the embedded migrations, and running tenant-scoped work.
//
// Invariants:
//   - Tenant-scoped work runs through InTenant or ReadTenant, which switch to
//     the unprivileged role switchboard_app and set app.tenant_id for that
//     transaction only, so row-level security filters every row even though
//     the pool may connect as a superuser. Queries still filter by tenant_id
//     themselves; RLS is the second wall, not the first.
//   - Migrations run under a PostgreSQL advisory lock, so servers starting at
//     once apply each migration exactly once.
package database
