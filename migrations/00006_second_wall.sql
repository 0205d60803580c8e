-- +goose Up
-- The second wall, closed where 00001-00005 left it open for the app role
-- (switchboard_app, which tenant-scoped transactions assume). Unscoped work
-- runs as the connecting role, which owns these tables and so is not
-- filtered; everything here is about what a scoped transaction can reach.

-- users is global (one account, many tenants), so it has no tenant_id. Inside
-- a tenant scope the app role sees only that tenant's members; with no
-- tenant set it sees nobody. The tenant is named here as well as through
-- memberships' own policy, so the rule does not rest on that policy alone.
-- SELECT is all the app role holds on users (and only on four columns).
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_members ON users FOR SELECT
    USING (EXISTS (SELECT 1 FROM memberships m
                   WHERE m.user_id = users.id
                     AND m.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- The audit log is append-only for the app role: a scoped transaction may
-- write an entry and read its tenant's entries, never change or remove one.
-- Deleting a tenant still removes its entries: the foreign key's cascade runs
-- as the table owner.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM switchboard_app;

-- Temporary tables: a temporary table is searched before public, and it
-- outlives the transaction on the pooled connection. A scoped transaction
-- that made one named users (or api_tokens, sessions...) would feed its rows
-- to the unscoped queries the owner runs next on that connection, sign-in
-- among them. Only PUBLIC holds TEMPORARY by default; the owner keeps it.
-- Database privileges live in the cluster-wide catalog, so a database cloned
-- from a migrated template does not inherit this (dbtest repeats it).
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
-- +goose StatementEnd

-- Creating objects in public would let the app role plant a function or
-- operator that the owner's unscoped queries then resolve to (and run with
-- the owner's rights). PostgreSQL 15 no longer grants that to PUBLIC; older
-- servers do. Where public belongs to another role this only warns.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
