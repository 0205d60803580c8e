-- +goose Up
-- The event store (internal/eventstore): streams, an append-only event log
-- with a commit-ordered position per tenant, and snapshots. doc.go in the
-- package explains the ordering argument; the comments here say what each
-- column and index is for.
--
-- Events are never updated. Their log positions, which the sequencer hands
-- out after commit, live in event_positions: inserting a narrow row there
-- costs about a third of updating the wide events row (which could not be a
-- HOT update, since the position is indexed) and leaves no dead versions of
-- events behind.

-- One row per stream *incarnation*. A soft delete stamps deleted_at and keeps
-- the row (its events still point at it); writing the name again creates a
-- new row, so the new incarnation starts at version 0 and the old events stay
-- hidden behind the old row's deleted_at. A hard delete sets tombstoned on the
-- live row, which then holds the name forever.
CREATE TABLE event_streams (
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    name            text NOT NULL,
    category        text NOT NULL,
    -- Version of the last event; -1 while the stream has none (a stream whose
    -- metadata was set before its first event, or a tombstone).
    version         bigint NOT NULL DEFAULT -1 CHECK (version >= -1),
    max_count       bigint CHECK (max_count > 0),
    max_age_seconds bigint CHECK (max_age_seconds > 0),
    truncate_before bigint CHECK (truncate_before >= 0),
    tombstoned      boolean NOT NULL DEFAULT false,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_write_at   timestamptz,
    PRIMARY KEY (tenant_id, id)
);
-- At most one live (or tombstoned) incarnation per name.
CREATE UNIQUE INDEX event_streams_live_name ON event_streams (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE events (
    tenant_id  uuid NOT NULL,
    -- Insertion order inside a transaction; with txid it orders the log.
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id  bigint NOT NULL,
    stream     text NOT NULL,
    category   text NOT NULL,
    version    bigint NOT NULL CHECK (version >= 0),
    event_id   uuid NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    metadata   jsonb,
    -- The top-level transaction that appended the row. The sequencer only
    -- takes rows below pg_snapshot_xmin(pg_current_snapshot()).
    txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, stream_id) REFERENCES event_streams (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX events_stream_version ON events (tenant_id, stream_id, version);
-- Idempotent appends: an event id is used once per tenant.
CREATE UNIQUE INDEX events_event_id ON events (tenant_id, event_id);
-- The log order. The positioned events are always a prefix of it.
CREATE INDEX events_txid ON events (txid, id);

-- Each event's place in its tenant's log: contiguous from 1, assigned by the
-- single sequencer in (txid, id) order once the event is below the horizon.
CREATE TABLE event_positions (
    tenant_id uuid NOT NULL,
    position  bigint NOT NULL CHECK (position > 0),
    event     bigint NOT NULL, -- events.id
    category  text NOT NULL,   -- events.category, for category reads
    PRIMARY KEY (tenant_id, position),
    FOREIGN KEY (event) REFERENCES events (id) ON DELETE CASCADE
);
-- An event is positioned once.
CREATE UNIQUE INDEX event_positions_event ON event_positions (event);
CREATE INDEX event_positions_category ON event_positions (tenant_id, category, position);

-- The last position the sequencer handed out per tenant.
CREATE TABLE event_log_heads (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    position  bigint NOT NULL
);

-- Where the sequencer resumes: the (txid, id) of the last event it
-- positioned, kept in the same transaction as the positions. Not
-- tenant-owned: only the sequencer (running as the owner) uses it.
CREATE TABLE event_sequencer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    txid      xid8 NOT NULL,
    event     bigint NOT NULL
);
INSERT INTO event_sequencer (txid, event) VALUES ('0', 0);

CREATE TABLE event_snapshots (
    tenant_id  uuid NOT NULL,
    stream_id  bigint NOT NULL,
    version    bigint NOT NULL CHECK (version >= 0),
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stream_id, version),
    FOREIGN KEY (tenant_id, stream_id) REFERENCES event_streams (tenant_id, id) ON DELETE CASCADE
);

