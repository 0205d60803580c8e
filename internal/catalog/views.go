package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/problem"
)

// View is a saved topology view: its filters and node positions, shared
// by its id.
type View struct {
	ID        uuid.UUID       `json:"id"`
	Name      string          `json:"name"`
	State     json.RawMessage `json:"state"` // filters and positions, as the page keeps them
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
}

// maxViewState bounds a view's state (positions of a few thousand nodes).
const maxViewState = 1 << 20

// SaveView stores a view of tenant's topology.
func (s *Store) SaveView(ctx context.Context, tenant uuid.UUID, name string, state json.RawMessage) (View, error) {
	name = strings.TrimSpace(name)
	f := problem.Fields{}
	f.Check(name != "" && utf8.RuneCountInString(name) <= 200 && !strings.ContainsRune(name, 0), "name", "must be 1-200 characters")
	f.Check(!bytes.Contains(state, []byte(`\u0000`)), "state", "must not hold a NUL character")
	f.Check(len(state) <= maxViewState && json.Valid(state) && strings.HasPrefix(strings.TrimSpace(string(state)), "{"), "state", "must be a JSON object of at most 1 MiB")
	if err := f.Err(); err != nil {
		return View{}, err
	}
	v := View{ID: uuid.New(), Name: name, State: state, CreatedBy: audit.ActorFrom(ctx).Name}
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO catalog_views (tenant_id, id, name, state, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`,
			tenant, v.ID, v.Name, []byte(v.State), v.CreatedBy).Scan(&v.CreatedAt)
	})
	if err != nil {
		return View{}, fmt.Errorf("save view: %w", err)
	}
	return v, nil
}

// View returns a saved view of tenant's topology.
func (s *Store) View(ctx context.Context, tenant, id uuid.UUID) (View, error) {
	var v View
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var state []byte
		err := tx.QueryRow(ctx, `SELECT id, name, state, created_by, created_at FROM catalog_views WHERE tenant_id = $1 AND id = $2`, tenant, id).
			Scan(&v.ID, &v.Name, &state, &v.CreatedBy, &v.CreatedAt)
		v.State = state
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return View{}, problem.NotFound("view", id.String())
	}
	if err != nil {
		return View{}, fmt.Errorf("read view: %w", err)
	}
	return v, nil
}

// Views lists tenant's saved views, newest first (without their state).
func (s *Store) Views(ctx context.Context, tenant uuid.UUID) ([]View, error) {
	out := []View{}
	err := s.db.ReadTenant(ctx, tenant, `SELECT id, name, created_by, created_at FROM catalog_views WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 200`,
		[]any{tenant}, func(r pgx.Rows) error {
			var v View
			err := r.Scan(&v.ID, &v.Name, &v.CreatedBy, &v.CreatedAt)
			out = append(out, v)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("list views: %w", err)
	}
	return out, nil
}
