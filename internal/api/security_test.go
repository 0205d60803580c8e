package api_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/internal/api"
	"switchboard/internal/auth"
)

// claimsFor returns the claims of a valid access token for sub, changed by
// the edits.
func (s *testServer) claimsFor(sub string, edits ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": s.URL,
		"sub": sub,
		"aud": []string{auth.Audience},
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
		"jti": "test",
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign with %s: %v", m.Alg(), err)
	}
	return tok
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wantUnauthenticated checks that cred is refused on an identity route and
// on a tenant route.
func wantUnauthenticated(t *testing.T, s *testServer, cred string, headers ...string) {
	t.Helper()
	for _, path := range []string{"/api/v1/me", "/api/v1/tenants/acme/teams"} {
		r := s.do("GET", path, cred, nil, headers...)
		wantProblem(t, r, 401, "unauthenticated")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s: 401 without a Bearer challenge", path)
		}
	}
}

func userID(s *testServer, token string) string {
	s.t.Helper()
	var me api.MeResponse
	s.must(200, "GET", "/api/v1/me", token, nil).json(s.t, &me)
	return me.User.ID.String()
}

func TestJWT_AttacksAreUnauthenticated(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ada := s.signup("ada@acme.test", "acme")
	adaID := userID(s, ada)
	bobID := userID(s, s.signup("bob@acme.test", ""))
	pub := s.Key.Public().(ed25519.PublicKey)

	// The control: a token crafted here the way the server signs is accepted,
	// so each refusal below is the attack's doing.
	s.must(200, "GET", "/api/v1/tenants/acme/teams", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID)), nil)

	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	parts := strings.Split(ada, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWS", ada)
	}
	var payload map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &payload) != nil {
		t.Fatalf("access token payload: %v", err)
	}
	payload["sub"] = bobID
	flipped := []byte(parts[2])
	if flipped[3] == 'A' {
		flipped[3] = 'B'
	} else {
		flipped[3] = 'A'
	}

	cases := []struct {
		name  string
		token string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, s.claimsFor(adaID))},
		{"alg none header on a real signature", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "." + parts[2]},
		{"alg none header, no signature", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."},
		{"HS256 keyed with the public key bytes", sign(t, jwt.SigningMethodHS256, []byte(pub), s.claimsFor(adaID))},
		{"HS256 keyed with the public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, s.claimsFor(adaID))},
		{"HS512 keyed with the public key bytes", sign(t, jwt.SigningMethodHS512, []byte(pub), s.claimsFor(adaID))},
		{"another Ed25519 key", sign(t, jwt.SigningMethodEdDSA, otherKey, s.claimsFor(adaID))},
		{"expired", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		}))},
		{"wrong iss", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { c["iss"] = "http://evil.test" }))},
		{"missing iss", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"wrong aud", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { c["aud"] = []string{"another-api"} }))},
		{"missing aud", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"missing exp", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"issued in the future", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }))},
		{"not valid yet", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor(adaID, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))},
		{"sub is not a user id", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor("ada@acme.test"))},
		{"sub of no user", sign(t, jwt.SigningMethodEdDSA, s.Key, s.claimsFor("00000000-0000-4000-8000-000000000000"))},
		{"tampered payload: sub of another user", parts[0] + "." + b64(payload) + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + string(flipped)},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"two segments", parts[0] + "." + parts[1]},
		{"garbage", "garbage"},
		{"dots", "..."},
		{"three garbage segments", "a.b.c"},
		{"header only", parts[0]},
		{"JSON", `{"sub":"` + adaID + `"}`},
		{"unicode", "☃.☃.☃"},
		{"very long", strings.Repeat("A", 16<<10)},
		{"API token prefix only", "sb_"},
		{"API token of no token", "sb_" + strings.Repeat("0", 32) + "_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{"API token with a non-hex id", "sb_" + strings.Repeat("z", 32) + "_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{"API token with a short secret", "sb_" + strings.Repeat("0", 32) + "_AAAA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantUnauthenticated(t, s.bind(t), c.token) })
	}

	// Credentials in the wrong place or scheme.
	for _, h := range []struct{ name, value string }{
		{"no header", ""},
		{"Bearer alone", "Bearer"},
		{"Bearer and a space", "Bearer "},
		{"Basic with the right password", "Basic " + base64.StdEncoding.EncodeToString([]byte("ada@acme.test:correct horse battery"))},
		{"another scheme", "Token " + ada},
		{"no space after Bearer", "Bearer" + ada},
		{"no scheme", ada},
	} {
		t.Run("Authorization: "+h.name, func(t *testing.T) { wantUnauthenticated(t, s.bind(t), "", "Authorization", h.value) })
	}
	// Ada's own token still works: nothing above locked her out.
	s.must(200, "GET", "/api/v1/tenants/acme/teams", ada, nil)
}

