-- +goose Up
-- Identity: proven email addresses, invitations kept apart from users, and
-- single-use verification links.

-- NULL until the user follows a verification link sent to the address.
-- Existing users start unverified: nothing proved their address.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- An invitation is a role waiting for an address to be proved: it becomes a
-- membership when a user with that address verifies it (or at once, when the
-- address already belongs to a verified user). Emails are stored lower-cased,
-- as users.email is matched.
CREATE TABLE invitations (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email      text NOT NULL CHECK (email = lower(email)),
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'operator', 'viewer')),
    invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, email)
);
-- Verification looks up every tenant's invitations of one address.
CREATE INDEX invitations_email_idx ON invitations (email);

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO switchboard_app;

-- Users that were only invited (no password: they never signed up) would go
-- to whoever signs up first with their address. Their memberships become
-- invitations, each recorded in the tenant's audit log, and the rows go
-- (memberships and team places cascade).
INSERT INTO invitations (tenant_id, email, role, created_at)
SELECT m.tenant_id, lower(u.email), m.role, m.created_at
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE u.password_hash IS NULL
ON CONFLICT DO NOTHING;

INSERT INTO audit_log (tenant_id, actor, action, object_kind, object_id, before, after)
SELECT m.tenant_id, 'system', 'member.invited', 'member', lower(u.email),
       jsonb_build_object('user_id', u.id, 'email', u.email, 'role', m.role, 'status', 'active'),
       jsonb_build_object('email', lower(u.email), 'role', m.role, 'status', 'invited', 'invited_at', m.created_at)
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE u.password_hash IS NULL;

DELETE FROM users WHERE password_hash IS NULL;

-- Every user has a password from now on; a server of the previous version
-- that still tries to create an invited user fails instead of creating one
-- that could be claimed.
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;

-- Verification links are signed and carry a random nonce; a link is spent
-- when its nonce is recorded here. A row is useless once the link itself has
-- expired, and is swept then.
CREATE TABLE email_verification_uses (
    nonce      bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX email_verification_uses_expires_idx ON email_verification_uses (expires_at);

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
