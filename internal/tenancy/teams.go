package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

const teamSQL = `SELECT t.id, t.slug, t.name, t.version, t.created_at, t.updated_at,
	coalesce((SELECT array_agg(u.email ORDER BY lower(u.email)) FROM team_members x JOIN users u ON u.id = x.user_id
	          WHERE x.tenant_id = t.tenant_id AND x.team_id = t.id), '{}')
	FROM teams t WHERE t.tenant_id = $1`

// Object is the team as authorization sees it: a team is owned by itself,
// so a rule such as hasTeam(r.sub, r.obj.Team) lets a team's members manage
// their own team.
func (t Team) Object(tenant uuid.UUID) access.Object {
	return access.Object{Tenant: tenant, Kind: "team", Name: t.Slug, Team: t.Slug}
}

func scanTeam(r pgx.Row) (Team, error) {
	var t Team
	err := r.Scan(&t.ID, &t.Slug, &t.Name, &t.Version, &t.CreatedAt, &t.UpdatedAt, &t.Members)
	return t, err
}

func getTeam(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, slug string, lock bool) (Team, error) {
	if !ValidSlug(slug) {
		return Team{}, problem.NotFound("team", slug)
	}
	q := teamSQL + ` AND t.slug = $2`
	if lock {
		q += ` FOR UPDATE OF t`
	}
	t, err := scanTeam(tx.QueryRow(ctx, q, tenant, slug))
	if errors.Is(err, pgx.ErrNoRows) {
		return Team{}, problem.NotFound("team", slug)
	}
	if err != nil {
		return Team{}, fmt.Errorf("get team: %w", err)
	}
	return t, nil
}

// CreateTeam creates a team in tenant.
func (s *Store) CreateTeam(ctx context.Context, tenant uuid.UUID, slug, name string) (Team, error) {
	f := problem.Fields{}
	f.Check(ValidSlug(slug), "slug", SlugHint)
	f.Check(ValidName(name), "name", "must be 1-200 printable characters")
	if err := f.Err(); err != nil {
		return Team{}, err
	}
	var t Team
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO teams (tenant_id, slug, name) VALUES ($1, $2, $3)`, tenant, slug, strings.TrimSpace(name))
		if database.IsUniqueViolation(err, "") {
			return problem.Errorf(problem.CodeConflict, "team %q already exists", slug)
		}
		if err != nil {
			return fmt.Errorf("create team: %w", err)
		}
		if t, err = getTeam(ctx, tx, tenant, slug, false); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "team.created", ObjectKind: "team", ObjectID: slug, After: t})
	})
	return t, err
}

// ListTeams returns a page of tenant's teams ordered by slug.
func (s *Store) ListTeams(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]Team, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]Team, 0, limit+1)
	err = s.db.ReadTenant(ctx, tenant, teamSQL+` AND t.slug > $2 ORDER BY t.slug LIMIT $3`, []any{tenant, after, limit + 1},
		func(r pgx.Rows) error {
			t, err := scanTeam(r)
			out = append(out, t)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list teams: %w", err)
	}
	out, next := database.Page(out, limit, func(t Team) string { return t.Slug })
	return out, next, nil
}

// Team returns the team with slug, if allow lets the caller read it.
func (s *Store) Team(ctx context.Context, tenant uuid.UUID, slug string, allow access.Check) (Team, error) {
	if !ValidSlug(slug) {
		return Team{}, problem.NotFound("team", slug)
	}
	var t Team
	found := false
	err := s.db.ReadTenant(ctx, tenant, teamSQL+` AND t.slug = $2`, []any{tenant, slug}, func(r pgx.Rows) (err error) {
		t, err = scanTeam(r)
		found = err == nil
		return err
	})
	switch {
	case err != nil:
		return Team{}, fmt.Errorf("get team: %w", err)
	case !found:
		return Team{}, problem.NotFound("team", slug)
	}
	if err := allow(ctx, t.Object(tenant)); err != nil {
		return Team{}, err
	}
	return t, nil
}

// UpdateTeam applies p to the team, if allow lets the caller update the team
// as loaded. When ifVersion is positive the team must still be at that
// version (optimistic concurrency), else the update fails with a
// precondition error.
func (s *Store) UpdateTeam(ctx context.Context, tenant uuid.UUID, slug string, ifVersion int64, p TeamPatch, allow access.Check) (Team, error) {
	if p.Name != nil && !ValidName(*p.Name) {
		return Team{}, problem.Invalid(map[string]string{"name": "must be 1-200 printable characters"})
	}
	var t Team
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := getTeam(ctx, tx, tenant, slug, true)
		if err != nil {
			return err
		}
		if err := allow(ctx, before.Object(tenant)); err != nil {
			return err
		}
		if ifVersion > 0 && before.Version != ifVersion {
			return problem.Errorf(problem.CodePrecondition, "team %q is at version %d, not %d", slug, before.Version, ifVersion)
		}
		t = before
		if p.Name != nil {
			t.Name = strings.TrimSpace(*p.Name)
		}
		err = tx.QueryRow(ctx, `UPDATE teams SET name = $3, version = version + 1, updated_at = now()
			WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at`, tenant, t.ID, t.Name).Scan(&t.Version, &t.UpdatedAt)
		if err != nil {
			return fmt.Errorf("update team: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "team.updated", ObjectKind: "team", ObjectID: slug, Before: before, After: t})
	})
	return t, err
}

// DeleteTeam deletes the team with slug, if allow lets the caller delete it.
func (s *Store) DeleteTeam(ctx context.Context, tenant uuid.UUID, slug string, allow access.Check) error {
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := getTeam(ctx, tx, tenant, slug, true)
		if err != nil {
			return err
		}
		if err := allow(ctx, before.Object(tenant)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM teams WHERE tenant_id = $1 AND id = $2`, tenant, before.ID); err != nil {
			return fmt.Errorf("delete team: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "team.deleted", ObjectKind: "team", ObjectID: slug, Before: before})
	})
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant})
	}
	return err
}

