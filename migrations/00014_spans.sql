-- +goose Up
-- Spans taken in over OTLP (internal/tracing).
--
-- spans is partitioned by the day its rows expire (expires_on: the span's
-- start day plus its tenant's retention at ingest), one partition a day,
-- created by the store as spans for that day arrive. Retention drops the
-- partitions whose day has passed: no row is ever deleted one by one, and
-- tenants with different retentions share the day partitions. The
-- partitions' indexes serve a trace by its id, a search over a time range
-- (all spans, one service, errors only) and attribute equality on the
-- configured keys (attr_index holds "key=value" for those).
--
-- There is no foreign key to tenants: checking one for every span costs
-- more than the ingest can afford, and a deleted tenant's spans go when
-- their day does.
CREATE TABLE spans (
    tenant_id      uuid NOT NULL,
    expires_on     date NOT NULL,
    trace_id       bytea NOT NULL, -- 16 bytes
    span_id        bytea NOT NULL, -- 8 bytes
    parent_span_id bytea,          -- NULL for a root span
    service        text NOT NULL,  -- the resource's service.name
    name           text NOT NULL,
    kind           smallint NOT NULL, -- OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    start_time     timestamptz NOT NULL,
    duration_ns    bigint NOT NULL,
    status_code    smallint NOT NULL, -- 0 unset, 1 ok, 2 error
    status_message text NOT NULL DEFAULT '',
    trace_state    text NOT NULL DEFAULT '',
    scope          text NOT NULL DEFAULT '', -- instrumentation scope name[@version]
    attributes     jsonb NOT NULL DEFAULT '{}',
    resource       jsonb NOT NULL DEFAULT '{}',
    events         jsonb NOT NULL DEFAULT '[]',
    links          jsonb NOT NULL DEFAULT '[]',
    attr_index     text[] NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (expires_on);

CREATE INDEX spans_trace ON spans (tenant_id, trace_id);
CREATE INDEX spans_time ON spans (tenant_id, start_time DESC);
CREATE INDEX spans_service_time ON spans (tenant_id, service, start_time DESC);
CREATE INDEX spans_errors ON spans (tenant_id, start_time DESC) WHERE status_code = 2;
CREATE INDEX spans_attrs ON spans USING gin (attr_index);

-- The services and operations spans have named, with when each was last
-- seen: what the search page offers, without scanning spans for it.
CREATE TABLE trace_operations (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    service    text NOT NULL,
    name       text NOT NULL,
    kind       smallint NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, service, name, kind)
);

-- A tenant's tracing settings; no row: the defaults.
CREATE TABLE tracing_settings (
    tenant_id      uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    retention_days int NOT NULL DEFAULT 7 CHECK (retention_days BETWEEN 1 AND 90),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Row-level security, as for every tenant table. Reads run scoped to the
-- tenant; the ingest writes spans with COPY, which row-level security does
-- not allow, so it writes as the owner with the tenant id of the
-- authenticated token.
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['spans', 'trace_operations', 'tracing_settings'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END
$$;
-- +goose StatementEnd
GRANT SELECT ON spans TO switchboard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON trace_operations, tracing_settings TO switchboard_app;

-- +goose Down
DROP TABLE tracing_settings;
DROP TABLE trace_operations;
DROP TABLE spans;
