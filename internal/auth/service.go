package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// Config configures the identity service.
type Config struct {
	Issuer     string             // iss of access tokens: the server's base URL
	Key        ed25519.PrivateKey // signs access tokens
	AccessTTL  time.Duration      // lifetime of access tokens; default 15m
	SessionTTL time.Duration      // lifetime of browser sessions; default 12h
	// Login attempts per address and per email: LoginBurst at once, then one
	// per LoginEvery. Defaults: 10 and 6s.
	LoginBurst int
	LoginEvery time.Duration
	// Now returns the time; tests may set it. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Issuer == "" {
		return errors.New("auth: Issuer is required")
	}
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("auth: an Ed25519 Key is required")
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.LoginBurst <= 0 {
		c.LoginBurst = 10
	}
	if c.LoginEvery <= 0 {
		c.LoginEvery = 6 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Service authenticates people and credentials.
type Service struct {
	cfg     Config
	db      *database.DB
	tenancy *tenancy.Store
	byAddr  *limiter
	byEmail *limiter
}

// New returns a Service.
func New(cfg Config, db *database.DB, ten *tenancy.Store) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	mac := throttleMAC(cfg.Key.Seed())
	return &Service{
		cfg: cfg, db: db, tenancy: ten,
		// An address may try several accounts (a shared office NAT); an
		// account is tried from anywhere at the stricter rate.
		byAddr:  newLimiter(db, mac, "addr", cfg.LoginEvery/3, cfg.LoginBurst*3),
		byEmail: newLimiter(db, mac, "email", cfg.LoginEvery, cfg.LoginBurst),
	}, nil
}

// AccessTTL is the lifetime of access tokens.
func (s *Service) AccessTTL() time.Duration { return s.cfg.AccessTTL }

// SessionTTL is the lifetime of browser sessions.
func (s *Service) SessionTTL() time.Duration { return s.cfg.SessionTTL }

// SignupInput is what a new user gives.
type SignupInput struct {
	Email      string
	Password   string
	Name       string
	TenantSlug string // optional: no tenant is created when both are empty
	TenantName string
}

func validPassword(pw string) bool {
	n := utf8.RuneCountInString(pw)
	return n >= 8 && len(pw) <= 256 && utf8.ValidString(pw)
}

// Signup creates the user and, when asked, a tenant they own, in one
// transaction: a failure leaves nothing behind.
func (s *Service) Signup(ctx context.Context, in SignupInput) (tenancy.User, *tenancy.Tenant, error) {
	f := problem.Fields{}
	email, ok := tenancy.NormalizeEmail(in.Email)
	f.Check(ok, "email", "must be an email address")
	f.Check(validPassword(in.Password), "password", "must be 8 to 256 characters")
	f.Check(tenancy.ValidName(in.Name), "name", "must be 1-200 printable characters")
	withTenant := in.TenantSlug != "" || in.TenantName != ""
	if withTenant {
		f.Check(tenancy.ValidSlug(in.TenantSlug), "tenant.slug", tenancy.SlugHint)
		f.Check(tenancy.ValidName(in.TenantName), "tenant.name", "must be 1-200 printable characters")
	}
	if err := f.Err(); err != nil {
		return tenancy.User{}, nil, err
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return tenancy.User{}, nil, err
	}
	var u tenancy.User
	var t *tenancy.Tenant
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var err error
		if u, err = tenancy.CreateUserTx(ctx, tx, email, strings.TrimSpace(in.Name), hash); err != nil {
			return err
		}
		if !withTenant {
			return nil
		}
		ctx := audit.WithActor(ctx, withActorID(audit.ActorFrom(ctx), u))
		tt, err := tenancy.CreateTenantTx(ctx, tx, u.ID, in.TenantSlug, in.TenantName)
		t = &tt
		return err
	})
	if err != nil {
		return tenancy.User{}, nil, err
	}
	return u, t, nil
}

func withActorID(a audit.Actor, u tenancy.User) audit.Actor {
	a.ID, a.Name = u.ID, u.Email
	return a
}