-- eventstore_duplicate tells whether a batch was stored already: 'duplicate'
-- when every id is stored with the same type, data and metadata,
-- contiguously and in order, in the live incarnation of p_stream (the stored
-- versions and the last event's position, if assigned, come back);
-- 'id_conflict' when some id is stored otherwise; 'none' when no id is stored.
-- Appends only ask when they cannot go ahead (a version mismatch, or a unique
-- violation on the event id), so the common path pays nothing for it.
-- +goose StatementBegin
CREATE FUNCTION eventstore_duplicate(
    p_tenant uuid,
    p_stream text,
    p_ids    uuid[],
    p_types  text[],
    p_data   text[],
    p_meta   text[]
) RETURNS TABLE (outcome text, current_version bigint, first_version bigint, last_version bigint, last_position bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_sid   bigint;
    v_cur   bigint := -1;
    v_found bigint;
    v_same  boolean;
    v_first bigint;
    v_last  bigint;
    v_pos   bigint;
BEGIN
    SELECT s.id, s.version INTO v_sid, v_cur
      FROM event_streams s
     WHERE s.tenant_id = p_tenant AND s.name = p_stream AND s.deleted_at IS NULL;
    IF NOT FOUND THEN
        v_sid := NULL; v_cur := -1;
    END IF;
    SELECT count(*),
           coalesce(bool_and(e.stream_id = v_sid AND e.type = u.type AND e.data = u.data::jsonb
                             AND e.metadata IS NOT DISTINCT FROM u.meta::jsonb), false)
             AND count(DISTINCT e.version - u.ord) = 1,
           min(e.version), max(e.version),
           (array_agg(p.position ORDER BY e.version DESC))[1]
      INTO v_found, v_same, v_first, v_last, v_pos
      FROM unnest(p_ids, p_types, p_data, p_meta) WITH ORDINALITY AS u(id, type, data, meta, ord)
      JOIN events e ON e.tenant_id = p_tenant AND e.event_id = u.id
      LEFT JOIN event_positions p ON p.event = e.id;
    IF v_found = 0 THEN
        RETURN QUERY SELECT 'none'::text, v_cur, NULL::bigint, NULL::bigint, NULL::bigint;
    ELSIF v_found = cardinality(p_ids) AND v_same THEN
        RETURN QUERY SELECT 'duplicate'::text, v_cur, v_first, v_last, v_pos;
    ELSE
        RETURN QUERY SELECT 'id_conflict'::text, v_cur, NULL::bigint, NULL::bigint, NULL::bigint;
    END IF;
END
$fn$;
-- +goose StatementEnd

-- Appends. Writers of one stream serialize on a transaction-scoped advisory
-- lock keyed by (tenant, name), taken before the transaction writes anything.
-- That matters for the log order: a transaction gets its xid at its first
-- write, so a writer that queued behind another one on this lock always gets
-- a larger xid than the one it waited for, and (txid, id) order agrees with
-- version order inside every stream. Waiting on a row lock instead would not
-- give that: taking a row lock needs an xid, so the waiter's xid could be the
-- smaller one. Writers of different streams share no lock.
--
-- All three functions run with the caller's rights (row-level security
-- applies) and report per append an outcome: 'ok', 'duplicate' or
-- 'id_conflict' (see eventstore_duplicate), 'wrong_version', 'tombstoned',
-- or, in a group, 'busy'. An id stored already in a batch that passes the
-- version check fails the insert with a unique violation on
-- events_event_id; the caller then asks eventstore_duplicate.

-- eventstore_write appends one batch; the caller holds the stream's lock.
-- +goose StatementBegin
CREATE FUNCTION eventstore_write(
    p_tenant   uuid,
    p_stream   text,
    p_category text,
    p_expect   text,   -- 'any', 'no_stream', 'stream_exists' or 'exact'
    p_version  bigint, -- the version for 'exact'
    p_ids      uuid[],
    p_types    text[],
    p_data     text[],
    p_meta     text[],
    OUT outcome text, OUT current_version bigint, OUT first_version bigint, OUT last_version bigint, OUT last_position bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    v_sid  bigint;
    v_cur  bigint := -1;
    v_tomb boolean := false;
    v_n    bigint := cardinality(p_ids);
BEGIN
    SELECT s.id, s.version, s.tombstoned INTO v_sid, v_cur, v_tomb
      FROM event_streams s
     WHERE s.tenant_id = p_tenant AND s.name = p_stream AND s.deleted_at IS NULL;
    IF NOT FOUND THEN
        v_sid := NULL; v_cur := -1; v_tomb := false;
    END IF;
    current_version := v_cur;
    IF v_tomb THEN
        outcome := 'tombstoned';
        RETURN;
    END IF;

    IF NOT (p_expect = 'any'
            OR (p_expect = 'no_stream' AND v_cur = -1)
            OR (p_expect = 'stream_exists' AND v_cur >= 0)
            OR (p_expect = 'exact' AND v_cur = p_version)) THEN
        -- A retry of an append that committed fails here, since that append
        -- moved the version on: it is a duplicate, not a mismatch.
        SELECT d.outcome, d.first_version, d.last_version, d.last_position
          INTO outcome, first_version, last_version, last_position
          FROM eventstore_duplicate(p_tenant, p_stream, p_ids, p_types, p_data, p_meta) d;
        IF outcome = 'none' THEN
            outcome := 'wrong_version';
        END IF;
        RETURN;
    END IF;

    -- The first write: the transaction's xid is assigned here (or by an
    -- earlier write of the same transaction), after every lock it takes.
    IF v_sid IS NULL THEN
        INSERT INTO event_streams (tenant_id, name, category, version, last_write_at)
        VALUES (p_tenant, p_stream, p_category, v_cur + v_n, now())
        RETURNING id INTO v_sid;
    ELSE
        UPDATE event_streams SET version = v_cur + v_n, last_write_at = now()
         WHERE tenant_id = p_tenant AND id = v_sid;
    END IF;

    -- ORDER BY ord: identity values follow version order inside the batch.
    INSERT INTO events (tenant_id, stream_id, stream, category, version, event_id, type, data, metadata)
    SELECT p_tenant, v_sid, p_stream, p_category, v_cur + u.ord, u.id, u.type, u.data::jsonb, u.meta::jsonb
      FROM unnest(p_ids, p_types, p_data, p_meta) WITH ORDINALITY AS u(id, type, data, meta, ord)
     ORDER BY u.ord;

    outcome := 'ok';
    current_version := v_cur + v_n;
    first_version := v_cur + 1;
    last_version := v_cur + v_n;
END
$fn$;
-- +goose StatementEnd

-- eventstore_append appends one batch to one stream. With p_wait it waits
-- for the stream's lock (lock_timeout bounds the wait); without, it reports
-- 'busy' at once when another transaction holds it.
-- +goose StatementBegin
CREATE FUNCTION eventstore_append(
    p_tenant   uuid,
    p_stream   text,
    p_category text,
    p_expect   text,
    p_version  bigint,
    p_ids      uuid[],
    p_types    text[],
    p_data     text[],
    p_meta     text[],
    p_wait     boolean
) RETURNS TABLE (outcome text, current_version bigint, first_version bigint, last_version bigint, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_key bigint := hashtextextended(p_tenant::text || '/' || p_stream, 0);
BEGIN
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock(v_key);
    ELSIF NOT pg_try_advisory_xact_lock(v_key) THEN
        RETURN QUERY SELECT 'busy'::text, -1::bigint, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventstore_write(p_tenant, p_stream, p_category, p_expect, p_version, p_ids, p_types, p_data, p_meta);
END
$fn$;
-- +goose StatementEnd

-- eventstore_append_group runs several independent appends of one tenant in
-- one transaction, so concurrent appends share a commit. The events of
-- append i are p_counts[i] consecutive entries of the event arrays. It never
-- waits for a stream's lock: it tries every lock first, before any write (so
-- the ordering argument above holds for all of them), and reports 'busy' for
-- an append whose stream another transaction holds; the caller runs that
-- append alone. Appends to one stream inside a group follow each other.
-- +goose StatementBegin
CREATE FUNCTION eventstore_append_group(
    p_tenant     uuid,
    p_streams    text[],
    p_categories text[],
    p_expect     text[],
    p_versions   bigint[],
    p_counts     int[],
    p_ids        uuid[],
    p_types      text[],
    p_data       text[],
    p_meta       text[]
) RETURNS TABLE (req int, outcome text, current_version bigint, first_version bigint, last_version bigint, last_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_locked boolean[];
    v_from   int := 1;
    v_to     int;
    i        int;
BEGIN
    FOR i IN 1 .. cardinality(p_streams) LOOP
        v_locked[i] := pg_try_advisory_xact_lock(hashtextextended(p_tenant::text || '/' || p_streams[i], 0));
    END LOOP;
    FOR i IN 1 .. cardinality(p_streams) LOOP
        v_to := v_from + p_counts[i] - 1;
        req := i;
        IF v_locked[i] THEN
            SELECT w.outcome, w.current_version, w.first_version, w.last_version, w.last_position
              INTO outcome, current_version, first_version, last_version, last_position
              FROM eventstore_write(p_tenant, p_streams[i], p_categories[i], p_expect[i], p_versions[i],
                                    p_ids[v_from:v_to], p_types[v_from:v_to], p_data[v_from:v_to], p_meta[v_from:v_to]) w;
        ELSE
            outcome := 'busy'; current_version := -1; first_version := NULL; last_version := NULL; last_position := NULL;
        END IF;
        RETURN NEXT;
        v_from := v_to + 1;
    END LOOP;
END
$fn$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION eventstore_write(uuid, text, text, text, bigint, uuid[], text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore_write(uuid, text, text, text, bigint, uuid[], text[], text[], text[]) TO switchboard_app;
REVOKE ALL ON FUNCTION eventstore_append(uuid, text, text, text, bigint, uuid[], text[], text[], text[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore_append(uuid, text, text, text, bigint, uuid[], text[], text[], text[], boolean) TO switchboard_app;
REVOKE ALL ON FUNCTION eventstore_append_group(uuid, text[], text[], text[], bigint[], int[], uuid[], text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore_append_group(uuid, text[], text[], text[], bigint[], int[], uuid[], text[], text[], text[]) TO switchboard_app;
REVOKE ALL ON FUNCTION eventstore_duplicate(uuid, text, uuid[], text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore_duplicate(uuid, text, uuid[], text[], text[], text[]) TO switchboard_app;

-- Row-level security exactly as in 00001. The sequencer runs as the owning
-- role, which bypasses it, because it works across tenants.
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_streams', 'events', 'event_positions', 'event_log_heads', 'event_snapshots'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END
$$;
-- +goose StatementEnd
GRANT SELECT, INSERT, UPDATE, DELETE ON event_streams TO switchboard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_snapshots TO switchboard_app;
-- The log is append-only for the app role: no UPDATE or DELETE; positions
-- are the sequencer's alone.
GRANT SELECT, INSERT ON events TO switchboard_app;
GRANT SELECT ON event_positions, event_log_heads TO switchboard_app;
GRANT USAGE ON SEQUENCE event_streams_id_seq, events_id_seq TO switchboard_app;

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
