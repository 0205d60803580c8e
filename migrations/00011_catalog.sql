-- +goose Up
-- The catalog: what a tenant's teams declare (services, brokers, queues,
-- topics, sagas, and the kinds an import brings), the relations between
-- them, the last result of each import, and saved topology views.

CREATE TABLE catalog_entities (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    kind        text NOT NULL,
    namespace   text NOT NULL DEFAULT 'default',
    name        text NOT NULL,
    -- The reference relations use: kind:name, or kind:namespace/name outside
    -- the default namespace (and whenever the name holds a '/').
    ref         text NOT NULL GENERATED ALWAYS AS (
                    kind || ':' || CASE WHEN namespace = 'default' AND strpos(name, '/') = 0
                                        THEN name ELSE namespace || '/' || name END) STORED,
    -- The owning team's slug, or an imported owner reference (user:jdoe);
    -- '' when none. Not a foreign key: an import may name an owner the
    -- catalog does not hold, which is shown as missing, not refused.
    owner_team  text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    labels      jsonb NOT NULL DEFAULT '{}',
    annotations jsonb NOT NULL DEFAULT '{}',
    links       jsonb NOT NULL DEFAULT '[]',
    spec        jsonb NOT NULL DEFAULT '{}',
    -- A broker's credentials, sealed (AES-GCM) with the tenant and entity
    -- ids as associated data; never answered, logged or audited.
    credentials bytea,
    source      text NOT NULL DEFAULT '',
    orphaned    boolean NOT NULL DEFAULT false,
    raw         jsonb,
    health      jsonb,
    -- What the last discovery of its broker found different (queues, topics).
    drift       jsonb,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, ref)
);
CREATE INDEX catalog_entities_kind ON catalog_entities (tenant_id, kind, namespace, name);
CREATE INDEX catalog_entities_owner ON catalog_entities (tenant_id, owner_team);
CREATE INDEX catalog_entities_labels ON catalog_entities USING gin (labels jsonb_path_ops);

-- Relations are kept by reference, so an import may point at an entity the
-- catalog does not hold (shown as missing). The API refuses such relations.
CREATE TABLE catalog_relations (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    from_ref   text NOT NULL,
    type       text NOT NULL,
    to_ref     text NOT NULL,
    source     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, from_ref, type, to_ref),
    CHECK (from_ref <> to_ref)
);
CREATE INDEX catalog_relations_to ON catalog_relations (tenant_id, to_ref);

CREATE TABLE catalog_imports (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL DEFAULT '',
    applied    boolean NOT NULL,
    result     jsonb NOT NULL,
    PRIMARY KEY (tenant_id, source)
);

CREATE TABLE catalog_views (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    state      jsonb NOT NULL,
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['catalog_entities', 'catalog_relations', 'catalog_imports', 'catalog_views'] LOOP
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
