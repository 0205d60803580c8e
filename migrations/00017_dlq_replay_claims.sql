-- +goose Up
-- A replay no longer rewrites every message it takes when it starts: a
-- message is replaying while a replay item of it is pending (the item is
-- the claim), and its stored status stays dead until the broker confirms
-- it. Starting a replay of 20,000 messages was one rewritten row per
-- message (body and five index entries each) and a foreign-key check per
-- item; now it is one narrow item row each.
--
-- Replicas of an earlier release must be stopped before this one starts:
-- their runners mark replayed only the messages they marked replaying.
-- The status check still allows 'replaying' (no row has it after this),
-- so that adding no constraint scans the table under a lock.
UPDATE dlq_messages SET status = 'dead' WHERE status = 'replaying';

-- Messages are never deleted but with their tenant (which takes the
-- replays, and their items, with it): the per-item check against
-- dlq_messages bought nothing.
ALTER TABLE dlq_replay_items DROP CONSTRAINT IF EXISTS dlq_replay_items_tenant_id_message_id_fkey;

-- What a cancelled replay's runner may still record, looked for by every
-- replica's runner loop (Runner.releaseCancelled).
CREATE INDEX dlq_replays_cancelled ON dlq_replays (lease_until) WHERE state = 'cancelled' AND lease_until IS NOT NULL;

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
