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

// Store reads and changes the organisation model.
type Store struct {
	db *database.DB
	// onRights is told, after the change commits, of a change that may
	// narrow someone's rights, so this replica's memory of rights forgets
	// it before the change is answered (others learn it by notification).
	onRights func(database.RightsChange)
}

// OnRightsChange sets the function told of changes that may narrow
// someone's rights, after they commit. Set it before use.
func (s *Store) OnRightsChange(fn func(database.RightsChange)) { s.onRights = fn }

func (s *Store) rightsChanged(ch database.RightsChange) {
	if s.onRights != nil {
		s.onRights(ch)
	}
}

// New returns a Store on db.
func New(db *database.DB) *Store { return &Store{db: db} }

// DB returns the database the store works on, for packages that compose
// tenancy changes into their own transactions.
func (s *Store) DB() *database.DB { return s.db }

// InsertUserTx creates an unverified user with a password hash, unless the
// address is taken. Either way it returns the address's user and whether it
// was created here, so a caller can run the same statements for a new and
// a known address (sign-up must not tell them apart) and roll back in the
// second case.
func InsertUserTx(ctx context.Context, tx pgx.Tx, email, name, passwordHash string) (User, bool, error) {
	var u User
	var created bool
	err := tx.QueryRow(ctx, `WITH ins AS (
			INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3)
			ON CONFLICT (lower(email)) DO NOTHING
			RETURNING id, email, name, email_verified_at IS NOT NULL AS verified, created_at)
		SELECT *, true FROM ins
		UNION ALL
		SELECT id, email, name, email_verified_at IS NOT NULL, created_at, false FROM users WHERE lower(email) = lower($1)
		LIMIT 1`, email, name, passwordHash).Scan(&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.CreatedAt, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		// The conflicting row was committed after this statement's snapshot
		// was taken; a new statement sees it.
		err = tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email).
			Scan(&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.CreatedAt)
	}
	if err != nil {
		return User{}, false, fmt.Errorf("create user: %w", err)
	}
	return u, created, nil
}

const userColumns = `id, email, name, email_verified_at IS NOT NULL, created_at`

// VerifyUserTx records that user proved email: it marks the user verified
// (unless their address is no longer email) and turns every pending
// invitation of the address into a membership, audited as member.joined in
// each tenant with the actor from ctx. It returns the user and the tenants
// joined. A user whose address changed is not found.
//
// It must run before tx is scoped to a tenant: it reads users and every
// tenant's invitations of the address, then scopes tx to each tenant in
// turn.
func VerifyUserTx(ctx context.Context, tx pgx.Tx, user uuid.UUID, email string) (User, []Tenant, error) {
	addr := strings.ToLower(email)
	if err := lockAddress(ctx, tx, addr); err != nil {
		return User{}, nil, err
	}
	var u User
	err := tx.QueryRow(ctx, `UPDATE users SET email_verified_at = coalesce(email_verified_at, now())
		WHERE id = $1 AND lower(email) = $2 RETURNING `+userColumns, user, addr).
		Scan(&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, nil, problem.NotFound("user", user.String())
	}
	if err != nil {
		return User{}, nil, fmt.Errorf("verify user: %w", err)
	}
	joined, err := claimInvitationsTx(ctx, tx, u)
	if err != nil {
		return User{}, nil, err
	}
	return u, joined, nil
}