// Login checks email and password; attempts are rate limited per address and
// per email, across every replica. Wrong credentials are one error whatever
// was wrong.
func (s *Service) Login(ctx context.Context, email, password, remoteAddr string) (tenancy.User, error) {
	if ok, retry, err := s.byAddr.allow(ctx, addrKey(remoteAddr), nil); err != nil {
		return tenancy.User{}, err
	} else if !ok {
		return tenancy.User{}, rateLimited(retry)
	}
	email, valid := tenancy.NormalizeEmail(email)
	if !valid {
		CheckPassword(dummyHash(), password)
		return tenancy.User{}, problem.Errorf(problem.CodeUnauthenticated, "wrong email or password")
	}
	if ok, retry, err := s.byEmail.allow(ctx, email, nil); err != nil {
		return tenancy.User{}, err
	} else if !ok {
		return tenancy.User{}, rateLimited(retry)
	}
	var u tenancy.User
	var hash *string
	err := s.db.Pool.QueryRow(ctx, `SELECT id, email, name, created_at, password_hash FROM users WHERE lower(email) = $1`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return tenancy.User{}, fmt.Errorf("login: %w", err)
	}
	if hash == nil {
		CheckPassword(dummyHash(), password)
		return tenancy.User{}, problem.Errorf(problem.CodeUnauthenticated, "wrong email or password")
	}
	if !CheckPassword(*hash, password) {
		return tenancy.User{}, problem.Errorf(problem.CodeUnauthenticated, "wrong email or password")
	}
	return u, nil
}

func rateLimited(retry int) error {
	e := problem.Errorf(problem.CodeRateLimited, "too many sign-in attempts; try again in %d s", retry)
	e.RetryAfter = retry
	return e
}

// IssueAccessToken returns a signed access token for u.
func (s *Service) IssueAccessToken(u tenancy.User) (string, error) {
	return s.issueJWT(u.ID, s.cfg.Now())
}

// Identity is an authenticated credential before a tenant is chosen: a user
// (from an access token or a session) or an API token bound to one tenant.
type Identity struct {
	UserID uuid.UUID
	Email  string
	Token  *TokenIdentity // set for API tokens
}

// TokenIdentity is what an API token grants.
type TokenIdentity struct {
	ID            uuid.UUID
	Name          string
	CreatedBy     uuid.UUID // zero when the creator is gone
	Tenant        tenancy.Tenant
	Role          tenancy.Role
	PolicyVersion int64
}

// Principal is who is acting within one tenant, with what role and teams.
type Principal struct {
	UserID        uuid.UUID // the user, or the user who created the API token
	Name          string    // email, or "token:<name>"
	TokenID       uuid.UUID // non-zero for API tokens
	Tenant        uuid.UUID
	TenantSlug    string
	TenantInfo    tenancy.Tenant
	Role          tenancy.Role
	Teams         []string
	PolicyVersion int64
}

func unauthenticated() error {
	return problem.Errorf(problem.CodeUnauthenticated, "missing or invalid credentials")
}

// Authenticate checks a bearer credential: an API token (sb_...) or an
// access token. For an access token it only verifies the signature and
// claims; the user is looked up by Scope (or User) where it is needed, so a
// tenant-scoped request costs one query for both.
func (s *Service) Authenticate(ctx context.Context, bearer string) (Identity, error) {
	if strings.HasPrefix(bearer, tokenPrefix) {
		t, err := s.authenticateToken(ctx, bearer)
		if err != nil {
			return Identity{}, err
		}
		return Identity{Token: t}, nil
	}
	id, err := s.verifyJWT(bearer)
	if err != nil {
		return Identity{}, err
	}
	return Identity{UserID: id}, nil
}

// User returns the user behind a user identity; a user deleted since the
// token was issued is unauthenticated.
func (s *Service) User(ctx context.Context, id Identity) (tenancy.User, error) {
	u, err := s.tenancy.User(ctx, id.UserID)
	if problem.Code(err) == problem.CodeNotFound {
		return tenancy.User{}, unauthenticated()
	}
	return u, err
}

// Scope returns the principal id acts as in the tenant with slug. A tenant id
// cannot see is not found.
func (s *Service) Scope(ctx context.Context, id Identity, slug string) (Principal, error) {
	if t := id.Token; t != nil {
		if t.Tenant.Slug != slug {
			return Principal{}, problem.NotFound("tenant", slug)
		}
		return Principal{UserID: t.CreatedBy, Name: "token:" + t.Name, TokenID: t.ID, Tenant: t.Tenant.ID, TenantSlug: slug, TenantInfo: t.Tenant, Role: t.Role, PolicyVersion: t.PolicyVersion}, nil
	}
	m, err := s.tenancy.Membership(ctx, id.UserID, slug)
	if problem.Code(err) == problem.CodeNotFound {
		// Only on this miss path: is the token's user gone altogether?
		if _, uerr := s.User(ctx, id); problem.Code(uerr) == problem.CodeUnauthenticated {
			return Principal{}, uerr
		}
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{UserID: id.UserID, Name: m.Email, Tenant: m.Tenant.ID, TenantSlug: slug, TenantInfo: m.Tenant, Role: m.Role, Teams: m.Teams, PolicyVersion: m.PolicyVersion}, nil
}
