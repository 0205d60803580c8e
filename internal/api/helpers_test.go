package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"switchboard/internal/api"
	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/eventstore"
	"switchboard/internal/idempotency"
	"switchboard/internal/lockd"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is the API on a fresh database, reached over real HTTP.
type testServer struct {
	t    testing.TB
	URL  string
	DB   *database.DB
	Key  ed25519.PrivateKey
	Auth *auth.Service
}

const testIssuer = "http://switchboard.test"

// serverConfig is what a test may change about its server.
type serverConfig struct {
	auth      auth.Config
	locks     bool        // start a single-node Raft group for the lock services
	node      *lockd.Node // or use this node of a group the test runs
	operators []string
	peerURLs  map[string]string
	bodyWait  time.Duration // Deps.BodyTimeout
}

type serverOption func(*serverConfig)

// withAuth changes the identity service's configuration.
func withAuth(f func(*auth.Config)) serverOption { return func(c *serverConfig) { f(&c.auth) } }

// withLocks starts a single-node Raft group behind the lock, election and
// KV routes (about a second per server, so only for tests that use them).
func withLocks() serverOption { return func(c *serverConfig) { c.locks = true } }

// withNode serves the lock routes from a node the test started.
func withNode(n *lockd.Node) serverOption { return func(c *serverConfig) { c.node = n } }

// withPeerURLs maps Raft node ids to Switchboard URLs.
func withPeerURLs(m map[string]string) serverOption { return func(c *serverConfig) { c.peerURLs = m } }

// withBodyTimeout sets how long a request body may take to arrive.
func withBodyTimeout(d time.Duration) serverOption { return func(c *serverConfig) { c.bodyWait = d } }

// withOperators names the platform operators.
func withOperators(emails ...string) serverOption {
	return func(c *serverConfig) { c.operators = emails }
}

func newTestServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	db := dbtest.New(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sc := serverConfig{auth: auth.Config{Issuer: testIssuer, Key: key, LoginBurst: 1000, LoginEvery: time.Millisecond}}
	for _, o := range opts {
		o(&sc)
	}
	ten := tenancy.New(db)
	authn, err := auth.New(sc.auth, db, ten)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(api.LogHandler(slog.NewTextHandler(io.Discard, nil)))
	locks := sc.node
	if sc.locks && locks == nil {
		locks, err = lockd.New(lockd.Config{NodeID: "n1", BindAddr: "127.0.0.1:0", DataDir: t.TempDir()}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { locks.Close() })
		deadline := time.Now().Add(15 * time.Second)
		for locks.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("raft not ready: %v", locks.Ready())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	events, err := eventstore.New(eventstore.Config{}, db, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	e, _ := api.NewServer(api.Deps{Events: events, Auth: authn, Tenancy: ten, RBAC: rbac.New(db), Audit: audit.NewLog(db), Idem: idempotency.New(db), Locks: locks, Operators: sc.operators, PeerURLs: sc.peerURLs, Log: log, BodyTimeout: sc.bodyWait,
		Ready: func(ctx context.Context) error { return db.Pool.Ping(ctx) }})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &testServer{t: t, URL: srv.URL, DB: db, Key: key, Auth: authn}
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
	var p api.Problem
	r.json(t, &p)
	return p.Code
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON). headers come in pairs.
func (s *testServer) do(method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
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
		req.Header.Set("Content-Type", "application/json")
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
	body := map[string]any{"email": email, "password": "correct horse battery", "name": "Test " + email}
	if tenant != "" {
		body["tenant"] = map[string]string{"slug": tenant, "name": "Tenant " + tenant}
	}
	s.must(http.StatusCreated, "POST", "/api/v1/auth/signup", "", body)
	return s.login(email)
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
