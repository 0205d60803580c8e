package api_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/app/apptest"
	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/tenancy"
	"switchboard/internal/web"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is the whole application on a fresh database (built by
// internal/app, as in production), reached over real HTTP.
type testServer struct {
	t    testing.TB
	URL  string
	DB   *database.DB
	Key  ed25519.PrivateKey
	Auth *auth.Service
	App  *apptest.Server
}

type serverOption = apptest.Option

// withAuth changes the identity service's configuration.
func withAuth(f func(*auth.Config)) serverOption { return func(c *app.Config) { f(&c.Auth) } }

// withPeerURLs maps Raft node ids to Switchboard URLs.
func withPeerURLs(m map[string]string) serverOption { return func(c *app.Config) { c.PeerURLs = m } }

// withBodyTimeout sets how long a request body may take to arrive.
func withBodyTimeout(d time.Duration) serverOption { return func(c *app.Config) { c.BodyTimeout = d } }

// withOperators names the platform operators.
func withOperators(emails ...string) serverOption {
	return func(c *app.Config) { c.Operators = emails }
}

// withMetricsToken lets /metrics answer a request bearing token.
func withMetricsToken(token string) serverOption {
	return func(c *app.Config) { c.MetricsToken = token }
}

// withBaseURL sets the public URL (the token issuer and the browser origin).
func withBaseURL(u string) serverOption { return func(c *app.Config) { c.BaseURL = u } }

func newTestServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	a := apptest.Start(t, opts...)
	return &testServer{t: t, URL: a.URL, DB: a.DB, Key: a.Key, Auth: a.Auth, App: a}
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r response) problemCode(t testing.TB) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json; body %s", r.Status, ct, r.Body)
	}
	var p web.Problem
	r.json(t, &p)
	return p.Code
}

// yamlBody is a request body sent as application/yaml.
type yamlBody string

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON). headers come in pairs.
func (s *testServer) do(method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case yamlBody:
		rd, contentType = strings.NewReader(string(b)), "application/yaml"
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// must sends a request and fails the test unless the status is want.
func (s *testServer) must(want int, method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	r := s.do(method, path, token, body, headers...)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// signup creates a user (and a tenant with slug when not empty) and returns
// an access token for them.
func (s *testServer) signup(email, tenant string) string {
	s.t.Helper()
	s.signupUnverified(email, tenant)
	s.verifyEmail(email)
	return s.login(email)
}

// signupUnverified creates a user (and a tenant with slug when not empty)
// without following the mailed link.
func (s *testServer) signupUnverified(email, tenant string) {
	s.t.Helper()
	body := map[string]any{"email": email, "password": "correct horse battery", "name": "Test " + email}
	if tenant != "" {
		body["tenant"] = map[string]string{"slug": tenant, "name": "Tenant " + tenant}
	}
	s.must(http.StatusAccepted, "POST", "/api/v1/auth/signup", "", body)
}

// verificationToken waits for the next mail to email and returns the token
// of its verification link.
func (s *testServer) verificationToken(email string) string {
	s.t.Helper()
	m := s.App.Mail.WaitFor(s.t, email)
	link, ok := m.Link(s.URL + "/verify-email?token=")
	if !ok {
		s.t.Fatalf("the mail to %s has no verification link:\n%s", email, m.Text)
	}
	u, err := url.Parse(link)
	if err != nil {
		s.t.Fatal(err)
	}
	return u.Query().Get("token")
}

// verifyEmail follows the verification link mailed to email.
func (s *testServer) verifyEmail(email string) {
	s.t.Helper()
	s.must(http.StatusOK, "POST", "/api/v1/auth/verify-email", "", map[string]string{"token": s.verificationToken(email)})
}

func (s *testServer) login(email string) string {
	s.t.Helper()
	var out api.LoginResponse
	s.must(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"}).json(s.t, &out)
	return out.AccessToken
}

// member adds email to tenant with role (signing the user up first) and
// returns their access token.
func (s *testServer) member(ownerToken, tenant, email string, role tenancy.Role) string {
	s.t.Helper()
	tok := s.signup(email, "")
	s.must(http.StatusCreated, "POST", "/api/v1/tenants/"+tenant+"/members", ownerToken, map[string]string{"email": email, "role": string(role)})
	return tok
}
