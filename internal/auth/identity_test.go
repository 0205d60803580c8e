package auth

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
)

// Tokens.

// TestToken_FollowsCreatorsCurrentRole: an admin's admin token acts as a
// viewer once the admin is demoted to viewer, at once, and cannot mint an
// admin token any more.
func TestToken_FollowsCreatorsCurrentRole(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ada := e.user("ada@example.com", true)
	e.signup("ada@example.com", "acme") // known address: no tenant; create it as ada instead
	acme, err := e.ten.CreateTenant(ctx, ada.ID, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	bob := e.user("bob@example.com", true)
	if _, err := e.ten.AddMember(ctx, acme.ID, granter(ada), bob.Email, tenancy.Admin); err != nil {
		t.Fatal(err)
	}
	secret := e.token(e.principal(bob, "acme"), "ci", tenancy.Admin)
	p, err := e.tokenPrincipal(secret, "acme")
	if err != nil || p.Role != tenancy.Admin || p.TokenRole != tenancy.Admin || p.UserID != bob.ID {
		t.Fatalf("token principal %+v %v: want admin, created by bob", p, err)
	}

	if _, err := e.ten.SetMemberRole(ctx, acme.ID, granter(ada), bob.ID, tenancy.Viewer); err != nil {
		t.Fatal(err)
	}
	p, err = e.tokenPrincipal(secret, "acme")
	if err != nil || p.Role != tenancy.Viewer || p.TokenRole != tenancy.Admin {
		t.Fatalf("after demotion: %+v %v; want role viewer, scope admin", p, err)
	}
	_, _, err = e.svc.CreateToken(ctx, p, "escalate", tenancy.Admin, nil)
	wantCode(t, err, problem.CodeForbidden)
}

func TestToken_CreatorRemovedOrGoneIsUnauthenticated(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ada := e.user("ada@example.com", true)
	acme, err := e.ten.CreateTenant(ctx, ada.ID, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	bob := e.user("bob@example.com", true)
	cat := e.user("cat@example.com", true)
	for _, u := range []tenancy.User{bob, cat} {
		if _, err := e.ten.AddMember(ctx, acme.ID, granter(ada), u.Email, tenancy.Admin); err != nil {
			t.Fatal(err)
		}
	}
	bobs := e.token(e.principal(bob, "acme"), "bob-ci", tenancy.Editor)
	cats := e.token(e.principal(cat, "acme"), "cat-ci", tenancy.Editor)

	if err := e.ten.RemoveMember(ctx, acme.ID, granter(ada), bob.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.tokenPrincipal(bobs, "acme")
	if p := wantCode(t, err, problem.CodeUnauthenticated); !strings.Contains(p.Message, "no longer a member") {
		t.Fatalf("message %q does not say why", p.Message)
	}

	if _, err := e.db.Pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, cat.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.tokenPrincipal(cats, "acme")
	if p := wantCode(t, err, problem.CodeUnauthenticated); !strings.Contains(p.Message, "no longer exists") {
		t.Fatalf("message %q does not say why", p.Message)
	}

	// A wrong secret says nothing about the creator.
	_, err = e.tokenPrincipal(cats[:len(cats)-2]+"AA", "acme")
	if p := wantCode(t, err, problem.CodeUnauthenticated); strings.Contains(p.Message, "creator") {
		t.Fatalf("a wrong secret learns %q", p.Message)
	}
}

// TestToken_NarrowScopeWithCreatorsTeams: an owner's viewer token stays a
// viewer, and carries the owner's current teams.
func TestToken_NarrowScopeWithCreatorsTeams(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ada := e.user("ada@example.com", true)
	acme, err := e.ten.CreateTenant(ctx, ada.ID, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	secret := e.token(e.principal(ada, "acme"), "dash", tenancy.Viewer)
	for _, team := range []string{"payments", "core"} {
		if _, err := e.ten.CreateTeam(ctx, acme.ID, team, team); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ten.AddTeamMember(ctx, acme.ID, team, ada.Email, allowAll); err != nil {
			t.Fatal(err)
		}
	}
	p, err := e.tokenPrincipal(secret, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != tenancy.Viewer || p.TokenRole != tenancy.Viewer || strings.Join(p.Teams, ",") != "core,payments" || p.Name != "token:dash" {
		t.Fatalf("principal %+v", p)
	}
	if _, err := e.ten.RemoveTeamMember(ctx, acme.ID, "core", ada.Email, allowAll); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.tokenPrincipal(secret, "acme"); strings.Join(p.Teams, ",") != "payments" {
		t.Fatalf("teams %v after leaving core", p.Teams)
	}
	if _, err := e.tokenPrincipal(secret, "other"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("another tenant: %v", err)
	}
}

// TestToken_PeerRoles: editor and operator rule different domains; an
// operator cannot make an editor token, and an editor token whose creator
// became an operator keeps only what both allow (viewer).
func TestToken_PeerRoles(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ada := e.user("ada@example.com", true)
	acme, err := e.ten.CreateTenant(ctx, ada.ID, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	bob := e.user("bob@example.com", true)
	if _, err := e.ten.AddMember(ctx, acme.ID, granter(ada), bob.Email, tenancy.Editor); err != nil {
		t.Fatal(err)
	}
	secret := e.token(e.principal(bob, "acme"), "ci", tenancy.Editor)
	if _, err := e.ten.SetMemberRole(ctx, acme.ID, granter(ada), bob.ID, tenancy.Operator); err != nil {
		t.Fatal(err)
	}
	if p, err := e.tokenPrincipal(secret, "acme"); err != nil || p.Role != tenancy.Viewer {
		t.Fatalf("%+v %v: want viewer", p, err)
	}
	_, _, err = e.svc.CreateToken(ctx, e.principal(bob, "acme"), "x", tenancy.Editor, nil)
	wantCode(t, err, problem.CodeForbidden)
}

// Sign-up.

// TestSignup_KnownAddressAnswersAlike: signing up with an address that has
// an account answers exactly as for a new one, after the same hashing work;
// only the mail differs, and the account is untouched.
func TestSignup_KnownAddressAnswersAlike(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	hashes := e.svc.hasher.total.Load()
	first, err := e.svc.Signup(ctx, SignupInput{Email: "Ada@Example.com", Password: password, Name: "Ada", RemoteAddr: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.svc.hasher.total.Load() - hashes; n != 1 {
		t.Fatalf("%d hashes for a new address", n)
	}
	welcome := e.smtp.WaitFor(t, "ada@example.com")
	e.verifyToken(welcome)

	hashes = e.svc.hasher.total.Load()
	again, err := e.svc.Signup(ctx, SignupInput{Email: "ada@example.com", Password: "another password", Name: "Mallory", RemoteAddr: "198.51.100.9"})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.svc.hasher.total.Load() - hashes; n != 1 {
		t.Fatalf("%d hashes for a known address, want 1 as for a new one", n)
	}
	if first != again {
		t.Fatalf("answers differ: %+v and %+v", first, again)
	}
	notice := e.smtp.WaitFor(t, "ada@example.com")
	if _, ok := notice.Link(testBaseURL + "/verify-email"); ok {
		t.Fatal("the notice to a known address carries a verification link")
	}
	if l, ok := notice.Link(testBaseURL + "/login"); !ok || !strings.Contains(notice.Text, "already") {
		t.Fatalf("notice %q without a sign-in link (%q):\n%s", notice.Subject, l, notice.Text)
	}
	if strings.Contains(notice.Text, "Mallory") {
		t.Fatal("the notice repeats what the sign-up form was given")
	}
	if _, err := e.svc.Login(ctx, "ada@example.com", password, "192.0.2.1"); err != nil {
		t.Fatalf("the original password stopped working: %v", err)
	}
	_, err = e.svc.Login(ctx, "ada@example.com", "another password", "192.0.2.1")
	wantCode(t, err, problem.CodeUnauthenticated)
}

// TestSignup_TakenSlugIsAConflictForBoth: a taken tenant slug is reported
// the same way for a new and a known address, and leaves nothing behind.
func TestSignup_TakenSlugIsAConflictForBoth(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	e.signup("ada@example.com", "acme")
	for _, email := range []string{"ada@example.com", "new@example.com"} {
		_, err := e.svc.Signup(ctx, SignupInput{Email: email, Password: password, Name: "X", TenantSlug: "acme", TenantName: "Acme", RemoteAddr: "192.0.2.1"})
		wantCode(t, err, problem.CodeConflict)
	}
	_, err := e.svc.Login(ctx, "new@example.com", password, "192.0.2.1")
	wantCode(t, err, problem.CodeUnauthenticated)
	// A free slug with a known address creates nothing for it.
	if _, err := e.svc.Signup(ctx, SignupInput{Email: "ada@example.com", Password: password, Name: "X", TenantSlug: "free", TenantName: "Free", RemoteAddr: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE slug = 'free'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tenants 'free' (%v): a sign-up with a known address created one", n, err)
	}
}

// TestUnverified_UsesOwnTenantOnly: an unverified account signs in and
// works in the tenant it created, but an invitation to its address waits.
func TestUnverified_UsesOwnTenantOnly(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ada := e.user("ada@example.com", true)
	acme, err := e.ten.CreateTenant(ctx, ada.ID, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.ten.AddMember(ctx, acme.ID, granter(ada), "carol@example.com", tenancy.Admin)
	if err != nil || m.Status != tenancy.Invited {
		t.Fatalf("%+v %v", m, err)
	}

	mail := e.signup("carol@example.com", "carols")
	carol, err := e.svc.Login(ctx, "carol@example.com", password, "192.0.2.1")
	if err != nil || carol.EmailVerified {
		t.Fatalf("%+v %v: an unverified account signs in", carol, err)
	}
	if p := e.principal(carol, "carols"); p.Role != tenancy.Owner {
		t.Fatalf("role in own tenant %q", p.Role)
	}
	if _, err := e.svc.Scope(ctx, Identity{UserID: carol.ID}, "acme"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("unverified carol reaches acme: %v", err)
	}
	cookie, _, err := e.svc.NewSession(ctx, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := e.svc.Session(ctx, cookie); err != nil || s.EmailVerified {
		t.Fatalf("session %+v %v: want unverified", s, err)
	}

	v, err := e.svc.VerifyEmail(audit.WithActor(ctx, audit.Actor{RemoteAddr: "192.0.2.1"}), e.verifyToken(mail))
	if err != nil {
		t.Fatal(err)
	}
	if !v.User.EmailVerified || len(v.Joined) != 1 || v.Joined[0].Slug != "acme" {
		t.Fatalf("verification %+v", v)
	}
	if p := e.principal(carol, "acme"); p.Role != tenancy.Admin {
		t.Fatalf("carol's role in acme %q", p.Role)
	}
	if s, _ := e.svc.Session(ctx, cookie); !s.EmailVerified {
		t.Fatal("session still unverified")
	}
	entries, _, err := audit.NewLog(e.db).List(ctx, acme.ID, "", 1)
	if err != nil || len(entries) != 1 {
		t.Fatal(err)
	}
	if a := entries[0]; a.Action != "member.joined" || a.ActorID == nil || *a.ActorID != carol.ID || a.Actor != "carol@example.com" || a.RemoteAddr != "192.0.2.1" {
		t.Fatalf("audit %+v, want member.joined by carol", a)
	}
}

func TestVerifyEmail_SingleUse(t *testing.T) {
	e := newEnv(t, nil)
	token := e.verifyToken(e.signup("ada@example.com", ""))
	if _, err := e.svc.VerifyEmail(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.VerifyEmail(t.Context(), token)
	if p := wantCode(t, err, problem.CodeInvalid); !strings.Contains(p.Message, "already been used") {
		t.Fatalf("message %q", p.Message)
	}
}

// TestVerifyEmail_SingleUseUnderRace: the same link followed many times at
// once verifies exactly once.
func TestVerifyEmail_SingleUseUnderRace(t *testing.T) {
	e := newEnv(t, nil)
	token := e.verifyToken(e.signup("ada@example.com", ""))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			_, err := e.svc.VerifyEmail(context.Background(), token)
			if err != nil && problem.Code(err) != problem.CodeInvalid {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 8 racing uses succeeded, want 1", ok)
	}
}

func TestVerifyEmail_Expires(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.VerifyTTL = time.Hour })
	m := e.signup("ada@example.com", "")
	if !strings.Contains(m.Text, "within 1 hour") {
		t.Fatalf("the mail does not say how long the link works:\n%s", m.Text)
	}
	e.clock.Add(time.Hour)
	_, err := e.svc.VerifyEmail(t.Context(), e.verifyToken(m))
	if p := wantCode(t, err, problem.CodeInvalid); !strings.Contains(p.Message, "expired") {
		t.Fatalf("message %q", p.Message)
	}
}

func TestVerifyEmail_StopsWhenAddressChanges(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	token := e.verifyToken(e.signup("ada@example.com", ""))
	if _, err := e.db.Pool.Exec(ctx, `UPDATE users SET email = 'ada@elsewhere.example' WHERE email = 'ada@example.com'`); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.VerifyEmail(ctx, token)
	wantCode(t, err, problem.CodeInvalid)
	var verified bool
	if err := e.db.Pool.QueryRow(ctx, `SELECT email_verified_at IS NOT NULL FROM users WHERE email = 'ada@elsewhere.example'`).Scan(&verified); err != nil || verified {
		t.Fatalf("verified=%v %v: the changed address was verified by the old link", verified, err)
	}
}

func TestVerifyEmail_RejectsForgeries(t *testing.T) {
	e := newEnv(t, nil)
	token := e.verifyToken(e.signup("ada@example.com", ""))
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	later := append([]byte(nil), raw...)
	later[20]++ // a later expiry, same signature
	other := newEnv(t, func(c *Config) { c.VerifyKey = []byte(strings.Repeat("k", 32)) })
	for name, tok := range map[string]string{
		"empty":           "",
		"garbage":         "not a token",
		"truncated":       token[:len(token)-4],
		"changed expiry":  base64.RawURLEncoding.EncodeToString(later),
		"another service": other.verifyToken(other.signup("ada@example.com", "")),
	} {
		if _, err := e.svc.VerifyEmail(t.Context(), tok); problem.Code(err) != problem.CodeInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := e.svc.VerifyEmail(t.Context(), token); err != nil {
		t.Fatalf("the genuine link after the forgeries: %v", err)
	}
}

func TestIsOperator_OnlyVerifiedListedAddresses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Operators = []string{" Root@Example.com", "ops@example.com"} })
	ctx := t.Context()
	m := e.signup("root@example.com", "")
	root, err := e.svc.Login(ctx, "root@example.com", password, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.svc.IsOperator(ctx, root.ID); err != nil || ok {
		t.Fatalf("unverified listed address: operator=%v %v", ok, err)
	}
	if _, err := e.svc.VerifyEmail(ctx, e.verifyToken(m)); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.svc.IsOperator(ctx, root.ID); err != nil || !ok {
		t.Fatalf("verified listed address: operator=%v %v", ok, err)
	}
	plain := e.user("plain@example.com", true)
	if ok, err := e.svc.IsOperator(ctx, plain.ID); err != nil || ok {
		t.Fatalf("verified unlisted address: operator=%v %v", ok, err)
	}
}

func TestResendVerification(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MailBurst, c.MailEvery = 2, time.Hour })
	ctx := t.Context()
	first := e.signup("ada@example.com", "") // the first of two mails allowed
	ada, err := e.svc.Login(ctx, "ada@example.com", password, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ResendVerification(ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	second := e.smtp.WaitFor(t, "ada@example.com")
	if e.verifyToken(first) == e.verifyToken(second) {
		t.Fatal("the resent link is the same link")
	}
	err = e.svc.ResendVerification(ctx, ada.ID)
	if p := wantCode(t, err, problem.CodeRateLimited); p.RetryAfter <= 0 {
		t.Fatalf("no Retry-After: %+v", p)
	}
	if _, err := e.svc.VerifyEmail(ctx, e.verifyToken(second)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.svc.ResendVerification(ctx, ada.ID), problem.CodeConflict)
}

// Rate limits and hashing.

func TestSignup_RateLimitedPerClientAndPerRecipient(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.SignupBurst, c.SignupEvery = 2, time.Hour
		c.MailBurst, c.MailEvery = 1, time.Hour
	})
	ctx := t.Context()
	in := func(email, addr string) SignupInput {
		return SignupInput{Email: email, Password: password, Name: "X", RemoteAddr: addr}
	}
	if _, err := e.svc.Signup(ctx, in("a@example.com", "192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	// The recipient's bucket is empty: from another client too.
	p := wantCode(t, func() error { _, err := e.svc.Signup(ctx, in("a@example.com", "198.51.100.1")); return err }(), problem.CodeRateLimited)
	if p.RetryAfter <= 0 {
		t.Fatalf("no Retry-After: %+v", p)
	}
	if _, err := e.svc.Signup(ctx, in("b@example.com", "192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	// The client's bucket (2) is empty, whatever the address.
	_, err := e.svc.Signup(ctx, in("c@example.com", "192.0.2.1"))
	wantCode(t, err, problem.CodeRateLimited)
	if _, err := e.svc.Signup(ctx, in("c@example.com", "203.0.113.5")); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// TestSignup_BoundedHashing: 40 sign-ups at once never run more than
// HashConcurrency hashes together; the rest wait their turn and succeed.
func TestSignup_BoundedHashing(t *testing.T) {
	const slots = 2
	e := newEnv(t, func(c *Config) { c.HashConcurrency, c.HashQueue = slots, 40 })
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			<-start
			_, errs[i] = e.svc.Signup(context.Background(), SignupInput{
				Email: "user" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.com", Password: password, Name: "X", RemoteAddr: "192.0.2.1"})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
	if peak := e.svc.hasher.peak.Load(); peak > slots || peak < 1 {
		t.Fatalf("%d hashes ran at once, want at most %d", peak, slots)
	}
	if n := e.svc.hasher.total.Load(); n != 40 {
		t.Fatalf("%d hashes for 40 sign-ups", n)
	}
}

// TestHasher_BusyBeyondQueue: with every slot taken and the queue full, a
// sign-up or sign-in is answered unavailable at once instead of waiting.
func TestHasher_BusyBeyondQueue(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HashConcurrency, c.HashQueue = 1, 1 })
	ctx := t.Context()
	h := e.svc.hasher
	h.slots <- struct{}{} // the one slot is taken
	waiterDone := make(chan error, 1)
	go func() {
		_, err := h.hash(context.Background(), "queued")
		waiterDone <- err
	}()
	for h.waiting.Load() != 1 {
		time.Sleep(time.Millisecond) // until the waiter is queued; no timing is asserted
	}
	_, err := e.svc.Signup(ctx, SignupInput{Email: "a@example.com", Password: password, Name: "X", RemoteAddr: "192.0.2.1"})
	if p := wantCode(t, err, problem.CodeUnavailable); p.RetryAfter <= 0 {
		t.Fatalf("no Retry-After: %+v", p)
	}
	_, err = e.svc.Login(ctx, "a@example.com", password, "192.0.2.1")
	wantCode(t, err, problem.CodeUnavailable)
	// A waiter whose context ends leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	<-h.slots // free the slot: the queued waiter runs
	if err := <-waiterDone; err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{}
	_, err = h.hash(cctx, "cancelled")
	wantCode(t, err, problem.CodeUnavailable)
	<-h.slots
}

// TestLogin_AttackerCannotLockOutVictim: an attacker who spends every
// attempt on the victim's account from one address does not stop the
// victim signing in from another.
func TestLogin_AttackerCannotLockOutVictim(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginBurst, c.LoginEvery = 3, time.Hour })
	ctx := t.Context()
	e.user("victim@example.com", true)
	const attacker, victim = "198.51.100.66", "203.0.113.10"
	for i := range 3 {
		_, err := e.svc.Login(ctx, "victim@example.com", "guess"+string(rune('0'+i)), attacker)
		wantCode(t, err, problem.CodeUnauthenticated)
	}
	_, err := e.svc.Login(ctx, "victim@example.com", password, attacker)
	wantCode(t, err, problem.CodeRateLimited)
	if _, err := e.svc.Login(ctx, "victim@example.com", password, victim); err != nil {
		t.Fatalf("the victim is locked out: %v", err)
	}
}

// TestLogin_LimitedPerClientAcrossAccounts: one address trying many
// accounts runs out too (three times the per-account burst).
func TestLogin_LimitedPerClientAcrossAccounts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginBurst, c.LoginEvery = 2, time.Hour })
	ctx := t.Context()
	for i := range 6 {
		_, err := e.svc.Login(ctx, "user"+string(rune('a'+i))+"@example.com", "nope nope", "198.51.100.66")
		wantCode(t, err, problem.CodeUnauthenticated)
	}
	_, err := e.svc.Login(ctx, "fresh@example.com", "nope nope", "198.51.100.66")
	wantCode(t, err, problem.CodeRateLimited)
	_, err = e.svc.Login(ctx, "fresh@example.com", "nope nope", "198.51.100.67")
	wantCode(t, err, problem.CodeUnauthenticated)
}

// TestSweepVerifications forgets spent links once they have expired, and
// only those.
func TestSweepVerifications(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	now := e.clock.Now()
	e.clock.Add(-48 * time.Hour) // this link expired a day ago
	old := e.verifyToken(e.signup("old@example.com", ""))
	if _, err := e.svc.VerifyEmail(ctx, old); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(now.Sub(e.clock.Now()))
	if _, err := e.svc.VerifyEmail(ctx, e.verifyToken(e.signup("new@example.com", ""))); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.SweepVerifications(ctx)
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want the expired one", n, err)
	}
	var left int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM email_verification_uses`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d left, %v", left, err)
	}
}

// allowAll lets every action through: these tests are about the domain, not
// about who may act.
func allowAll(context.Context, access.Object) error { return nil }
