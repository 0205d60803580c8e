// Package client is a small typed Go client of the Switchboard REST API
// (/api/v1). The end-to-end tests drive the real server through it, so every
// test run exercises it; it is meant to grow into the public Go SDK, and so
// it imports nothing from the server's internal packages: its types are its
// own reading of the API contract.
//
// Every call takes a context. A non-2xx answer is returned as an *Error that
// carries the server's problem+json document (status, code, detail and the
// per-field errors).
//
// A server that is a follower of the lock service's Raft group answers lock,
// election and key-value requests with a 307 redirect to the leader (when it
// knows the leader's URL). The client follows it with the same method, body
// and headers, the bearer credential included as long as the leader is on
// the same host (any port) or a subdomain of it, over https when the call
// was; a redirect elsewhere, or any other than 307 and 308, fails with an
// error instead of being followed.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBody bounds how much of a response the client reads.
const maxBody = 8 << 20

// maxRedirects bounds the redirects one call follows: a follower sends the
// call to the leader, and a leader that lost its place in between may send
// it on once more.
const maxRedirects = 3

// Client calls one Switchboard server. It is safe for concurrent use.
type Client struct {
	base      string
	http      *http.Client
	redirects *redirectHook // shared with the clients WithToken makes

	mu    sync.Mutex // guards token
	token string     // bearer credential: an access token or an API token
}

// Redirect is one redirect the client follows: the method it sends again,
// and the URL it was sent to and is sent on to.
type Redirect struct {
	Method   string
	From, To *url.URL
}

// redirectHook holds the function OnRedirect set; the http.Client's
// CheckRedirect, shared by every client WithToken makes, calls it.
type redirectHook struct {
	mu sync.Mutex // guards fn
	fn func(Redirect)
}

func (h *redirectHook) call(r Redirect) {
	h.mu.Lock()
	fn := h.fn
	h.mu.Unlock()
	if fn != nil {
		fn(r)
	}
}

// New returns a client of the server at baseURL (such as
// "http://127.0.0.1:8080"), with no credentials and its own connection pool.
func New(baseURL string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hook := &redirectHook{}
	return &Client{
		base:      strings.TrimRight(baseURL, "/"),
		redirects: hook,
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second,
			CheckRedirect: func(req *http.Request, via []*http.Request) error { return checkRedirect(hook, req, via) }},
	}
}

// checkRedirect is the redirect policy: at most maxRedirects hops, and never
// one that would lose the bearer credential. net/http copies Authorization
// to the same host on any port and to its subdomains only; elsewhere it
// drops it, and the call would fail with a puzzling 401 from the leader.
func checkRedirect(hook *redirectHook, req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	// Only 307 and 308 keep the method and body; a 301, 302 or 303 would
	// turn a write into a GET that seems to succeed.
	if code := req.Response.StatusCode; code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
		return fmt.Errorf("the server answered %d to %s %s; the client follows only 307 and 308", code, via[0].Method, via[0].URL.Path)
	}
	if via[0].Header.Get("Authorization") != "" {
		if req.Header.Get("Authorization") == "" {
			return fmt.Errorf("redirected to %s, another host than %s: the client does not send its credentials there",
				req.URL.Host, via[0].URL.Host)
		}
		if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirected from https to %s://%s: the client does not send its credentials unencrypted", req.URL.Scheme, req.URL.Host)
		}
	}
	hook.call(Redirect{Method: req.Method, From: via[len(via)-1].URL, To: req.URL})
	return nil
}

// WithToken returns a client of the same server that sends token as its
// bearer credential; it shares c's connection pool and redirect hook.
func (c *Client) WithToken(token string) *Client {
	return &Client{base: c.base, http: c.http, redirects: c.redirects, token: token}
}

// OnRedirect sets fn to be called with every redirect the client is about
// to follow (nil: none), for logging or tests. It applies to the clients
// WithToken made from c too.
func (c *Client) OnRedirect(fn func(Redirect)) {
	c.redirects.mu.Lock()
	defer c.redirects.mu.Unlock()
	c.redirects.fn = fn
}

