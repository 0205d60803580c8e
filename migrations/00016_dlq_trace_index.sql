-- +goose NO TRANSACTION
-- +goose Up
-- A trace's page lists the dead letters the trace produced: those whose
-- traceparent ("00-<trace id>-<span id>-<flags>") names it. Built
-- concurrently: capture keeps inserting while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS dlq_messages_trace ON dlq_messages (tenant_id, traceparent text_pattern_ops) WHERE traceparent <> '';

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