// CreateTenantTx creates a tenant with owner as its first owner, in tx.
func CreateTenantTx(ctx context.Context, tx pgx.Tx, owner uuid.UUID, slug, name string) (Tenant, error) {
	f := problem.Fields{}
	f.Check(ValidSlug(slug), "tenant.slug", SlugHint)
	f.Check(ValidName(name), "tenant.name", "must be 1-200 printable characters")
	if err := f.Err(); err != nil {
		return Tenant{}, err
	}
	if slug == SystemSlug {
		return Tenant{}, problem.Errorf(problem.CodeConflict, "tenant slug %q is taken", slug)
	}
	var t Tenant
	err := tx.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ($1, $2) RETURNING id, slug, name, created_at`,
		slug, strings.TrimSpace(name)).Scan(&t.ID, &t.Slug, &t.Name, &t.CreatedAt)
	if database.IsUniqueViolation(err, "") {
		return Tenant{}, problem.Errorf(problem.CodeConflict, "tenant slug %q is taken", slug)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')`, t.ID, owner); err != nil {
		return Tenant{}, fmt.Errorf("add owner: %w", err)
	}
	return t, audit.Record(ctx, tx, t.ID, audit.Change{Action: "tenant.created", ObjectKind: "tenant", ObjectID: slug, After: t})
}

// CreateTenant creates a tenant owned by owner.
func (s *Store) CreateTenant(ctx context.Context, owner uuid.UUID, slug, name string) (Tenant, error) {
	var t Tenant
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var err error
		t, err = CreateTenantTx(ctx, tx, owner, slug, name)
		return err
	})
	return t, err
}

// SystemMembership is what an operator of the platform holds in the system
// tenant: a viewer's rights, without being a member.
func (s *Store) SystemMembership(ctx context.Context, email string) (Membership, error) {
	m := Membership{Role: Viewer, Teams: []string{}, Email: email}
	err := s.db.Pool.QueryRow(ctx, `SELECT id, slug, name, created_at, policy_version FROM tenants WHERE id = $1`, SystemTenantID).
		Scan(&m.Tenant.ID, &m.Tenant.Slug, &m.Tenant.Name, &m.Tenant.CreatedAt, &m.PolicyVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return Membership{}, problem.NotFound("tenant", SystemSlug)
	}
	return m, err
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id uuid.UUID) (User, error) {
	var u User
	err := s.db.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id).Scan(&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, problem.NotFound("user", id.String())
	}
	return u, err
}

const membershipSQL = `SELECT t.id, t.slug, t.name, t.created_at, t.policy_version, m.role, u.email,
	coalesce((SELECT array_agg(tm.slug ORDER BY tm.slug) FROM team_members x JOIN teams tm ON tm.tenant_id = x.tenant_id AND tm.id = x.team_id
	          WHERE x.tenant_id = m.tenant_id AND x.user_id = m.user_id), '{}')
	FROM memberships m JOIN tenants t ON t.id = m.tenant_id JOIN users u ON u.id = m.user_id
	WHERE m.user_id = $1`

func scanMembership(row pgx.Row) (Membership, error) {
	var m Membership
	err := row.Scan(&m.Tenant.ID, &m.Tenant.Slug, &m.Tenant.Name, &m.Tenant.CreatedAt, &m.PolicyVersion, &m.Role, &m.Email, &m.Teams)
	return m, err
}

// Membership returns user's membership in the tenant with slug. A tenant the
// user does not belong to is not found, exactly like a missing one.
//
// It runs outside row-level security because it is what establishes the
// tenant scope; it filters on the user instead.
func (s *Store) Membership(ctx context.Context, user uuid.UUID, slug string) (Membership, error) {
	if !ValidSlug(slug) {
		return Membership{}, problem.NotFound("tenant", slug)
	}
	m, err := scanMembership(s.db.Pool.QueryRow(ctx, membershipSQL+` AND t.slug = $2`, user, slug))
	if errors.Is(err, pgx.ErrNoRows) {
		return Membership{}, problem.NotFound("tenant", slug)
	}
	if err != nil {
		return Membership{}, fmt.Errorf("membership: %w", err)
	}
	return m, nil
}

// Memberships returns every tenant user belongs to, by slug.
func (s *Store) Memberships(ctx context.Context, user uuid.UUID) ([]Membership, error) {
	rows, err := s.db.Pool.Query(ctx, membershipSQL+` ORDER BY t.slug`, user)
	if err != nil {
		return nil, fmt.Errorf("memberships: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) { return scanMembership(r) })
}
