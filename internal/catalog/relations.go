package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// ValidRelation checks a relation's type and references, returning it with
// its references in canonical form.
func ValidRelation(r Relation) (Relation, error) {
	f := problem.Fields{}
	from, err := CanonicalRef(r.From)
	f.Check(err == nil, "from", "must be an entity reference such as service:checkout")
	to, err := CanonicalRef(r.To)
	f.Check(err == nil, "to", "must be an entity reference such as queue:orders")
	if err := f.Err(); err != nil {
		return r, err
	}
	if !slices.Contains(RelationTypes, r.Type) {
		return r, problem.Errorf(problem.CodeUnprocessable, "relation type %q is not one of %s", r.Type, strings.Join(RelationTypes, ", "))
	}
	r.From, r.To = from, to
	if from == to {
		return r, problem.Errorf(problem.CodeConflict, "an entity cannot relate to itself (%s %s %s)", from, r.Type, to)
	}
	return r, nil
}

// Relate adds r, if allow lets the caller update the entity it starts
// from. Both ends must exist (422 naming the missing one); a duplicate is
// a conflict.
func (s *Store) Relate(ctx context.Context, tenant uuid.UUID, r Relation, allow access.Check) (Relation, error) {
	r, err := ValidRelation(r)
	if err != nil {
		return r, err
	}
	fromRef, _ := ParseRef(r.From)
	toRef, _ := ParseRef(r.To)
	err = s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		from, err := loadEntity(ctx, tx, tenant, fromRef, false)
		if problem.Code(err) == problem.CodeNotFound {
			return problem.Errorf(problem.CodeUnprocessable, "%s is not in the catalog", r.From)
		}
		if err != nil {
			return err
		}
		if err := allow(ctx, from.Object(tenant)); err != nil {
			return err
		}
		if _, err := loadEntity(ctx, tx, tenant, toRef, false); err != nil {
			if problem.Code(err) == problem.CodeNotFound {
				return problem.Errorf(problem.CodeUnprocessable, "%s is not in the catalog", r.To)
			}
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO catalog_relations (tenant_id, from_ref, type, to_ref) VALUES ($1, $2, $3, $4) RETURNING created_at`,
			tenant, r.From, r.Type, r.To).Scan(&r.CreatedAt)
		if database.IsUniqueViolation(err, "") {
			return problem.Errorf(problem.CodeConflict, "%s %s %s is already in the catalog", r.From, r.Type, r.To)
		}
		if err != nil {
			return fmt.Errorf("relate: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "relation.created", ObjectKind: "relation", ObjectID: r.From + " " + r.Type + " " + r.To, After: r})
	})
	if err != nil {
		return Relation{}, err
	}
	s.changed(tenant, Change{Action: "related", Relation: &r})
	return r, nil
}

// Unrelate removes r, if allow lets the caller update the entity it starts
// from (when that entity is gone, any caller who may update the target).
func (s *Store) Unrelate(ctx context.Context, tenant uuid.UUID, r Relation, allow access.Check) error {
	r, err := ValidRelation(r)
	if err != nil && problem.Code(err) != problem.CodeConflict {
		return err
	}
	fromRef, _ := ParseRef(r.From)
	err = s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		from, err := loadEntity(ctx, tx, tenant, fromRef, false)
		if err != nil && problem.Code(err) != problem.CodeNotFound {
			return err
		}
		obj := access.Object{Tenant: tenant, Kind: AuthKind(fromRef.Kind), Name: r.From}
		if err == nil {
			obj = from.Object(tenant)
		}
		if err := allow(ctx, obj); err != nil {
			return err
		}
		var before Relation
		err = tx.QueryRow(ctx, `DELETE FROM catalog_relations WHERE tenant_id = $1 AND from_ref = $2 AND type = $3 AND to_ref = $4
			RETURNING from_ref, type, to_ref, source, created_at`, tenant, r.From, r.Type, r.To).
			Scan(&before.From, &before.Type, &before.To, &before.Source, &before.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("relation", r.From+" "+r.Type+" "+r.To)
		}
		if err != nil {
			return fmt.Errorf("unrelate: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "relation.deleted", ObjectKind: "relation", ObjectID: r.From + " " + r.Type + " " + r.To, Before: before})
	})
	if err != nil {
		return err
	}
	s.changed(tenant, Change{Action: "unrelated", Relation: &r})
	return nil
}

// RelationFilter narrows a list of relations.
type RelationFilter struct {
	Ref  string // relations from or to this entity
	Type string
}

// Relations returns a page of tenant's relations, ordered by from, type,
// to. Missing is set on those whose target is not in the catalog.
func (s *Store) Relations(ctx context.Context, tenant uuid.UUID, f RelationFilter, cursor string, limit int) ([]Relation, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	a := strings.SplitN(after, "\x01", 3)
	for len(a) < 3 {
		a = append(a, "")
	}
	args := []any{tenant, a[0], a[1], a[2]}
	w := ``
	if f.Ref != "" {
		ref, err := CanonicalRef(f.Ref)
		if err != nil {
			return nil, "", problem.Invalid(map[string]string{"ref": "must be an entity reference such as service:checkout"})
		}
		args = append(args, ref)
		w += ` AND (r.from_ref = $` + strconv.Itoa(len(args)) + ` OR r.to_ref = $` + strconv.Itoa(len(args)) + `)`
	}
	if f.Type != "" {
		args = append(args, f.Type)
		w += ` AND r.type = $` + strconv.Itoa(len(args))
	}
	args = append(args, limit+1)
	q := `SELECT r.from_ref, r.type, r.to_ref, r.source, r.created_at, NOT EXISTS (SELECT 1 FROM catalog_entities e WHERE e.tenant_id = r.tenant_id AND e.ref = r.to_ref)
		FROM catalog_relations r WHERE r.tenant_id = $1 AND (r.from_ref, r.type, r.to_ref) > ($2, $3, $4)` + w +
		` ORDER BY r.from_ref, r.type, r.to_ref LIMIT $` + strconv.Itoa(len(args))
	out := make([]Relation, 0, limit+1)
	err = s.db.ReadTenant(ctx, tenant, q, args, func(rows pgx.Rows) error {
		var r Relation
		err := rows.Scan(&r.From, &r.Type, &r.To, &r.Source, &r.CreatedAt, &r.Missing)
		out = append(out, r)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list relations: %w", err)
	}
	page, next := database.Page(out, limit, func(r Relation) string { return r.From + "\x01" + r.Type + "\x01" + r.To })
	return page, next, nil
}
