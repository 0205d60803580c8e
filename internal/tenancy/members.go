package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

const memberSQL = `SELECT u.id, u.email, u.name, m.role, m.created_at
	FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1`

func scanMember(r pgx.Row) (Member, error) {
	var m Member
	err := r.Scan(&m.UserID, &m.Email, &m.Name, &m.Role, &m.JoinedAt)
	return m, err
}

// ListMembers returns a page of tenant's members ordered by email.
func (s *Store) ListMembers(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]Member, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var out []Member
	err = s.db.ReadTenant(ctx, tenant, memberSQL+` AND lower(u.email) > $2 ORDER BY lower(u.email) LIMIT $3`,
		[]any{tenant, after, limit + 1}, func(r pgx.Rows) error {
			m, err := scanMember(r)
			out = append(out, m)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list members: %w", err)
	}
	out, next := database.Page(out, limit, func(m Member) string { return strings.ToLower(m.Email) })
	return out, next, nil
}

func validateGrant(granter, role Role) error {
	if !role.Valid() {
		return problem.Invalid(map[string]string{"role": "must be one of owner, admin, editor, operator, viewer"})
	}
	if !granter.AtLeast(role) {
		return problem.Errorf(problem.CodeForbidden, "%s cannot grant the %s role", withArticle(granter), role)
	}
	return nil
}

// AddMember gives the user with email role in tenant. A user with no account
// yet is created as invited: they set a password when they sign up with that
// address. granter is the role of whoever adds the member.
func (s *Store) AddMember(ctx context.Context, tenant uuid.UUID, granter Role, email string, role Role) (Member, error) {
	addr, ok := NormalizeEmail(email)
	if !ok {
		return Member{}, problem.Invalid(map[string]string{"email": "must be an email address"})
	}
	if err := validateGrant(granter, role); err != nil {
		return Member{}, err
	}
	var m Member
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// users is global: create the invited user before scoping to the tenant.
		var userID uuid.UUID
		err := tx.QueryRow(ctx, `WITH ins AS (
				INSERT INTO users (email, name) VALUES ($1, split_part($1, '@', 1))
				ON CONFLICT (lower(email)) DO NOTHING RETURNING id)
			SELECT id FROM ins UNION ALL SELECT id FROM users WHERE lower(email) = $1 LIMIT 1`, addr).Scan(&userID)
		if err != nil {
			return fmt.Errorf("find or invite user: %w", err)
		}
		if err := database.Scope(ctx, tx, tenant); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)`, tenant, userID, role)
		if database.IsUniqueViolation(err, "") {
			return problem.Errorf(problem.CodeConflict, "%s is already a member", addr)
		}
		if err != nil {
			return fmt.Errorf("add member: %w", err)
		}
		if m, err = scanMember(tx.QueryRow(ctx, memberSQL+` AND m.user_id = $2`, tenant, userID)); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "member.added", ObjectKind: "member", ObjectID: addr, After: m})
	})
	return m, err
}

// getMemberForUpdate locks and returns a member in a scoped transaction.
func getMemberForUpdate(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID) (Member, error) {
	m, err := scanMember(tx.QueryRow(ctx, memberSQL+` AND m.user_id = $2 FOR UPDATE OF m`, tenant, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, problem.NotFound("member", user.String())
	}
	return m, err
}

// ensureAnotherOwner fails when user is the tenant's last owner. It locks
// the owners' rows so two concurrent demotions cannot both pass.
func ensureAnotherOwner(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID) error {
	rows, err := tx.Query(ctx, `SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE`, tenant)
	if err != nil {
		return err
	}
	others := 0
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		if id != user {
			others++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if others == 0 {
		return problem.Errorf(problem.CodeConflict, "a tenant must keep at least one owner")
	}
	return nil
}

// SetMemberRole changes a member's role. granter must hold at least both the
// old and the new role, and the last owner cannot be demoted.
func (s *Store) SetMemberRole(ctx context.Context, tenant uuid.UUID, granter Role, user uuid.UUID, role Role) (Member, error) {
	if err := validateGrant(granter, role); err != nil {
		return Member{}, err
	}
	var m Member
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := getMemberForUpdate(ctx, tx, tenant, user)
		if err != nil {
			return err
		}
		if !granter.AtLeast(before.Role) {
			return problem.Errorf(problem.CodeForbidden, "%s cannot change the role of %s", withArticle(granter), withArticle(before.Role))
		}
		if before.Role == Owner && role != Owner {
			if err := ensureAnotherOwner(ctx, tx, tenant, user); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2`, tenant, user, role); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		m = before
		m.Role = role
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "member.role_changed", ObjectKind: "member", ObjectID: m.Email, Before: before, After: m})
	})
	return m, err
}

// RemoveMember removes user from tenant (and its teams). The last owner
// cannot be removed.
func (s *Store) RemoveMember(ctx context.Context, tenant uuid.UUID, granter Role, user uuid.UUID) error {
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := getMemberForUpdate(ctx, tx, tenant, user)
		if err != nil {
			return err
		}
		if !granter.AtLeast(before.Role) {
			return problem.Errorf(problem.CodeForbidden, "%s cannot remove %s", withArticle(granter), withArticle(before.Role))
		}
		if before.Role == Owner {
			if err := ensureAnotherOwner(ctx, tx, tenant, user); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenant, user); err != nil {
			return fmt.Errorf("remove member: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "member.removed", ObjectKind: "member", ObjectID: before.Email, Before: before})
	})
}
