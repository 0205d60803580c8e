package auth

import (
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/mail"
	"switchboard/internal/mail/mailtest"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testBaseURL = "https://switchboard.test"

// clock is a settable Config.Now.
type clock struct {
	// mu guards now.
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an identity service on its own database, with a real SMTP server
// catching its mail.
type env struct {
	t     *testing.T
	db    *database.DB
	ten   *tenancy.Store
	svc   *Service
	smtp  *mailtest.Server
	clock *clock
}

// newEnv builds the service; edit may change its config (limits are
// generous unless a test sets them).
func newEnv(t *testing.T, edit func(*Config)) *env {
	t.Helper()
	e := &env{t: t, db: dbtest.New(t), smtp: mailtest.New(t), clock: &clock{now: time.Now()}}
	e.ten = tenancy.New(e.db)
	mailer, err := mail.New(mail.Config{URL: e.smtp.URL(), From: "Switchboard <switchboard@switchboard.test>", Backoff: time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mailer.Close() })
	cfg := Config{
		Issuer: testBaseURL, Key: ed25519.NewKeyFromSeed(make([]byte, 32)), Mail: mailer, Now: e.clock.Now,
		LoginBurst: 1000, LoginEvery: time.Millisecond, SignupBurst: 1000, SignupEvery: time.Millisecond,
		MailBurst: 1000, MailEvery: time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	if e.svc, err = New(cfg, e.db, e.ten); err != nil {
		t.Fatal(err)
	}
	// Real argon2id, at a cost the race detector can afford 40 times over;
	// TestPassword_HashAndCheck covers the production parameters.
	e.svc.hasher.cost = argonCost{time: 1, memory: 256}
	return e
}

const password = "correct horse battery"

// signup signs email up (with a tenant when slug is set) from a fixed
// address and returns the mail it caused.
func (e *env) signup(email, slug string) mailtest.Message {
	e.t.Helper()
	in := SignupInput{Email: email, Password: password, Name: "Someone", RemoteAddr: "192.0.2.1"}
	if slug != "" {
		in.TenantSlug, in.TenantName = slug, "Org "+slug
	}
	res, err := e.svc.Signup(e.t.Context(), in)
	if err != nil {
		e.t.Fatalf("sign up %s: %v", email, err)
	}
	if res.Email != strings.ToLower(email) {
		e.t.Fatalf("sign-up result %+v", res)
	}
	return e.smtp.WaitFor(e.t, strings.ToLower(email))
}

// verifyToken returns the token of the verification link in m.
func (e *env) verifyToken(m mailtest.Message) string {
	e.t.Helper()
	l, ok := m.Link(testBaseURL + "/verify-email?token=")
	if !ok {
		e.t.Fatalf("no verification link in %q:\n%s", m.Subject, m.Text)
	}
	u, err := url.Parse(l)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Query().Get("token")
}

// user signs email up and, when verified, follows the link.
func (e *env) user(email string, verified bool) tenancy.User {
	e.t.Helper()
	m := e.signup(email, "")
	if verified {
		v, err := e.svc.VerifyEmail(e.t.Context(), e.verifyToken(m))
		if err != nil {
			e.t.Fatal(err)
		}
		return v.User
	}
	u, err := e.svc.Login(e.t.Context(), email, password, "192.0.2.1")
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// principal is u's principal in the tenant with slug.
func (e *env) principal(u tenancy.User, slug string) Principal {
	e.t.Helper()
	p, err := e.svc.Scope(e.t.Context(), Identity{UserID: u.ID, Email: u.Email}, slug)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// token creates an API token as p and returns its secret.
func (e *env) token(p Principal, name string, role tenancy.Role) string {
	e.t.Helper()
	_, secret, err := e.svc.CreateToken(e.t.Context(), p, name, role, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// tokenPrincipal authenticates secret and scopes it to slug.
func (e *env) tokenPrincipal(secret, slug string) (Principal, error) {
	id, err := e.svc.Authenticate(e.t.Context(), secret)
	if err != nil {
		return Principal{}, err
	}
	return e.svc.Scope(e.t.Context(), id, slug)
}

func wantCode(t *testing.T, err error, code string) *problem.Error {
	t.Helper()
	p, ok := problem.As(err)
	if !ok || p.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	return p
}

func granter(u tenancy.User) tenancy.Granter {
	return tenancy.Granter{UserID: u.ID, Role: tenancy.Owner}
}
