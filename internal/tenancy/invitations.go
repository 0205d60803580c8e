package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// lockAddress serialises, per address, adding a member and verifying the
// address, so an invitation is never stored for a user who verified in
// between (it would wait for a verification that already happened). Run it
// before anything else of the transaction that concerns the address.
func lockAddress(ctx context.Context, tx pgx.Tx, addr string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('switchboard address ' || $1, 0))`, addr); err != nil {
		return fmt.Errorf("lock address: %w", err)
	}
	return nil
}

func invitationView(email string, role Role, at time.Time) Member {
	return Member{Email: email, Role: role, Status: Invited, InvitedAt: at}
}

// AddMember gives the address email role in tenant. When the address belongs
// to a verified user they become a member at once (audited member.added);
// otherwise an invitation is stored (member.invited) and becomes a
// membership when a user proves the address (VerifyUserTx). The returned
// Member's Status says which. The granter must hold at least role.
func (s *Store) AddMember(ctx context.Context, tenant uuid.UUID, g Granter, email string, role Role) (Member, error) {
	addr, ok := NormalizeEmail(email)
	if !ok {
		return Member{}, problem.Invalid(map[string]string{"email": "must be an email address"})
	}
	if err := validateGrant(g.Role, role); err != nil {
		return Member{}, err
	}
	var m Member
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if err := lockAddress(ctx, tx, addr); err != nil {
			return err
		}
		// users is global, outside the app role's reach: read it before
		// scoping to the tenant.
		var user uuid.UUID
		var verified bool
		err := tx.QueryRow(ctx, `SELECT id, email_verified_at IS NOT NULL FROM users WHERE lower(email) = $1`, addr).Scan(&user, &verified)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("find user: %w", err)
		}
		if err := database.Scope(ctx, tx, tenant); err != nil {
			return err
		}
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		granter, err := currentRole(ctx, tx, tenant, g)
		if err != nil {
			return err
		}
		if err := validateGrant(granter, role); err != nil {
			return err
		}
		if user != uuid.Nil {
			var member bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships WHERE tenant_id = $1 AND user_id = $2)`, tenant, user).Scan(&member); err != nil {
				return fmt.Errorf("find member: %w", err)
			}
			if member {
				return problem.Errorf(problem.CodeConflict, "%s is already a member", addr)
			}
		}
		if verified {
			if _, err := tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)`, tenant, user, role); err != nil {
				return fmt.Errorf("add member: %w", err)
			}
			if m, err = scanMember(tx.QueryRow(ctx, memberSQL+` AND m.user_id = $2`, tenant, user)); err != nil {
				return err
			}
			return audit.Record(ctx, tx, tenant, audit.Change{Action: "member.added", ObjectKind: "member", ObjectID: addr, After: m})
		}
		var invitedBy *uuid.UUID
		if a := audit.ActorFrom(ctx); a.ID != uuid.Nil {
			invitedBy = &a.ID
		}
		var at time.Time
		err = tx.QueryRow(ctx, `INSERT INTO invitations (tenant_id, email, role, invited_by) VALUES ($1, $2, $3, $4) RETURNING created_at`,
			tenant, addr, role, invitedBy).Scan(&at)
		if database.IsUniqueViolation(err, "") {
			return problem.Errorf(problem.CodeConflict, "%s is already invited", addr)
		}
		if err != nil {
			return fmt.Errorf("invite: %w", err)
		}
		m = invitationView(addr, role, at)
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "member.invited", ObjectKind: "member", ObjectID: addr, After: m})
	})
	return m, err
}

// invitationSQL names the inviter when they can still be seen: a member of
// the tenant (row-level security hides everyone else).
const invitationSQL = `SELECT i.email, i.role, i.created_at, coalesce(u.email, '')
	FROM invitations i LEFT JOIN users u ON u.id = i.invited_by WHERE i.tenant_id = $1`

func scanInvitation(r pgx.Row) (Member, error) {
	var m Member
	err := r.Scan(&m.Email, &m.Role, &m.InvitedAt, &m.InvitedBy)
	m.Status = Invited
	return m, err
}

// ListInvitations returns a page of tenant's pending invitations ordered by
// email, as Members with Status Invited.
func (s *Store) ListInvitations(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]Member, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var out []Member
	err = s.db.ReadTenant(ctx, tenant, invitationSQL+` AND i.email > $2 ORDER BY i.email LIMIT $3`,
		[]any{tenant, after, limit + 1}, func(r pgx.Rows) error {
			m, err := scanInvitation(r)
			out = append(out, m)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list invitations: %w", err)
	}
	out, next := database.Page(out, limit, func(m Member) string { return m.Email })
	return out, next, nil
}

// CancelInvitation withdraws the pending invitation of email. The granter
// must hold at least the invitation's role.
func (s *Store) CancelInvitation(ctx context.Context, tenant uuid.UUID, g Granter, email string) error {
	addr, ok := NormalizeEmail(email)
	if !ok {
		return problem.NotFound("invitation", email)
	}
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		before, err := scanInvitation(tx.QueryRow(ctx, invitationSQL+` AND i.email = $2 FOR UPDATE OF i`, tenant, addr))
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("invitation", addr)
		}
		if err != nil {
			return fmt.Errorf("get invitation: %w", err)
		}
		granter, err := currentRole(ctx, tx, tenant, g)
		if err != nil {
			return err
		}
		if !granter.AtLeast(before.Role) {
			return problem.Errorf(problem.CodeForbidden, "%s cannot cancel an invitation as %s", withArticle(granter), withArticle(before.Role))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM invitations WHERE tenant_id = $1 AND email = $2`, tenant, addr); err != nil {
			return fmt.Errorf("cancel invitation: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "invitation.cancelled", ObjectKind: "member", ObjectID: addr, Before: before})
	})
}

