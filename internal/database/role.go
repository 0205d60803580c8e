package database

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AllowSuperuserSetting is the setting that lets the server run on a role
// CheckRole refuses. It is named in CheckRole's error so an operator knows
// what to change.
const AllowSuperuserSetting = "SWITCHBOARD_DATABASE_ALLOW_SUPERUSER"

// ErrPrivilegedRole is wrapped by CheckRole's error when the connecting role
// could step around row-level security.
var ErrPrivilegedRole = errors.New("the database role bypasses row-level security")

// CreateRoleSQL is what an operator runs, as a superuser, to give Switchboard
// a role of its own. CREATEROLE lets the migrations create the NOLOGIN role
// switchboard_app that tenant-scoped transactions assume, and grant it to
// this role; owning the database lets them create the tables.
const CreateRoleSQL = `CREATE ROLE switchboard LOGIN PASSWORD 'choose-one' NOSUPERUSER NOBYPASSRLS CREATEROLE; ` +
	`CREATE DATABASE switchboard OWNER switchboard;`

// privilegedRoleSQL finds a role that makes the session skip row-level
// security: the login role itself, or any role it may SET ROLE to, being a
// superuser or having BYPASSRLS. session_user, not current_user: whatever
// role a connection has switched to, it can always go back to its login
// role, so that is the one that counts. For a superuser pg_has_role is true
// of every role; the ORDER BY names the login role itself first.
const privilegedRoleSQL = `SELECT session_user::text, r.rolname::text, r.rolsuper, r.rolbypassrls
	FROM pg_roles r
	WHERE (r.rolsuper OR r.rolbypassrls) AND pg_has_role(session_user, r.oid, 'MEMBER')
	ORDER BY r.rolname = session_user DESC, r.rolname
	LIMIT 1`

// CheckRole fails when the connecting role bypasses row-level security: a
// superuser, a role with BYPASSRLS, or one that can SET ROLE to such a role.
// Such a role makes the tenant wall a single one, since a statement that
// switches back to the login role leaves every policy behind. With
// allowSuperuser the check is skipped; the caller should say so in its log.
func (db *DB) CheckRole(ctx context.Context, allowSuperuser bool) error {
	if allowSuperuser {
		return nil
	}
	var login, role string
	var super, bypass bool
	err := db.Pool.QueryRow(ctx, privilegedRoleSQL).Scan(&login, &role, &super, &bypass)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check database role: %w", err)
	}
	var why string
	switch {
	case role == login && super:
		why = fmt.Sprintf("role %q is a superuser", login)
	case role == login:
		why = fmt.Sprintf("role %q has BYPASSRLS", login)
	case super:
		why = fmt.Sprintf("role %q can SET ROLE to %q, a superuser", login, role)
	default:
		why = fmt.Sprintf("role %q can SET ROLE to %q, which has BYPASSRLS", login, role)
	}
	return fmt.Errorf("%w: %s, so PostgreSQL does not apply the tenant policies to it. "+
		"Connect as a role made for Switchboard instead: as a superuser run %s "+
		"(an existing database also needs ALTER DATABASE ... OWNER TO switchboard and, inside it, its tables, sequences and functions given to switchboard), "+
		"then put that role in DATABASE_URL. To run as %q anyway, set %s=true",
		ErrPrivilegedRole, why, CreateRoleSQL, login, AllowSuperuserSetting)
}
