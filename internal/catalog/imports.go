package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/problem"
)

// ImportResult says what an import did, or would have done.
type ImportResult struct {
	Source    string        `json:"source"`
	Applied   bool          `json:"applied"`
	At        time.Time     `json:"at"`
	Actor     string        `json:"actor,omitempty"`
	Created   []string      `json:"created"`
	Updated   []string      `json:"updated"`
	Unchanged int           `json:"unchanged"`
	Orphaned  []string      `json:"orphaned"`
	Relations int           `json:"relations"`
	Missing   []string      `json:"missing"` // references kept, not in the catalog
	Errors    []ImportError `json:"errors"`
}

// ImportError is one problem in an imported file, at its document and line.
type ImportError struct {
	Document int    `json:"document"`
	Line     int    `json:"line,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

var sourceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,199}$`)

// ValidSource reports whether s can name an import source.
func ValidSource(s string) bool { return sourceName.MatchString(s) }

// Import applies entities and relations read from one source, all or
// nothing: each entity is created or replaced (if allow lets the caller
// create it, or update it as loaded and as it becomes); entities that an
// earlier import of the same source brought and this one does not are
// marked orphaned, never deleted; the source's relations are replaced.
// References to entities the catalog does not hold are kept and listed as
// missing. The result is kept as the source's last import, applied or not
// (record failures with RecordImport).
func (s *Store) Import(ctx context.Context, tenant uuid.UUID, source string, entities []Entity, relations []Relation, allow access.Check) (ImportResult, error) {
	res := ImportResult{Source: source, Applied: true, At: time.Now().UTC(), Actor: audit.ActorFrom(ctx).Name,
		Created: []string{}, Updated: []string{}, Orphaned: []string{}, Missing: []string{}, Errors: []ImportError{}}
	if !ValidSource(source) {
		return res, problem.Invalid(map[string]string{"source": "must be 1-200 letters, digits and ._/:@-"})
	}
	byRef := map[string]*Entity{}
	refs := make([]string, 0, len(entities))
	f := problem.Fields{}
	for i := range entities {
		e := &entities[i]
		e.Source, e.Orphaned = source, false
		normalize(e)
		if err := validate(e); err != nil {
			if pe, ok := problem.As(err); ok {
				for k, v := range pe.Fields {
					f.Add(e.Ref().String()+"."+k, v)
				}
			}
			continue
		}
		ref := e.Ref().String()
		if byRef[ref] != nil {
			f.Add(ref, "appears twice")
			continue
		}
		byRef[ref] = e
		refs = append(refs, ref)
	}
	rels := make([]Relation, 0, len(relations))
	seenRel := map[Relation]bool{}
	for _, r := range relations {
		r, err := ValidRelation(r)
		if err != nil {
			f.Add("relations", err.Error())
			continue
		}
		r.Source, r.CreatedAt = source, time.Time{}
		if !seenRel[r] {
			seenRel[r] = true
			rels = append(rels, r)
		}
	}
	if err := f.Err(); err != nil {
		return res, err
	}
	for _, ref := range refs {
		if err := s.checkHosts(ctx, byRef[ref]); err != nil {
			if pe, ok := problem.As(err); ok {
				return res, problem.Errorf(pe.Code, "%s: %s", ref, pe.Message)
			}
			return res, err
		}
	}
	sort.Strings(refs)
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		existing := map[string]Entity{}
		rows, err := tx.Query(ctx, `SELECT kind, namespace, name, owner_team, labels, source, version FROM catalog_entities
			WHERE tenant_id = $1 AND (ref = ANY($2) OR source = $3) FOR UPDATE`, tenant, refs, source)
		if err != nil {
			return fmt.Errorf("read catalog: %w", err)
		}
		for rows.Next() {
			var e Entity
			if err := rows.Scan(&e.Kind, &e.Namespace, &e.Name, &e.OwnerTeam, &e.Labels, &e.Source, &e.Version); err != nil {
				rows.Close()
				return err
			}
			existing[e.Ref().String()] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		type rec struct {
			Kind        string            `json:"kind"`
			Namespace   string            `json:"namespace"`
			Name        string            `json:"name"`
			OwnerTeam   string            `json:"owner_team"`
			Description string            `json:"description"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			Links       []Link            `json:"links"`
			Spec        any               `json:"spec"`
			Raw         json.RawMessage   `json:"raw"`
		}
		recs := make([]rec, 0, len(refs))
		for _, ref := range refs {
			e := byRef[ref]
			if old, ok := existing[ref]; ok {
				if err := allow(ctx, old.Object(tenant)); err != nil {
					return problem.Errorf(problem.Code(err), "%s: %s", ref, problemMessage(err))
				}
			}
			if err := allow(ctx, e.Object(tenant)); err != nil {
				return problem.Errorf(problem.Code(err), "%s: %s", ref, problemMessage(err))
			}
			raw := e.Raw
			if len(raw) == 0 {
				raw = json.RawMessage("null")
			}
			recs = append(recs, rec{e.Kind, e.Namespace, e.Name, e.OwnerTeam, e.Description, e.Labels, nonNil(e.Annotations), e.Links, specOf(e), raw})
		}
		payload, err := json.Marshal(recs)
		if err != nil {
			return err
		}
		// One statement writes every entity. A row whose content did not
		// change keeps its version and is not returned.
		rows, err = tx.Query(ctx, `INSERT INTO catalog_entities AS c (tenant_id, kind, namespace, name, owner_team, description, labels, annotations, links, spec, raw, source)
			SELECT $1, x.kind, x.namespace, x.name, x.owner_team, x.description, x.labels, x.annotations, x.links, x.spec, NULLIF(x.raw, 'null'::jsonb), $3
			FROM jsonb_to_recordset($2) AS x(kind text, namespace text, name text, owner_team text, description text, labels jsonb, annotations jsonb, links jsonb, spec jsonb, raw jsonb)
			ON CONFLICT (tenant_id, ref) DO UPDATE SET owner_team = EXCLUDED.owner_team, description = EXCLUDED.description, labels = EXCLUDED.labels,
				annotations = EXCLUDED.annotations, links = EXCLUDED.links, spec = EXCLUDED.spec, raw = EXCLUDED.raw, source = EXCLUDED.source,
				orphaned = false, version = c.version + 1, updated_at = now()
			WHERE (c.owner_team, c.description, c.labels, c.annotations, c.links, c.spec, c.raw, c.source, c.orphaned)
				IS DISTINCT FROM (EXCLUDED.owner_team, EXCLUDED.description, EXCLUDED.labels, EXCLUDED.annotations, EXCLUDED.links, EXCLUDED.spec, EXCLUDED.raw, EXCLUDED.source, false)
			RETURNING ref, version = 1`,
			tenant, payload, source)
		if err != nil {
			return fmt.Errorf("write entities: %w", err)
		}
		for rows.Next() {
			var ref string
			var created bool
			if err := rows.Scan(&ref, &created); err != nil {
				rows.Close()
				return err
			}
			if created {
				res.Created = append(res.Created, ref)
			} else {
				res.Updated = append(res.Updated, ref)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("write entities: %w", err)
		}
		sort.Strings(res.Created)
		sort.Strings(res.Updated)
		res.Unchanged = len(recs) - len(res.Created) - len(res.Updated)
		for ref, old := range existing {
			if old.Source == source && byRef[ref] == nil {
				res.Orphaned = append(res.Orphaned, ref)
			}
		}
		sort.Strings(res.Orphaned)
		if _, err := tx.Exec(ctx, `UPDATE catalog_entities SET orphaned = true, updated_at = now() WHERE tenant_id = $1 AND source = $2 AND ref = ANY($3) AND NOT orphaned`,
			tenant, source, res.Orphaned); err != nil {
			return fmt.Errorf("mark orphans: %w", err)
		}
		froms, types, tos := make([]string, len(rels)), make([]string, len(rels)), make([]string, len(rels))
		for i, r := range rels {
			froms[i], types[i], tos[i] = r.From, r.Type, r.To
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catalog_relations WHERE tenant_id = $1 AND source = $2`, tenant, source); err != nil {
			return fmt.Errorf("replace relations: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO catalog_relations (tenant_id, from_ref, type, to_ref, source)
			SELECT $1, f, t, o, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS x(f, t, o)
			ON CONFLICT DO NOTHING`, tenant, froms, types, tos, source); err != nil {
			return fmt.Errorf("write relations: %w", err)
		}
		res.Relations = len(rels)
		rows, err = tx.Query(ctx, `SELECT DISTINCT r FROM (SELECT unnest($2::text[]) AS r) x
			WHERE NOT EXISTS (SELECT 1 FROM catalog_entities e WHERE e.tenant_id = $1 AND e.ref = x.r) ORDER BY r`, tenant, append(froms, tos...))
		if err != nil {
			return fmt.Errorf("find missing references: %w", err)
		}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return err
			}
			res.Missing = append(res.Missing, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := saveImport(ctx, tx, tenant, res); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "catalog.imported", ObjectKind: "catalog", ObjectID: source,
			After: map[string]any{"created": res.Created, "updated": res.Updated, "orphaned": res.Orphaned, "relations": res.Relations}})
	})
	if err != nil {
		return res, err
	}
	s.changed(tenant, Change{Action: "imported", Ref: source})
	return res, nil
}

func problemMessage(err error) string {
	if pe, ok := problem.As(err); ok {
		return pe.Message
	}
	return "not allowed"
}

func saveImport(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, res ImportResult) error {
	_, err := tx.Exec(ctx, `INSERT INTO catalog_imports (tenant_id, source, at, actor, applied, result) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, source) DO UPDATE SET at = EXCLUDED.at, actor = EXCLUDED.actor, applied = EXCLUDED.applied, result = EXCLUDED.result`,
		tenant, res.Source, res.At, res.Actor, res.Applied, res)
	if err != nil {
		return fmt.Errorf("save import result: %w", err)
	}
	return nil
}

// RecordImport keeps the result of an import that was refused (its
// errors), so the team that owns the file sees them.
func (s *Store) RecordImport(ctx context.Context, tenant uuid.UUID, res ImportResult) error {
	if !ValidSource(res.Source) {
		return nil
	}
	res.Applied = false
	if res.Actor == "" {
		res.Actor = audit.ActorFrom(ctx).Name
	}
	if len(res.Errors) > 200 {
		res.Errors = res.Errors[:200]
	}
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error { return saveImport(ctx, tx, tenant, res) })
}

// Imports lists the last import result of every source.
func (s *Store) Imports(ctx context.Context, tenant uuid.UUID) ([]ImportResult, error) {
	out := []ImportResult{}
	err := s.db.ReadTenant(ctx, tenant, `SELECT result FROM catalog_imports WHERE tenant_id = $1 ORDER BY at DESC LIMIT 100`, []any{tenant},
		func(r pgx.Rows) error {
			var res ImportResult
			err := r.Scan(&res)
			out = append(out, res)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("list imports: %w", err)
	}
	return out, nil
}

// Export returns every entity (with its imported document) and relation of
// tenant that allow lets the caller read, for writing back out.
func (s *Store) Export(ctx context.Context, tenant uuid.UUID, allow access.Check) ([]Entity, []Relation, error) {
	var ents []Entity
	err := s.db.ReadTenant(ctx, tenant, `SELECT `+entityColumns+` FROM catalog_entities WHERE tenant_id = $1 ORDER BY kind, namespace, name`, []any{tenant},
		func(r pgx.Rows) error {
			x, err := scanEntity(r)
			if err == nil && allow(ctx, x.Object(tenant)) == nil {
				ents = append(ents, x.Entity)
			}
			return err
		})
	if err != nil {
		return nil, nil, fmt.Errorf("export entities: %w", err)
	}
	seen := map[string]bool{}
	for i := range ents {
		seen[ents[i].Ref().String()] = true
	}
	var rels []Relation
	err = s.db.ReadTenant(ctx, tenant, `SELECT from_ref, type, to_ref, source, created_at FROM catalog_relations WHERE tenant_id = $1 ORDER BY from_ref, type, to_ref`, []any{tenant},
		func(r pgx.Rows) error {
			var x Relation
			err := r.Scan(&x.From, &x.Type, &x.To, &x.Source, &x.CreatedAt)
			if err == nil && seen[x.From] {
				rels = append(rels, x)
			}
			return err
		})
	if err != nil {
		return nil, nil, fmt.Errorf("export relations: %w", err)
	}
	return ents, rels, nil
}