// claimInvitationsTx turns every pending invitation of u's address into a
// membership. It reads the invitations across tenants before any scope (as
// Membership does: it is what grants the scope), then scopes tx to each
// tenant in id order, so two claims never lock tenants in opposite orders.
func claimInvitationsTx(ctx context.Context, tx pgx.Tx, u User) ([]Tenant, error) {
	type pending struct {
		tenant Tenant
		role   Role
		at     time.Time
	}
	addr := strings.ToLower(u.Email)
	rows, err := tx.Query(ctx, `SELECT t.id, t.slug, t.name, t.created_at, i.role, i.created_at
		FROM invitations i JOIN tenants t ON t.id = i.tenant_id WHERE i.email = $1 ORDER BY t.id`, addr)
	if err != nil {
		return nil, fmt.Errorf("find invitations: %w", err)
	}
	invs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pending, error) {
		var p pending
		err := r.Scan(&p.tenant.ID, &p.tenant.Slug, &p.tenant.Name, &p.tenant.CreatedAt, &p.role, &p.at)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("find invitations: %w", err)
	}
	var joined []Tenant
	for _, p := range invs {
		t := p.tenant.ID
		if err := database.Scope(ctx, tx, t); err != nil {
			return nil, err
		}
		if err := lockTenant(ctx, tx, t); err != nil {
			return nil, err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM invitations WHERE tenant_id = $1 AND email = $2`, t, addr)
		if err != nil {
			return nil, fmt.Errorf("claim invitation: %w", err)
		}
		if tag.RowsAffected() == 0 {
			continue // cancelled since it was read
		}
		before := invitationView(addr, p.role, p.at)
		tag, err = tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, t, u.ID, p.role)
		if err != nil {
			return nil, fmt.Errorf("join tenant: %w", err)
		}
		if tag.RowsAffected() == 0 {
			// Already a member (AddMember refuses such an invitation; only a
			// race leaves one): the invitation goes, the membership stays.
			if err := audit.Record(ctx, tx, t, audit.Change{Action: "invitation.cancelled", ObjectKind: "member", ObjectID: addr, Before: before}); err != nil {
				return nil, err
			}
			continue
		}
		after, err := scanMember(tx.QueryRow(ctx, memberSQL+` AND m.user_id = $2`, t, u.ID))
		if err != nil {
			return nil, fmt.Errorf("read member: %w", err)
		}
		if err := audit.Record(ctx, tx, t, audit.Change{Action: "member.joined", ObjectKind: "member", ObjectID: addr, Before: before, After: after}); err != nil {
			return nil, err
		}
		joined = append(joined, p.tenant)
	}
	return joined, nil
}