func TestAPIToken_RevokedExpiredAndTamperedAreUnauthenticated(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("ada@acme.test", "acme")
	create := func(s *testServer, body map[string]any) api.CreateTokenResponse {
		var tok api.CreateTokenResponse
		s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, body).json(s.t, &tok)
		s.must(200, "GET", "/api/v1/tenants/acme/teams", tok.Token, nil) // works before the attack
		return tok
	}

	expiresAt := time.Now().Add(2 * time.Second)
	expiring := create(s, map[string]any{"name": "short-lived", "role": "viewer", "expires_at": expiresAt})

	t.Run("revoked", func(t *testing.T) {
		s := s.bind(t)
		tok := create(s, map[string]any{"name": "revoked", "role": "admin"})
		s.must(204, "DELETE", "/api/v1/tenants/acme/tokens/"+tok.ID.String(), owner, nil)
		wantUnauthenticated(t, s, tok.Token)
	})
	t.Run("tampered secret", func(t *testing.T) {
		s := s.bind(t)
		tok := create(s, map[string]any{"name": "tampered", "role": "admin"})
		i := len(tok.Token) - len(tokenSecret(tok.Token)) // the secret's first character carries 6 whole bits
		b := []byte(tok.Token)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		wantUnauthenticated(t, s, string(b))
		wantUnauthenticated(t, s, tok.Token+"A")
		wantUnauthenticated(t, s, tok.Token[:len(tok.Token)-1])
	})
	t.Run("secret of another token", func(t *testing.T) {
		s := s.bind(t)
		a := create(s, map[string]any{"name": "a", "role": "viewer"})
		b := create(s, map[string]any{"name": "b", "role": "admin"})
		idOfB := strings.TrimSuffix(b.Token, tokenSecret(b.Token))
		wantUnauthenticated(t, s, idOfB+tokenSecret(a.Token))
	})
	t.Run("expired", func(t *testing.T) {
		time.Sleep(time.Until(expiresAt) + 200*time.Millisecond)
		wantUnauthenticated(t, s.bind(t), expiring.Token)
	})
}

func TestLogin_RateLimitedWith429AndRetryAfter(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, withAuth(func(c *auth.Config) { c.LoginBurst = 3; c.LoginEvery = time.Hour }))
	s.signup("ada@acme.test", "acme") // its login is the first attempt on ada's account
	login := func(email, password string) response {
		return s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
	}
	for i := 0; i < 2; i++ {
		wantProblem(t, login("ada@acme.test", "wrong password"), 401, "unauthenticated")
	}
	wantLimited := func(t *testing.T, r response) {
		t.Helper()
		wantProblem(t, r, 429, "rate_limited")
		ra := r.Header.Get("Retry-After")
		n, err := strconv.Atoi(ra)
		if err != nil || n <= 0 || n > 3600 {
			t.Fatalf("Retry-After %q: want a positive whole number of seconds, at most the refill interval", ra)
		}
	}
	t.Run("per account", func(t *testing.T) {
		wantLimited(t, login("ada@acme.test", "wrong password"))
		// The right password does not get through either.
		wantLimited(t, login("ada@acme.test", "correct horse battery"))
		// Nor does the same account spelled differently.
		wantLimited(t, login("ADA@Acme.Test", "correct horse battery"))
		wantLimited(t, login("  ada@acme.test ", "correct horse battery"))
	})
	t.Run("per address", func(t *testing.T) {
		// Spraying many accounts from one address is limited too.
		for i := 0; ; i++ {
			r := login("user"+strconv.Itoa(i)+"@acme.test", "wrong password")
			if r.Status == 429 {
				wantLimited(t, r)
				break
			}
			wantProblem(t, r, 401, "unauthenticated")
			if i == 30 {
				t.Fatal("30 attempts on distinct accounts from one address were never limited")
			}
		}
	})
}

