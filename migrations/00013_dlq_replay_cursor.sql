-- +goose Up
-- A replay's runner no longer marks each batch sending: the job row keeps
-- the highest seq handed to the broker (sent_through), so an item is being
-- sent when it is pending at or below it. One write per batch instead of
-- one per message; the items' state is no longer indexed, so marking one
-- confirmed is a heap-only update (room left on each page for it).
ALTER TABLE dlq_replays ADD COLUMN sent_through int NOT NULL DEFAULT 0;

UPDATE dlq_replays r SET sent_through = s.hi
FROM (SELECT tenant_id, replay_id, max(seq) AS hi FROM dlq_replay_items WHERE state = 'sending' GROUP BY tenant_id, replay_id) s
WHERE r.tenant_id = s.tenant_id AND r.id = s.replay_id;
UPDATE dlq_replay_items SET state = 'pending' WHERE state = 'sending';

ALTER TABLE dlq_replay_items DROP CONSTRAINT dlq_replay_items_state_check;
ALTER TABLE dlq_replay_items ADD CONSTRAINT dlq_replay_items_state_check CHECK (state IN ('pending', 'confirmed', 'failed', 'skipped'));
DROP INDEX dlq_replay_items_todo;
ALTER TABLE dlq_replay_items SET (fillfactor = 50);

-- A Kafka DLQ topic's own conventions (see dlq.KafkaSettings): the header
-- naming the original topic, and the per-consumer-group retry topic.
ALTER TABLE dlq_settings ADD COLUMN kafka jsonb NOT NULL DEFAULT '{}';

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
