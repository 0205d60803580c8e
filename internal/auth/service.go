package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/mail"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// Mailer queues a message without waiting for its delivery; *mail.Mailer
// is one.
type Mailer interface {
	Send(mail.Message) error
}

// Config configures the identity service.
type Config struct {
	Issuer     string             // iss of access tokens: the server's base URL
	Key        ed25519.PrivateKey // signs access tokens
	AccessTTL  time.Duration      // lifetime of access tokens; default 15m
	SessionTTL time.Duration      // lifetime of browser sessions; default 12h

	// Sign-in attempts per (client address, account) pair: LoginBurst at
	// once, then one per LoginEvery. Defaults: 10 and 6s. An address as a
	// whole gets three times the burst at three times the rate (a shared
	// office NAT signs several people in). There is deliberately no bucket
	// per account alone: whoever could empty it would lock the owner out.
	LoginBurst int
	LoginEvery time.Duration
	// Sign-ups per client address: SignupBurst at once, then one per
	// SignupEvery. Defaults: 10 and 30s.
	SignupBurst int
	SignupEvery time.Duration
	// Mail to one address (sign-up notices, verification links): MailBurst
	// at once, then one per MailEvery. Defaults: 3 and 10m. It keeps
	// anyone from flooding a mailbox through sign-up.
	MailBurst int
	MailEvery time.Duration

	// HashConcurrency is how many password hashes (19 MiB each) may run at
	// once; default the number of CPUs Go uses. HashQueue is how many more
	// may wait for one; beyond that callers are told the server is busy.
	// Default 4 × HashConcurrency.
	HashConcurrency int
	HashQueue       int

	// Mail sends verification links and sign-up notices; required.
	Mail Mailer
	// BaseURL starts every link in mail; default Issuer. VerifyPath and
	// SignInPath are the pages links point to: BaseURL+VerifyPath+"?token="
	// must call VerifyEmail. Defaults "/verify-email" and "/login".
	BaseURL    string
	VerifyPath string
	SignInPath string
	// VerifyTTL is how long a verification link works; default 24h.
	VerifyTTL time.Duration
	// VerifyKey signs verification links (at least 32 bytes). Default: a
	// key derived from Key's seed under its own label, so every replica
	// sharing the signing key also shares it.
	VerifyKey []byte

	// Operators are the emails (any case) of the platform's operators
	// (SWITCHBOARD_OPERATORS); IsOperator grants the right only to a
	// verified address among them.
	Operators []string

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
	if c.Mail == nil {
		return errors.New("auth: a Mailer is required (mail.New without a URL logs messages)")
	}
	if c.VerifyKey != nil && len(c.VerifyKey) < 32 {
		return errors.New("auth: VerifyKey must be at least 32 bytes")
	}
	defaultDuration(&c.AccessTTL, 15*time.Minute)
	defaultDuration(&c.SessionTTL, 12*time.Hour)
	defaultInt(&c.LoginBurst, 10)
	defaultDuration(&c.LoginEvery, 6*time.Second)
	defaultInt(&c.SignupBurst, 10)
	defaultDuration(&c.SignupEvery, 30*time.Second)
	defaultInt(&c.MailBurst, 3)
	defaultDuration(&c.MailEvery, 10*time.Minute)
	defaultInt(&c.HashConcurrency, runtime.GOMAXPROCS(0))
	defaultInt(&c.HashQueue, 4*c.HashConcurrency)
	defaultDuration(&c.VerifyTTL, 24*time.Hour)
	if c.BaseURL == "" {
		c.BaseURL = c.Issuer
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.VerifyPath == "" {
		c.VerifyPath = "/verify-email"
	}
	if c.SignInPath == "" {
		c.SignInPath = "/login"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func defaultInt(v *int, d int) {
	if *v <= 0 {
		*v = d
	}
}

func defaultDuration(v *time.Duration, d time.Duration) {
	if *v <= 0 {
		*v = d
	}
}

// Service authenticates people and credentials.
type Service struct {
	cfg       Config
	db        *database.DB
	tenancy   *tenancy.Store
	hasher    *hasher
	verifyKey []byte
	operators map[string]bool // lower-cased emails
	rights    *rightsCache    // current rights, kept by notifications (Watch)

	loginAddr  *limiter // sign-in attempts per client address
	loginPair  *limiter // sign-in attempts per (client address, account)
	signupAddr *limiter // sign-ups per client address
	mailTo     *limiter // mail per recipient address
}

// New returns a Service.
func New(cfg Config, db *database.DB, ten *tenancy.Store) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	mac := throttleMAC(cfg.Key.Seed())
	s := &Service{
		cfg: cfg, db: db, tenancy: ten,
		hasher:     newHasher(cfg.HashConcurrency, cfg.HashQueue),
		verifyKey:  cfg.VerifyKey,
		operators:  map[string]bool{},
		rights:     newRightsCache(),
		loginAddr:  newLimiter(db, mac, "addr", cfg.LoginEvery/3, cfg.LoginBurst*3),
		loginPair:  newLimiter(db, mac, "pair", cfg.LoginEvery, cfg.LoginBurst),
		signupAddr: newLimiter(db, mac, "signup-addr", cfg.SignupEvery, cfg.SignupBurst),
		mailTo:     newLimiter(db, mac, "mail", cfg.MailEvery, cfg.MailBurst),
	}
	if s.verifyKey == nil {
		s.verifyKey = deriveKey(cfg.Key.Seed(), "switchboard email verification")
	}
	for _, op := range cfg.Operators {
		if op = strings.ToLower(strings.TrimSpace(op)); op != "" {
			s.operators[op] = true
		}
	}
	return s, nil
}

// Watch keeps the service's memory of current rights (verified tokens,
// members' roles and teams) current with n's rights-change notifications;
// without it nothing is remembered and every request asks the database.
func (s *Service) Watch(n *database.Notifier) { s.rights.watch(n) }

// Forget drops what the service remembers of the rights ch concerns: a
// change made on this replica takes effect here before it is answered.
func (s *Service) Forget(ch database.RightsChange) { s.rights.changed(ch) }

func (s *Service) rightsChanged(ch database.RightsChange) { s.Forget(ch) }

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
	RemoteAddr string // the client's address, for rate limits
}

// SignupResult is all a sign-up tells its caller: where the mail went. It
// is the same whether the address was new (the mail holds a verification
// link) or already had an account (the mail says someone tried to sign up
// and links to sign-in).
type SignupResult struct {
	Email string `json:"email"`
}

func validPassword(pw string) bool {
	n := utf8.RuneCountInString(pw)
	return n >= 8 && len(pw) <= 256 && utf8.ValidString(pw)
}

// errKnownAddress rolls back a sign-up's transaction for an address that
// already has an account.
var errKnownAddress = errors.New("address already has an account")

// Signup creates an unverified user and, when asked, a tenant they own, in
// one transaction, and mails a verification link. An address that already
// has an account gets a mail saying so instead, and the caller the same
// answer: the same result, the same work (the password is hashed, the
// tenant slug checked by the same insert), with the mail queued, not sent,
// so neither the answer nor its time tells whether the address is known.
// A taken tenant slug is a conflict for both (slugs are public anyway).
//
// Sign-ups are limited per client address and per recipient address
// (rate_limited), and wait for a hashing slot (unavailable when the server
// is saturated).
func (s *Service) Signup(ctx context.Context, in SignupInput) (SignupResult, error) {
	if err := s.allow(ctx, s.signupAddr, addrKey(in.RemoteAddr), "sign-up attempts"); err != nil {
		return SignupResult{}, err
	}
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
		return SignupResult{}, err
	}
	if err := s.allow(ctx, s.mailTo, email, "messages to this address"); err != nil {
		return SignupResult{}, err
	}
	hash, err := s.hasher.hash(ctx, in.Password)
	if err != nil {
		return SignupResult{}, err
	}
	var u tenancy.User
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var created bool
		var err error
		if u, created, err = tenancy.InsertUserTx(ctx, tx, email, strings.TrimSpace(in.Name), hash); err != nil {
			return err
		}
		if withTenant {
			// For a known address this tenant is rolled back below; it is
			// created anyway so that the slug is checked the same way.
			ctx := audit.WithActor(ctx, withActorID(audit.ActorFrom(ctx), u))
			if _, err := tenancy.CreateTenantTx(ctx, tx, u.ID, in.TenantSlug, in.TenantName); err != nil {
				return err
			}
		}
		if !created {
			return errKnownAddress
		}
		return nil
	})
	var msg mail.Message
	switch {
	case err == nil:
		if msg, err = s.verificationMail(u); err != nil {
			return SignupResult{}, err
		}
	case errors.Is(err, errKnownAddress):
		msg = s.knownAddressMail(email)
	default:
		return SignupResult{}, err
	}
	// A refused message (full queue, closed mailer) is logged by the mailer.
	// The answer stays the same: one that differed would tell a known
	// address from a new one, and the account can ask for a new link.
	_ = s.cfg.Mail.Send(msg)
	return SignupResult{Email: email}, nil
}

