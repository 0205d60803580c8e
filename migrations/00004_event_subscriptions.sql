-- +goose Up
-- Named subscriptions with server-kept checkpoints, and consumer groups
-- (internal/eventstore, named.go). A subscription reads its tenant's log, or
-- one category of it, and keeps the last position its consumer acknowledged.
-- Used as a consumer group, each member keeps its own checkpoint and reads
-- only the streams assigned to it; named.go explains the assignment and why
-- a rebalance rewinds every member to the group's lowest checkpoint.

CREATE TABLE event_subscriptions (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name <> ''),
    -- '' reads the whole log ($all), else one category.
    category      text NOT NULL DEFAULT '',
    -- As created: the first position to deliver. Kept so that repeating a
    -- create is recognised as the same request.
    from_position bigint NOT NULL CHECK (from_position >= 0),
    -- The last acknowledged position; 0 before any. For a consumer group,
    -- the lowest checkpoint of its members (the group's floor).
    checkpoint    bigint NOT NULL CHECK (checkpoint >= 0),
    -- How long a member stays in the group without fetching or acking.
    member_ttl_ms bigint NOT NULL CHECK (member_ttl_ms > 0),
    -- Bumped on every rebalance; acks of an older generation are refused.
    generation    bigint NOT NULL DEFAULT 0,
    -- The live members of the current generation, sorted.
    members       text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE event_group_members (
    tenant_id    uuid NOT NULL,
    subscription text NOT NULL,
    member       text NOT NULL,
    -- The last position this member acknowledged: it has handled every
    -- event of its assigned streams up to here.
    checkpoint   bigint NOT NULL CHECK (checkpoint >= 0),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subscription, member),
    FOREIGN KEY (tenant_id, subscription) REFERENCES event_subscriptions (tenant_id, name) ON DELETE CASCADE
);

-- Row-level security exactly as in 00001 and 00003.
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_subscriptions', 'event_group_members'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO switchboard_app', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
