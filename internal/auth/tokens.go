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
// Role is the token's scope: it acts with the lower of Role and its
// creator's current role, and not at all once the creator has left.
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
// once and never stored. p can grant at most their own current role (for a
// token principal, the token's effective role), and the token is created by
// p's user: from then on it acts with at most that user's current role.
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
	if p.UserID == uuid.Nil {
		// A token's rights are bounded by its creator's current membership:
		// without a creator there is nothing to bound them.
		return APIToken{}, "", problem.Errorf(problem.CodeForbidden, "only a member can create a token")
	}
	if !p.Role.Covers(role) {
		return APIToken{}, "", problem.Errorf(problem.CodeForbidden, "%s cannot create a token with the %s role", p.Role.WithArticle(), role)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return APIToken{}, "", err
	}
	creator := p.UserID
	t := APIToken{ID: uuid.New(), Name: name, Role: role, ExpiresAt: expiresAt, CreatedBy: &creator}
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
	if err == nil {
		s.rightsChanged(database.RightsChange{Tenant: tenant, Token: id})
	}
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

// tokenLookupSQL reads a token with its tenant and its creator's current
// membership and teams, in one round trip: the creator's rights at this
// moment bound the token's, so a creator who was demoted or removed takes
// the token down with them at once. It runs outside row-level security,
// like tenancy.Membership, because it is what establishes the scope; it
// filters on the token id and the token's own tenant.
const tokenLookupSQL = `SELECT k.id, k.name, k.role, k.secret_hash, k.expires_at, k.revoked_at, k.last_used_at, k.created_by,
		t.id, t.slug, t.name, t.created_at, t.policy_version,
		m.role,
		coalesce((SELECT array_agg(tm.slug ORDER BY tm.slug) FROM team_members x JOIN teams tm ON tm.tenant_id = x.tenant_id AND tm.id = x.team_id
		          WHERE x.tenant_id = k.tenant_id AND x.user_id = k.created_by), '{}')
	FROM api_tokens k
	JOIN tenants t ON t.id = k.tenant_id
	LEFT JOIN memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.created_by
	WHERE k.id = $1`

// authenticateToken checks a raw API token. It runs before any tenant scope
// exists (the token names its tenant), so it looks the token up by id.
func (s *Service) authenticateToken(ctx context.Context, raw string) (*TokenIdentity, error) {
	id, secret, ok := parseToken(raw)
	if !ok {
		return nil, unauthenticated()
	}
	key := credentialKey(raw)
	now := s.cfg.Now()
	if e, ok := s.rights.token(key); ok {
		if e.expiresAt != nil && !e.expiresAt.After(now) {
			s.rights.dropToken(key)
			return nil, problem.Errorf(problem.CodeUnauthenticated, "this API token expired")
		}
		if err := s.markUsed(ctx, id, e.lastUsed, now); err != nil {
			return nil, err
		}
		ti := e.id
		return &ti, nil
	}
	gen := s.rights.generation()
	var (
		ti          TokenIdentity
		hash        []byte
		expiresAt   *time.Time
		revokedAt   *time.Time
		lastUsed    *time.Time
		createdBy   *uuid.UUID
		creatorRole *tenancy.Role
	)
	err := s.db.Pool.QueryRow(ctx, tokenLookupSQL, id).
		Scan(&ti.ID, &ti.Name, &ti.Scope, &hash, &expiresAt, &revokedAt, &lastUsed, &createdBy,
			&ti.Tenant.ID, &ti.Tenant.Slug, &ti.Tenant.Name, &ti.Tenant.CreatedAt, &ti.PolicyVersion,
			&creatorRole, &ti.Teams)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, unauthenticated()
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate token: %w", err)
	}
	if subtle.ConstantTimeCompare(hash, hashSecret(secret)) != 1 {
		return nil, unauthenticated()
	}
	// Only past the secret check do the reasons show: they are about a
	// token the caller holds.
	switch {
	case revokedAt != nil:
		return nil, problem.Errorf(problem.CodeUnauthenticated, "this API token was revoked")
	case expiresAt != nil && !expiresAt.After(now):
		return nil, problem.Errorf(problem.CodeUnauthenticated, "this API token expired")
	case createdBy == nil: // the creator's user was deleted (ON DELETE SET NULL)
		return nil, problem.Errorf(problem.CodeUnauthenticated, "the API token's creator no longer exists; create a new token")
	case creatorRole == nil:
		return nil, problem.Errorf(problem.CodeUnauthenticated, "the API token's creator is no longer a member of %s; create a new token", ti.Tenant.Slug)
	}
	ti.CreatedBy = *createdBy
	if ti.Role = ti.Scope.Meet(*creatorRole); ti.Role == "" {
		return nil, unauthenticated() // a role the schema's CHECK rules out
	}
	if err := s.markUsed(ctx, id, lastUsed, now); err != nil {
		return nil, err
	}
	s.rights.putToken(gen, key, tokenEntry{id: ti, expiresAt: expiresAt, lastUsed: &now})
	return &ti, nil
}

// markUsed keeps last_used_at to the minute: one write a minute per token,
// not one per request. A write made for a cached token is not seen by the
// cache, which may write once more a minute later than it must.
func (s *Service) markUsed(ctx context.Context, id uuid.UUID, lastUsed *time.Time, now time.Time) error {
	if lastUsed != nil && now.Sub(*lastUsed) <= time.Minute {
		return nil
	}
	if _, err := s.db.Pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, id, now); err != nil {
		return fmt.Errorf("mark token used: %w", err)
	}
	return nil
}
