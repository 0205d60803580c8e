-- +goose Up
-- A replay no longer rewrites every message it takes when it starts: a
-- message is replaying while a replay item of it is pending (the item is
-- the claim), and its stored status stays dead until the broker confirms
-- it. Starting a replay of 20,000 messages was one rewritten row per
-- message (body and five index entries each) and a foreign-key check per
-- item; now it is one narrow item row each.
UPDATE dlq_messages SET status = 'dead' WHERE status = 'replaying';
ALTER TABLE dlq_messages DROP CONSTRAINT dlq_messages_status_check;
ALTER TABLE dlq_messages ADD CONSTRAINT dlq_messages_status_check CHECK (status IN ('dead', 'replayed', 'discarded'));

-- Messages are never deleted but with their tenant (which takes the
-- replays, and their items, with it): the per-item check against
-- dlq_messages bought nothing.
ALTER TABLE dlq_replay_items DROP CONSTRAINT IF EXISTS dlq_replay_items_tenant_id_message_id_fkey;

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