// AddTeamMember adds the tenant member with email to the team, if allow
// lets the caller update the team.
func (s *Store) AddTeamMember(ctx context.Context, tenant uuid.UUID, slug, email string, allow access.Check) (Team, error) {
	return s.changeTeamMember(ctx, tenant, slug, email, true, allow)
}

// RemoveTeamMember removes the member with email from the team, if allow
// lets the caller update the team.
func (s *Store) RemoveTeamMember(ctx context.Context, tenant uuid.UUID, slug, email string, allow access.Check) (Team, error) {
	return s.changeTeamMember(ctx, tenant, slug, email, false, allow)
}

// changeTeamMember adds or removes a member. The team's version moves on,
// so an ETag read before the change no longer matches.
func (s *Store) changeTeamMember(ctx context.Context, tenant uuid.UUID, slug, email string, add bool, allow access.Check) (Team, error) {
	addr, ok := NormalizeEmail(email)
	if !ok {
		return Team{}, problem.Invalid(map[string]string{"email": "must be an email address"})
	}
	var t Team
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := getTeam(ctx, tx, tenant, slug, true)
		if err != nil {
			return err
		}
		if err := allow(ctx, before.Object(tenant)); err != nil {
			return err
		}
		var user uuid.UUID
		err = tx.QueryRow(ctx, `SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.tenant_id = $1 AND lower(u.email) = $2`, tenant, addr).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("member", addr)
		}
		if err != nil {
			return err
		}
		action := "team.member_added"
		if add {
			_, err = tx.Exec(ctx, `INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, tenant, before.ID, user)
		} else {
			action = "team.member_removed"
			_, err = tx.Exec(ctx, `DELETE FROM team_members WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3`, tenant, before.ID, user)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE teams SET version = version + 1, updated_at = now() WHERE tenant_id = $1 AND id = $2`, tenant, before.ID); err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		if t, err = getTeam(ctx, tx, tenant, slug, false); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: action, ObjectKind: "team", ObjectID: slug, Before: before, After: t})
	})
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant})
	}
	return t, err
}
