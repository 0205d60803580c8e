-- +goose Up
-- Log positions per committed transaction instead of per event
-- (internal/eventstore, doc.go has the argument). The sequencer numbers a
-- tenant's events in (txid, id) order and never splits a transaction, so
-- the events one transaction appended for a tenant hold consecutive
-- positions: one narrow row (where the run starts, how long it is) says
-- where each of them sits. An event's position is its run's first position
-- plus its rank by id inside the transaction. The sequencer thus writes one
-- row per commit, however many events it carried, where event_positions
-- took a row and three index entries per event (and a position column on
-- events would rewrite every wide row, in every index, once more).

CREATE TABLE event_commits (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    txid           xid8 NOT NULL,
    first_position bigint NOT NULL CHECK (first_position > 0),
    events         int NOT NULL CHECK (events > 0),
    -- Log reads walk a tenant's runs in position order from here: the
    -- whole row is in the index, so the walk never visits the table.
    PRIMARY KEY (tenant_id, first_position) INCLUDE (txid, events)
);
-- A stream read finds the run of an event by its transaction.
CREATE UNIQUE INDEX event_commits_txid ON event_commits (tenant_id, txid) INCLUDE (first_position);

-- The log order, with the tenant beside the transaction: a run's events are
-- one transaction's events of one tenant, read in id order, and an event's
-- rank in its run is counted on this index. The sequencer still walks it in
-- txid order.
CREATE INDEX events_txn ON events (txid, tenant_id, id);
DROP INDEX events_txid;

-- Category reads walk a category's events in log order, which is (txid, id)
-- order inside a tenant.
CREATE INDEX events_category ON events (tenant_id, category, txid, id);

-- No foreign key from events to their stream: its check is a query per
-- appended row, over a quarter of an append's cost. Events are written by
-- eventstore_write alone, with the id of the stream row it has just
-- written in the same transaction, so the key has nothing to catch there;
-- what it did besides, removing a removed stream's events, a statement
-- trigger does (streams go only with their tenant). It runs with its
-- owner's rights, as the key's cascade did: the app role may not delete
-- events, and the rows it is given are only those the deleting statement
-- could see.
ALTER TABLE events DROP CONSTRAINT events_tenant_id_stream_id_fkey;
-- +goose StatementBegin
CREATE FUNCTION eventstore_streams_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
    DELETE FROM events e USING gone g WHERE e.tenant_id = g.tenant_id AND e.stream_id = g.id;
    RETURN NULL;
END
$fn$;
-- +goose StatementEnd
CREATE TRIGGER streams_deleted AFTER DELETE ON event_streams
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_streams_deleted();

-- Existing positions. The sequencer may have stopped inside a transaction
-- (its batches used to count events); the rest of that transaction is
-- committed (it was below the horizon) and is positioned here, after the
-- tenant's head, in id order, exactly as the sequencer would have.
WITH mark AS (
    SELECT txid, event FROM event_sequencer WHERE singleton
), rest AS (
    SELECT e.id, e.tenant_id, e.category,
           row_number() OVER (PARTITION BY e.tenant_id ORDER BY e.id) AS rn
      FROM events e, mark
     WHERE e.txid = mark.txid AND e.id > mark.event
), counts AS (
    SELECT tenant_id, count(*) AS n FROM rest GROUP BY tenant_id
), heads AS (
    INSERT INTO event_log_heads AS h (tenant_id, position)
    SELECT tenant_id, n FROM counts
    ON CONFLICT (tenant_id) DO UPDATE SET position = h.position + EXCLUDED.position
    RETURNING h.tenant_id, h.position
)
INSERT INTO event_positions (tenant_id, position, event, category)
SELECT rest.tenant_id, heads.position - counts.n + rest.rn, rest.id, rest.category
  FROM rest JOIN counts USING (tenant_id) JOIN heads USING (tenant_id);

INSERT INTO event_commits (tenant_id, txid, first_position, events)
SELECT p.tenant_id, e.txid, min(p.position), count(*)
  FROM event_positions p JOIN events e ON e.id = p.event
 GROUP BY p.tenant_id, e.txid;

-- The mark is now a transaction: everything up to and including it is
-- positioned.
ALTER TABLE event_sequencer DROP COLUMN event;

-- eventstore_duplicate as in 00003, with the last event's position taken
-- from its transaction's run.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION eventstore_duplicate(
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
           (array_agg((SELECT c.first_position
                              + (SELECT count(*) FROM events x WHERE x.txid = e.txid AND x.tenant_id = e.tenant_id AND x.id < e.id)
                         FROM event_commits c WHERE c.tenant_id = e.tenant_id AND c.txid = e.txid)
                      ORDER BY e.version DESC))[1]
      INTO v_found, v_same, v_first, v_last, v_pos
      FROM unnest(p_ids, p_types, p_data, p_meta) WITH ORDINALITY AS u(id, type, data, meta, ord)
      JOIN events e ON e.tenant_id = p_tenant AND e.event_id = u.id;
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

DROP TABLE event_positions;

-- Row-level security exactly as in 00003; the sequencer, as the owning
-- role, writes the runs, and the app role only reads them.
ALTER TABLE event_commits ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON event_commits
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT ON event_commits TO switchboard_app;

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
