package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// tokenPrefix starts every API token, so they are recognisable in logs and by
// secret scanners: sb_<32 hex id>_<43 base64url secret>.
const tokenPrefix = "sb_"

// APIToken is a named, revocable credential bound to one tenant and role.
type APIToken struct {
	ID         uuid.UUID    `json:"id"`
	Name       string       `json:"name"`
	Role       tenancy.Role `json:"role"`
	CreatedBy  *uuid.UUID   `json:"created_by,omitempty"`
	CreatedAt  time.Time    `json:"created_at"`
	ExpiresAt  *time.Time   `json:"expires_at,omitempty"`
	RevokedAt  *time.Time   `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time   `json:"last_used_at,omitempty"`
}

func hashSecret(secret []byte) []byte {
	h := sha256.Sum256(secret)
	return h[:]
}

// CreateToken creates an API token in p's tenant. The secret is returned
// once and never stored. p can grant at most their own role.
func (s *Service) CreateToken(ctx context.Context, p Principal, name string, role tenancy.Role, expiresAt *time.Time) (APIToken, string, error) {
	f := problem.Fields{}
	name = strings.TrimSpace(name)
	f.Check(tenancy.ValidName(name) && len(name) <= 100, "name", "must be 1-100 printable characters")
	f.Check(role.Valid(), "role", "must be one of owner, admin, editor, operator, viewer")
	if expiresAt != nil && !expiresAt.After(s.cfg.Now()) {
		f.Add("expires_at", "must be in the future")
	}
	if err := f.Err(); err != nil {
		return APIToken{}, "", err
	}
	if !p.Role.AtLeast(role) {
		return APIToken{}, "", problem.Errorf(problem.CodeForbidden, "%s cannot create a token with the %s role", p.Role.WithArticle(), role)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return APIToken{}, "", err
	}
	t := APIToken{ID: uuid.New(), Name: name, Role: role, ExpiresAt: expiresAt}
	if p.UserID != uuid.Nil {
		t.CreatedBy = &p.UserID
	}
	err := s.db.InTenant(ctx, p.Tenant, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO api_tokens (tenant_id, id, name, role, secret_hash, created_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
			p.Tenant, t.ID, t.Name, t.Role, hashSecret(secret), t.CreatedBy, t.ExpiresAt).Scan(&t.CreatedAt)
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		return audit.Record(ctx, tx, p.Tenant, audit.Change{Action: "token.created", ObjectKind: "token", ObjectID: t.ID.String(), After: t})
	})
	if err != nil {
		return APIToken{}, "", err
	}
	raw := tokenPrefix + hex.EncodeToString(t.ID[:]) + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return t, raw, nil
}

const tokenSQL = `SELECT id, name, role, created_by, created_at, expires_at, revoked_at, last_used_at FROM api_tokens WHERE tenant_id = $1`

func scanToken(r pgx.Row) (APIToken, error) {
	var t APIToken
	err := r.Scan(&t.ID, &t.Name, &t.Role, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.LastUsedAt)
	return t, err
}

// ListTokens returns a page of tenant's tokens, newest first, revoked ones
// included (they show when they were revoked).
func (s *Service) ListTokens(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]APIToken, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	// The key orders newest first: created_at then id, both descending.
	var afterAt time.Time
	afterID := uuid.Max
	if after != "" {
		at, id, ok := strings.Cut(after, "|")
		t, err1 := time.Parse(time.RFC3339Nano, at)
		u, err2 := uuid.Parse(id)
		if !ok || err1 != nil || err2 != nil {
			return nil, "", problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
		}
		afterAt, afterID = t, u
	} else {
		afterAt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	var out []APIToken
	err = s.db.ReadTenant(ctx, tenant, tokenSQL+` AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4`,
		[]any{tenant, afterAt, afterID, limit + 1}, func(r pgx.Rows) error {
			t, err := scanToken(r)
			out = append(out, t)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	out, next := database.Page(out, limit, func(t APIToken) string { return t.CreatedAt.Format(time.RFC3339Nano) + "|" + t.ID.String() })
	return out, next, nil
}

// RevokeToken revokes a token; it stops working at once. Revoking a revoked
// token is not an error.
func (s *Service) RevokeToken(ctx context.Context, tenant, id uuid.UUID) (APIToken, error) {
	var t APIToken
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before, err := scanToken(tx.QueryRow(ctx, tokenSQL+` AND id = $2 FOR UPDATE`, tenant, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("token", id.String())
		}
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			t = before
			return nil
		}
		t = before
		if err := tx.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING revoked_at`, tenant, id).Scan(&t.RevokedAt); err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "token.revoked", ObjectKind: "token", ObjectID: id.String(), Before: before, After: t})
	})
	return t, err
}

// parseToken splits a raw API token into its id and secret.
func parseToken(raw string) (uuid.UUID, []byte, bool) {
	rest, ok := strings.CutPrefix(raw, tokenPrefix)
	if !ok {
		return uuid.Nil, nil, false
	}
	idHex, secretB64, ok := strings.Cut(rest, "_")
	if !ok || len(idHex) != 32 {
		return uuid.Nil, nil, false
	}
	idBytes, err := hex.DecodeString(idHex)
	if err != nil {
		return uuid.Nil, nil, false
	}
	secret, err := base64.RawURLEncoding.DecodeString(secretB64)
	if err != nil || len(secret) != 32 {
		return uuid.Nil, nil, false
	}
	id, _ := uuid.FromBytes(idBytes) // 16 bytes: cannot fail
	return id, secret, true
}

// authenticateToken checks a raw API token. It runs before any tenant scope
// exists (the token names its tenant), so it looks the token up by id.
func (s *Service) authenticateToken(ctx context.Context, raw string) (*TokenIdentity, error) {
	id, secret, ok := parseToken(raw)
	if !ok {
		return nil, unauthenticated()
	}
	var (
		ti        TokenIdentity
		hash      []byte
		expiresAt *time.Time
		revokedAt *time.Time
		lastUsed  *time.Time
		createdBy *uuid.UUID
	)
	err := s.db.Pool.QueryRow(ctx, `SELECT k.id, k.name, k.role, k.secret_hash, k.expires_at, k.revoked_at, k.last_used_at, k.created_by,
			t.id, t.slug, t.name, t.created_at, t.policy_version
		FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = $1`, id).
		Scan(&ti.ID, &ti.Name, &ti.Role, &hash, &expiresAt, &revokedAt, &lastUsed, &createdBy,
			&ti.Tenant.ID, &ti.Tenant.Slug, &ti.Tenant.Name, &ti.Tenant.CreatedAt, &ti.PolicyVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, unauthenticated()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate token: %w", err)
	}
	if createdBy != nil {
		ti.CreatedBy = *createdBy
	}
	now := s.cfg.Now()
	if subtle.ConstantTimeCompare(hash, hashSecret(secret)) != 1 || revokedAt != nil || (expiresAt != nil && !expiresAt.After(now)) {
		return nil, unauthenticated()
	}
	// last_used_at is kept to the minute: one write a minute per token, not
	// one per request.
	if lastUsed == nil || now.Sub(*lastUsed) > time.Minute {
		if _, err := s.db.Pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, id, now); err != nil {
			return nil, fmt.Errorf("mark token used: %w", err)
		}
	}
	return &ti, nil
}
