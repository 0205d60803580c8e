// Package database owns Switchboard's connection to PostgreSQL: opening the
// pool, applying the embedded migrations, checking the role it connects as,
// and running tenant-scoped work.
//
// Two roles are involved. The connecting role (DATABASE_URL's user) owns the
// database and every table in it, runs the migrations and the work that is
// not tenant-scoped (sign-in, sessions, the event sequencer); as the tables'
// owner it is not filtered by row-level security. Tenant-scoped work runs as
// AppRole (switchboard_app), a NOLOGIN role the migrations create and grant
// to the connecting role, which row-level security filters.
//
// Invariants:
//   - Tenant-scoped work runs through InTenant, ReadTenant or RunScoped,
//     which switch to AppRole and set app.tenant_id for that transaction
//     only (set_config(..., true)), so the policies see only that tenant's
//     rows, and nothing at all when no tenant is set. Queries still filter
//     by tenant_id themselves; RLS is the second wall, not the first.
//   - Under a scope AppRole sees only the users who are members of the
//     tenant, may append to and read the audit log but never change or
//     delete an entry, and may create no temporary table or object that
//     the owner's later queries on the same pooled connection would find
//     (migrations/00006_second_wall.sql).
//   - The connecting role must not be a superuser, have BYPASSRLS, or be
//     able to SET ROLE to one that is: PostgreSQL skips row-level security
//     for those, and a scoped transaction can always switch back to its
//     login role. CheckRole refuses such a role unless the operator set
//     AllowSuperuserSetting. Tests connect as such an ordinary role too
//     (see dbtest), so they prove the wall rather than skip it.
//   - Migrations run under a PostgreSQL advisory lock, so servers starting at
//     once apply each migration exactly once.
package database
