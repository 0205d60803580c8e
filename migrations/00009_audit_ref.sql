-- +goose Up
-- Audit entries are named by a random id, not by the table's identity: the
-- identity counts every tenant's changes, and an answer that showed it
-- would let one tenant watch the others' rate of change. Pages are read
-- newest first by (at, ref).
ALTER TABLE audit_log ADD COLUMN ref uuid NOT NULL DEFAULT gen_random_uuid();
-- Each entry's own time, so the entries of one transaction keep their order.
ALTER TABLE audit_log ALTER COLUMN at SET DEFAULT clock_timestamp();
CREATE INDEX audit_log_page_idx ON audit_log (tenant_id, at DESC, ref DESC);

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
