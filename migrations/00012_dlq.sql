-- +goose Up
-- Dead-letter queues (internal/dlq): what capture took off each DLQ, the
-- per-DLQ settings (paused capture, redaction), and replay jobs with the
-- messages each one carries.

-- Settings of a DLQ. A DLQ itself is a catalog queue or topic; a row exists
-- only once someone changed a setting.
CREATE TABLE dlq_settings (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    dlq        text NOT NULL, -- queue:NAME or topic:NAME
    paused     boolean NOT NULL DEFAULT false,
    -- {"headers": [...], "json_paths": [...]}: values hidden from those who
    -- may browse but not read payloads.
    redaction  jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dlq)
);

CREATE TABLE dlq_messages (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    dlq           text NOT NULL,
    -- A redelivery of a message already stored has the same fingerprint
    -- and is folded into it (capture is at least once into the store).
    fingerprint   bytea NOT NULL,
    message_id    text NOT NULL DEFAULT '',
    routing_key   text NOT NULL DEFAULT '',
    content_type  text NOT NULL DEFAULT '',
    -- Headers with their wire types (see internal/dlq/headers.go), so a
    -- replay sends them as they came.
    headers       jsonb NOT NULL DEFAULT '{}',
    properties    jsonb NOT NULL DEFAULT '{}',
    body          bytea NOT NULL,
    body_size     int NOT NULL,
    -- The body was longer than the capture's size cap: body holds the first
    -- cap bytes, and such a message is never replayed.
    truncated     boolean NOT NULL DEFAULT false,
    -- Where it came from (x-death, or the Kafka DLT headers).
    original_exchange    text NOT NULL DEFAULT '',
    original_routing_key text NOT NULL DEFAULT '',
    original_queue       text NOT NULL DEFAULT '',
    original_topic       text NOT NULL DEFAULT '',
    reason        text NOT NULL DEFAULT '',
    exception     text NOT NULL DEFAULT '',
    death_count   bigint NOT NULL DEFAULT 1,
    first_death_at timestamptz,
    last_death_at  timestamptz,
    traceparent   text NOT NULL DEFAULT '',
    kafka_partition int,
    kafka_offset    bigint,
    captured_at   timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'replaying', 'replayed', 'discarded')),
    -- How often it was replayed, and came back; held: the loop guard keeps
    -- it from being replayed again.
    replays       int NOT NULL DEFAULT 0,
    returns       int NOT NULL DEFAULT 0,
    held          boolean NOT NULL DEFAULT false,
    last_replay   uuid,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, dlq, fingerprint)
);
-- Browsing pages newest first; the filters narrow within a DLQ.
CREATE INDEX dlq_messages_browse ON dlq_messages (tenant_id, dlq, id DESC);
CREATE INDEX dlq_messages_status ON dlq_messages (tenant_id, dlq, status, id DESC);


CREATE TABLE dlq_replays (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    dlq         text NOT NULL,
    state       text NOT NULL CHECK (state IN ('running', 'paused', 'done', 'cancelled', 'failed')),
    request     jsonb NOT NULL,
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    total       int NOT NULL DEFAULT 0,
    published   int NOT NULL DEFAULT 0,
    confirmed   int NOT NULL DEFAULT 0,
    failed      int NOT NULL DEFAULT 0,
    skipped     int NOT NULL DEFAULT 0,
    returned    int NOT NULL DEFAULT 0,
    -- Why it paused itself, failed or was cancelled.
    note        text NOT NULL DEFAULT '',
    -- The replica running it, until lease_until: another takes over after.
    runner      text NOT NULL DEFAULT '',
    lease_until timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX dlq_replays_dlq ON dlq_replays (tenant_id, dlq, created_at DESC);
CREATE INDEX dlq_replays_active ON dlq_replays (state) WHERE state = 'running';

-- The messages of a replay, fixed when it is created. A runner marks a
-- batch sending before it publishes it, and confirmed or failed after.
CREATE TABLE dlq_replay_items (
    tenant_id  uuid NOT NULL,
    replay_id  uuid NOT NULL,
    message_id bigint NOT NULL,
    seq        int NOT NULL,
    state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'confirmed', 'failed', 'skipped')),
    error      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, replay_id, seq),
    FOREIGN KEY (tenant_id, replay_id) REFERENCES dlq_replays (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, message_id) REFERENCES dlq_messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX dlq_replay_items_message ON dlq_replay_items (tenant_id, message_id);
-- What a runner sends next.
CREATE INDEX dlq_replay_items_todo ON dlq_replay_items (tenant_id, replay_id, seq) WHERE state = 'pending';

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['dlq_settings', 'dlq_messages', 'dlq_replays', 'dlq_replay_items'] LOOP
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
