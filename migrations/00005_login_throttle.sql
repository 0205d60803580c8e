-- +goose Up
-- Sign-in rate limits, shared by every replica: one row per throttled key
-- (an address or an email, stored as a SHA-256 hash) holding the bucket's
-- theoretical arrival time (GCRA): the bucket is full again at tat. Rows
-- whose tat has passed say nothing and are swept.
CREATE TABLE login_throttle (
    key_hash bytea PRIMARY KEY,
    tat      timestamptz NOT NULL
);
CREATE INDEX login_throttle_tat_idx ON login_throttle (tat);

-- +goose Down
DROP TABLE login_throttle;
