-- +goose Up
-- Sign-in rate limits, shared by every replica: one row per throttled key
-- (an address or an email, stored as an HMAC) holding the bucket's
-- theoretical arrival time (GCRA): the bucket is full again at tat; allowed
-- says whether the latest attempt was let through. Rows whose tat has
-- passed say nothing and are swept every minute, so the table stays small
-- and needs no index beyond its key (updates stay HOT).
CREATE TABLE login_throttle (
    key_hash bytea PRIMARY KEY,
    tat      timestamptz NOT NULL,
    allowed  boolean NOT NULL
);

-- +goose Down
DROP TABLE login_throttle;