func withActorID(a audit.Actor, u tenancy.User) audit.Actor {
	a.ID, a.Name = u.ID, u.Email
	return a
}

// allow takes one attempt from key's bucket in l, or answers rate_limited.
func (s *Service) allow(ctx context.Context, l *limiter, key, what string) error {
	ok, retry, err := l.allow(ctx, key, nil)
	if err != nil {
		return err
	}
	if !ok {
		e := problem.Errorf(problem.CodeRateLimited, "too many %s; try again in %d s", what, retry)
		e.RetryAfter = retry
		return e
	}
	return nil
}

func wrongCredentials() error {
	return problem.Errorf(problem.CodeUnauthenticated, "wrong email or password")
}

// Login checks email and password. Attempts are limited per client address
// and per (client address, account) pair across every replica, but not per
// account alone, so nobody can lock an account's owner out by failing on
// purpose. Wrong credentials are one error whatever was wrong, and take the
// same hashing work. An unverified account may sign in.
func (s *Service) Login(ctx context.Context, email, password, remoteAddr string) (tenancy.User, error) {
	addr := addrKey(remoteAddr)
	if err := s.allow(ctx, s.loginAddr, addr, "sign-in attempts"); err != nil {
		return tenancy.User{}, err
	}
	email, valid := tenancy.NormalizeEmail(email)
	if !valid {
		if _, err := s.hasher.check(ctx, s.hasher.dummy(), password); err != nil {
			return tenancy.User{}, err
		}
		return tenancy.User{}, wrongCredentials()
	}
	if err := s.allow(ctx, s.loginPair, addr+"\x00"+email, "sign-in attempts"); err != nil {
		return tenancy.User{}, err
	}
	var u tenancy.User
	var hash *string
	err := s.db.Pool.QueryRow(ctx, `SELECT id, email, name, email_verified_at IS NOT NULL, created_at, password_hash FROM users WHERE lower(email) = $1`, email).
		Scan(&u.ID, &u.Email, &u.Name, &u.EmailVerified, &u.CreatedAt, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return tenancy.User{}, fmt.Errorf("login: %w", err)
	}
	encoded := s.hasher.dummy()
	if hash != nil {
		encoded = *hash
	}
	ok, err := s.hasher.check(ctx, encoded, password)
	if err != nil {
		return tenancy.User{}, err
	}
	if hash == nil || !ok {
		return tenancy.User{}, wrongCredentials()
	}
	return u, nil
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

// TokenIdentity is what an API token grants now: never more than its
// creator's current membership, read with the token itself.
type TokenIdentity struct {
	ID        uuid.UUID
	Name      string
	CreatedBy uuid.UUID // the creator, a current member of Tenant
	Tenant    tenancy.Tenant
	// Role is the token's effective role: the lower (tenancy.Role.Meet) of
	// its own Scope and its creator's current role.
	Role tenancy.Role
	// Scope is the role the token was created with: the most it can ever do.
	Scope         tenancy.Role
	Teams         []string // the creator's current teams
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
	Role          tenancy.Role // current; for a token, capped by its creator's current role
	Teams         []string     // current; for a token, its creator's
	PolicyVersion int64
	// TokenRole is an API token's own role (its scope), which Role never
	// exceeds; empty for users.
	TokenRole tenancy.Role
}

// Granter is p as a tenancy.Granter: who changes members, with what role.
func (p Principal) Granter() tenancy.Granter {
	return tenancy.Granter{UserID: p.UserID, Role: p.Role}
}

func unauthenticated() error {
	return problem.Errorf(problem.CodeUnauthenticated, "missing or invalid credentials")
}

// Authenticate checks a bearer credential: an API token (sb_...) or an
// access token. For an access token it only verifies the signature and
// claims; the user is looked up by Scope (or User) where it is needed, so a
// tenant-scoped request costs one query for both. An API token is looked up
// with its creator's current membership in the same query.
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
		return Principal{UserID: t.CreatedBy, Name: "token:" + t.Name, TokenID: t.ID, Tenant: t.Tenant.ID, TenantSlug: slug, TenantInfo: t.Tenant,
			Role: t.Role, Teams: t.Teams, PolicyVersion: t.PolicyVersion, TokenRole: t.Scope}, nil
	}
	if m, ok := s.rights.member(id.UserID, slug); ok {
		return Principal{UserID: id.UserID, Name: m.Email, Tenant: m.Tenant.ID, TenantSlug: slug, TenantInfo: m.Tenant, Role: m.Role, Teams: m.Teams, PolicyVersion: m.PolicyVersion}, nil
	}
	gen := s.rights.generation()
	m, err := s.tenancy.Membership(ctx, id.UserID, slug)
	if err == nil {
		s.rights.putMember(gen, id.UserID, slug, m)
	}
	if problem.Code(err) == problem.CodeNotFound && slug == tenancy.SystemSlug {
		// The platform's operators read the server's own traces. Asked
		// each time (not remembered): an address taken off the list
		// loses it at the next request.
		if ok, oerr := s.IsOperator(ctx, id.UserID); oerr != nil {
			return Principal{}, oerr
		} else if ok {
			u, uerr := s.User(ctx, id)
			if uerr != nil {
				return Principal{}, uerr
			}
			if m, err = s.tenancy.SystemMembership(ctx, u.Email); err == nil {
				return Principal{UserID: id.UserID, Name: m.Email, Tenant: m.Tenant.ID, TenantSlug: slug, TenantInfo: m.Tenant, Role: m.Role, Teams: m.Teams, PolicyVersion: m.PolicyVersion}, nil
			}
		}
	}
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
