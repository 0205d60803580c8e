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
	m := Member{Status: Active}
	err := r.Scan(&m.UserID, &m.Email, &m.Name, &m.Role, &m.JoinedAt)
	return m, err
}

// ListMembers returns a page of tenant's members ordered by email. Pending
// invitations are not members: ListInvitations lists them.
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

// lockTenant takes the tenant's row lock that every change to its members
// and invitations holds, so such changes run one after another: two owners
// demoting each other cannot both pass the last-owner check, and none waits
// on another's member rows in the opposite order (which deadlocked). FOR NO
// KEY UPDATE does not block the FOR KEY SHARE that inserts referencing the
// tenant take, so the tenant's other writes go on. tx must be scoped.
func lockTenant(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
	var id uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM tenants WHERE id = $1 FOR NO KEY UPDATE`, tenant).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return problem.NotFound("tenant", tenant.String())
	}
	if err != nil {
		return fmt.Errorf("lock tenant: %w", err)
	}
	return nil
}

// currentRole returns the role g may act with now: g.Role capped by g's
// current membership, read under the tenant lock. A granter who is no
// longer a member may do nothing.
func currentRole(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, g Granter) (Role, error) {
	if g.UserID == uuid.Nil {
		return g.Role, nil
	}
	var role Role
	err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenant, g.UserID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", problem.Errorf(problem.CodeConflict, "you were removed from this tenant while this change waited; nothing was changed")
	}
	if err != nil {
		return "", fmt.Errorf("granter's role: %w", err)
	}
	if cur := g.Role.Meet(role); cur != g.Role {
		// Demoted by a change that committed while this one waited for the
		// tenant lock: this request lost that race, and says so.
		return "", problem.Errorf(problem.CodeConflict, "your own role changed to %s while this change waited; nothing was changed", cur)
	}
	return g.Role, nil
}

// getMemberForUpdate locks and returns a member in a scoped transaction.
func getMemberForUpdate(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID) (Member, error) {
	m, err := scanMember(tx.QueryRow(ctx, memberSQL+` AND m.user_id = $2 FOR UPDATE OF m`, tenant, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, problem.NotFound("member", user.String())
	}
	return m, err
}

// ensureAnotherOwner fails when user is the tenant's last owner. The caller
// holds the tenant lock, so no other change to the owners runs meanwhile.
func ensureAnotherOwner(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID) error {
	var others int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner' AND user_id <> $2`, tenant, user).Scan(&others)
	if err != nil {
		return fmt.Errorf("count owners: %w", err)
	}
	if others == 0 {
		return problem.Errorf(problem.CodeConflict, "a tenant must keep at least one owner")
	}
	return nil
}

// SetMemberRole changes a member's role. The granter must hold at least both
// the old and the new role, and the last owner cannot be demoted. Changes to
// one tenant's members run one at a time; one that lost a race to the last
// owner is a conflict.
func (s *Store) SetMemberRole(ctx context.Context, tenant uuid.UUID, g Granter, user uuid.UUID, role Role) (Member, error) {
	if err := validateGrant(g.Role, role); err != nil {
		return Member{}, err
	}
	var m Member
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		before, err := getMemberForUpdate(ctx, tx, tenant, user)
		if err != nil {
			return err
		}
		// Whether this granter may make the change at all comes first: one
		// who may not is refused as such, whatever the tenant's owners.
		granter, err := currentRole(ctx, tx, tenant, g)
		if err != nil {
			return err
		}
		if err := validateGrant(granter, role); err != nil {
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
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant, User: user})
	}
	return m, err
}

// RemoveMember removes user from tenant (and its teams). The last owner
// cannot be removed; like SetMemberRole it runs alone among the tenant's
// member changes.
func (s *Store) RemoveMember(ctx context.Context, tenant uuid.UUID, g Granter, user uuid.UUID) error {
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		before, err := getMemberForUpdate(ctx, tx, tenant, user)
		if err != nil {
			return err
		}
		granter, err := currentRole(ctx, tx, tenant, g)
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
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant, User: user})
	}
	return err
}