// TestPolicy_AcceptedConditionNeverMakesAuthorization500: a rule the API
// accepted must not turn later requests into internal errors. Each condition
// is either rejected (400) or, once stored, requests by the role it names
// answer 2xx, 403 or 404 — never 500.
func TestPolicy_AcceptedConditionNeverMakesAuthorization500(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("ada@acme.test", "acme")
	viewer := s.member(owner, "acme", "vic@acme.test", "viewer")
	s.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"})
	cases := []struct {
		name     string
		resource string
		cond     string
	}{
		{"does not parse, on a kind other than dlq", "team", `r.sub.Role ==`},
		{"unbalanced, on a kind other than dlq", "team", `(((((`},
		{"not a boolean, on a kind other than dlq", "team", `r.sub.Role`},
		{"error hidden behind a short circuit", "*", `r.obj.Kind == "dlq" || hasTeam(r.sub, 5)`},
		{"regular expression from the request", "*", `r.obj.Kind =~ r.obj.Name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.bind(t)
			r := s.do("POST", "/api/v1/tenants/acme/policies", owner, map[string]string{
				"role": "viewer", "resource": c.resource, "action": "*", "effect": "deny", "condition": c.cond})
			if r.Status == 400 {
				wantProblem(t, r, 400, "invalid")
				return
			}
			if r.Status != 201 {
				t.Fatalf("POST policy: status %d; body %s", r.Status, r.Body)
			}
			var rule struct{ ID string }
			r.json(t, &rule)
			defer s.must(204, "DELETE", "/api/v1/tenants/acme/policies/"+rule.ID, owner, nil)
			for _, path := range []string{"/teams", "/teams/core", "/teams/(", "/members", ""} {
				r := s.do("GET", "/api/v1/tenants/acme"+path, viewer, nil)
				if r.Status >= 500 {
					t.Errorf("after accepting condition %q, a viewer's GET acme%s is %d: %s", c.cond, path, r.Status, r.Body)
				}
			}
		})
	}
}

// tokenSecret is the secret part of an API token, sb_<32 hex id>_<secret>.
// The secret is base64url, so it may itself contain '_': split by position.
func tokenSecret(token string) string {
	const secretAt = len("sb_") + 32 + len("_")
	if len(token) <= secretAt {
		return token
	}
	return token[secretAt:]
}

// TestSecrets_NeverStoredInPlaintext: a password and an API token's secret
// are shown once and stored only hashed, including when the request that
// created the token carried an Idempotency-Key (whose answer is kept for
// replays). Every column of every table is searched, as text and as bytes.
func TestSecrets_NeverStoredInPlaintext(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("ada@acme.test", "acme")
	var plain, keyed api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "plain", "role": "viewer"}).json(t, &plain)
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "keyed", "role": "admin"},
		"Idempotency-Key", "create-keyed-token").json(t, &keyed)
	secrets := map[string]string{
		"password":            "correct horse battery",
		"token secret":        tokenSecret(plain.Token),
		"keyed token secret":  tokenSecret(keyed.Token),
		"keyed token (whole)": keyed.Token,
	}
	rows, err := s.DB.Pool.Query(t.Context(), `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if rows.Close(); rows.Err() != nil || len(tables) < 5 {
		t.Fatalf("tables %v: %v", tables, rows.Err())
	}
	for _, table := range tables {
		for what, secret := range secrets {
			var n int
			err := s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM `+table+` x
				WHERE strpos(x::text, $1) > 0 OR strpos(x::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0`, secret).Scan(&n)
			if err != nil {
				t.Fatalf("search %s: %v", table, err)
			}
			if n > 0 {
				t.Errorf("the %s is stored in plaintext in %d row(s) of table %s", what, n, table)
			}
		}
	}
}

// TestPolicy_OwnersCannotBeLockedOut: admins rank below owners (they cannot
// demote or remove one), so no rule an admin writes may take an owner's
// access away; and no rule at all may stop an owner from managing the
// policy, or a tenant could only be recovered in the database. Whatever a
// rule's request answers (refused, or stored but without effect on owners),
// the owner can afterwards still read the tenant and delete every rule.
func TestPolicy_OwnersCannotBeLockedOut(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("ada@acme.test", "acme")
	admin := s.member(owner, "acme", "adm@acme.test", "admin")
	var adminTok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "admin bot", "role": "admin"}).json(t, &adminTok)
	cases := []struct {
		name, author, cred string
		rule               map[string]string
	}{
		{"admin denies owners everything", "admin", admin, map[string]string{"role": "owner", "resource": "*", "action": "*", "effect": "deny"}},
		{"admin token denies owners the policy", "token:admin", adminTok.Token, map[string]string{"role": "owner", "resource": "policy", "action": "*", "effect": "deny"}},
		{"admin denies owners members, conditionally", "admin", admin, map[string]string{"role": "owner", "resource": "member", "action": "*", "effect": "deny", "condition": `r.sub.Role == "owner"`}},
		{"owner denies owners the policy", "owner", owner, map[string]string{"role": "owner", "resource": "policy", "action": "*", "effect": "deny"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.bind(t)
			r := s.do("POST", "/api/v1/tenants/acme/policies", c.cred, c.rule)
			if r.Status >= 500 {
				t.Fatalf("POST policy: %d %s", r.Status, r.Body)
			}
			if c.author != "owner" && r.Status == 201 {
				t.Errorf("%s (ranked below owner) wrote a rule about owners; want 403 forbidden", c.author)
			}
			for _, path := range []string{"/teams", "/members", "/policies"} {
				if r := s.do("GET", "/api/v1/tenants/acme"+path, owner, nil); r.Status != 200 {
					t.Errorf("after the rule, the owner's GET acme%s is %d: %s", path, r.Status, r.Body)
				}
			}
			if r.Status != 201 {
				return
			}
			var rule struct{ ID string }
			r.json(t, &rule)
			if d := s.do("DELETE", "/api/v1/tenants/acme/policies/"+rule.ID, owner, nil); d.Status != 204 {
				t.Errorf("the owner cannot delete the rule: %d %s", d.Status, d.Body)
				// Recover in the database, so the next case starts clean.
				if _, err := s.DB.Pool.Exec(t.Context(), `WITH d AS (DELETE FROM policies WHERE id = $1 RETURNING tenant_id)
					UPDATE tenants SET policy_version = policy_version + 1 WHERE id IN (SELECT tenant_id FROM d)`, rule.ID); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