// SetToken replaces the bearer credential.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// Token returns the bearer credential, or "".
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// CloseIdleConnections closes the idle connections of the client's pool,
// which clients made with WithToken share.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Error is a non-2xx answer: the RFC 9457 problem document the server sent,
// with its stable machine Code. When the body was not a problem document,
// Code is empty and Detail holds the start of the body.
type Error struct {
	Status    int               `json:"status"`
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Detail    string            `json:"detail"`
	Code      string            `json:"code"`
	Instance  string            `json:"instance"`
	RequestID string            `json:"request_id"`
	Errors    map[string]string `json:"errors"` // per-field validation messages

	// RetryAfter is the Retry-After header of the answer: the server asks
	// to try again after it (a lock-service node without a leader, a busy
	// stream). 0 when absent.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "switchboard: %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	for k, v := range e.Errors {
		fmt.Fprintf(&b, "; %s %s", k, v)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// StatusOf returns the HTTP status of an *Error in err's chain, 0 when err is
// nil and -1 when err is another error (such as a network failure).
func StatusOf(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := AsError(err); ok {
		return e.Status
	}
	return -1
}

// do sends a request with an optional JSON body and decodes a 2xx JSON
// answer into out (when out is not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, nil, in, out)
}

// send is do with extra request headers (conditional requests).
func (c *Client) send(ctx context.Context, method, path string, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		// A *bytes.Reader lets NewRequest set GetBody, which a 307 or 308
		// redirect needs to send the body again.
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := c.Token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return problemOf(resp, raw)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode %d answer: %w", method, path, resp.StatusCode, err)
	}
	return nil
}

// problemOf reads a non-2xx answer as a problem document.
func problemOf(resp *http.Response, raw []byte) *Error {
	e := &Error{}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if err := json.Unmarshal(raw, e); err != nil {
			e = &Error{}
		}
	}
	if e.Code == "" && e.Detail == "" {
		snippet := strings.TrimSpace(string(raw))
		if len(snippet) > 300 {
			snippet = snippet[:300] + "…"
		}
		e.Detail = snippet
	}
	e.Status = resp.StatusCode // the status line wins over the document
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Request-Id")
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return e
}

func tenantPath(tenant string, rest ...string) string {
	p := "/api/v1/tenants/" + url.PathEscape(tenant)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func (o ListOptions) query() string {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Ready reports whether the server answers GET /readyz with 200.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// OpenAPI returns the server's OpenAPI document (GET /api/v1/openapi.json),
// checked to be JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/openapi.json", nil, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// Signup creates an account and, when in.Tenant is set, a tenant it owns;
// the server mails a link to confirm the address (VerifyEmail).
func (c *Client) Signup(ctx context.Context, in SignupRequest) (SignupResponse, error) {
	var out SignupResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/auth/signup", in, &out)
	return out, err
}

// VerifyEmail confirms an address with the token of its mailed link.
func (c *Client) VerifyEmail(ctx context.Context, token string) (Verification, error) {
	var out Verification
	err := c.do(ctx, http.MethodPost, "/api/v1/auth/verify-email", map[string]string{"token": token}, &out)
	return out, err
}

// Login exchanges email and password for an access token, which the client
// then sends on every call.
func (c *Client) Login(ctx context.Context, email, password string) (LoginResponse, error) {
	var out LoginResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/auth/login", loginRequest{Email: email, Password: password}, &out); err != nil {
		return out, err
	}
	if out.AccessToken == "" {
		return out, errors.New("login: the server sent no access token")
	}
	c.SetToken(out.AccessToken)
	return out, nil
}

// Me returns the caller and their memberships.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var out Me
	err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, &out)
	return out, err
}

// CreateTeam creates a team in tenant (a slug).
func (c *Client) CreateTeam(ctx context.Context, tenant string, in CreateTeamRequest) (Team, error) {
	var out Team
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "teams"), in, &out)
	return out, err
}

// ListTeams returns one page of tenant's teams.
func (c *Client) ListTeams(ctx context.Context, tenant string, opts ListOptions) (Page[Team], error) {
	var out Page[Team]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "teams")+opts.query(), nil, &out)
	return out, err
}

// CreateToken creates an API token in tenant; the answer holds its secret,
// which the server never shows again.
func (c *Client) CreateToken(ctx context.Context, tenant string, in CreateTokenRequest) (CreatedToken, error) {
	var out CreatedToken
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "tokens"), in, &out)
	return out, err
}

// ListTokens returns one page of tenant's API tokens, revoked ones included.
func (c *Client) ListTokens(ctx context.Context, tenant string, opts ListOptions) (Page[APIToken], error) {
	var out Page[APIToken]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "tokens")+opts.query(), nil, &out)
	return out, err
}

// RevokeToken revokes the API token id of tenant.
func (c *Client) RevokeToken(ctx context.Context, tenant, id string) error {
	return c.do(ctx, http.MethodDelete, tenantPath(tenant, "tokens", id), nil, nil)
}

// Audit returns one page of tenant's audit log, newest first.
func (c *Client) Audit(ctx context.Context, tenant string, opts ListOptions) (Page[AuditEntry], error) {
	var out Page[AuditEntry]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "audit")+opts.query(), nil, &out)
	return out, err
}
