-- +goose Up
-- Every change that can narrow someone's rights notifies the channel
-- switchboard_auth with "tenant:user:token" (empty parts match any), so each
-- replica's live hub re-checks the open streams of whoever it names and
-- closes those that lost their right (see internal/live). A notification is
-- sent when the transaction commits, never for one that rolls back.
-- +goose StatementBegin
CREATE FUNCTION switchboard_rights_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r      record;
    tenant text := '';
    usr    text := '';
    tok    text := '';
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    CASE TG_TABLE_NAME
        WHEN 'memberships', 'team_members' THEN
            tenant := r.tenant_id::text;
            usr := r.user_id::text;
        WHEN 'api_tokens' THEN
            tenant := r.tenant_id::text;
            tok := r.id::text;
        WHEN 'sessions' THEN
            usr := r.user_id::text;
        WHEN 'users' THEN
            usr := r.id::text;
        WHEN 'tenants' THEN
            tenant := r.id::text;
    END CASE;
    PERFORM pg_notify('switchboard_auth', tenant || ':' || usr || ':' || tok);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER rights_changed AFTER UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION switchboard_rights_changed();
CREATE TRIGGER rights_changed AFTER INSERT OR DELETE ON team_members
    FOR EACH ROW EXECUTE FUNCTION switchboard_rights_changed();
CREATE TRIGGER rights_changed AFTER UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION switchboard_rights_changed();
CREATE TRIGGER rights_changed AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION switchboard_rights_changed();
CREATE TRIGGER rights_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION switchboard_rights_changed();
-- A policy change bumps policy_version; it may narrow anyone's rights in
-- the tenant.
CREATE TRIGGER rights_changed AFTER UPDATE OF policy_version OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION switchboard_rights_changed();

-- +goose Down
-- Forward-only: migrations are never rolled back in place.
SELECT 1;
