-- +goose Up
-- The tenant the server's own spans (its requests) are stored in. No one
-- is its member: the platform's operators (SWITCHBOARD_OPERATORS, once
-- they confirmed their address) read it as viewers, and its slug cannot be
-- taken by a tenant someone creates.
INSERT INTO tenants (id, slug, name) VALUES ('00000000-0000-4000-8000-000000000001', 'switchboard-system', 'Switchboard itself')
ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM tenants WHERE id = '00000000-0000-4000-8000-000000000001';
