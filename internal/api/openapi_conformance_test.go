package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"switchboard/internal/api"
	"switchboard/internal/eventstore"
)

// conformance sends real requests to a test server and holds every request
// and every answer (status, content type, headers it documents, body) to
// the OpenAPI document the server serves.
type conformance struct {
	t   reporter
	s   *testServer
	doc openAPIDocument
	v   validator.Validator
	// paths are the document's path templates; ops its operations
	// ("GET /api/v1/...").
	paths []string
	ops   map[string]*v3.Operation
	// hit counts the answers checked per operation; ok the successful ones.
	hit, ok map[string]int
}

// reporter is where the checker reports: the test, or a recorder when a
// test shows that a wrong document fails.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
	Cleanup(func())
}

// newConformance checks traffic to s against d, reporting to r.
func newConformance(t testing.TB, r reporter, s *testServer, d openAPIDocument) *conformance {
	t.Helper()
	c := &conformance{t: r, s: s, doc: d, v: newOpenAPIValidator(t, d), ops: map[string]*v3.Operation{}, hit: map[string]int{}, ok: map[string]int{}}
	for p, item := range d.model.Paths.PathItems.FromOldest() {
		c.paths = append(c.paths, p)
		for m, op := range item.GetOperations().FromOldest() {
			c.ops[strings.ToUpper(m)+" "+p] = op
		}
	}
	return c
}

// template returns the document's path that path (no query) falls under: a
// literal segment beats a parameter, as in the router.
func (c *conformance) template(path string) (string, bool) {
	segs := strings.Split(path, "/")
	best, bestLiterals := "", -1
	for _, p := range c.paths {
		ts := strings.Split(p, "/")
		if len(ts) != len(segs) {
			continue
		}
		literals, match := 0, true
		for i, s := range ts {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				match = match && segs[i] != ""
			case s == segs[i]:
				literals++
			default:
				match = false
			}
		}
		if match && literals > bestLiterals {
			best, bestLiterals = p, literals
		}
	}
	return best, bestLiterals >= 0
}

// send makes a request the document allows and checks the answer.
func (c *conformance) send(method, path, token string, body any, headers ...string) response {
	c.t.Helper()
	return c.exchange(true, method, path, token, body, headers...)
}

// sendBad makes a request outside the document (a bad body, no
// credentials): only the answer is checked, and it must be an error.
func (c *conformance) sendBad(method, path, token string, body any, headers ...string) response {
	c.t.Helper()
	r := c.exchange(false, method, path, token, body, headers...)
	if r.Status < 400 {
		c.t.Errorf("%s %s: a request outside the document was answered %d", method, path, r.Status)
	}
	return r
}

// expect sends a request the document allows and fails unless the answer
// has status want.
func (c *conformance) expect(want int, method, path, token string, body any, headers ...string) response {
	c.t.Helper()
	r := c.send(method, path, token, body, headers...)
	if r.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// noRedirects lets the test see a 307 as it is.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (c *conformance) exchange(valid bool, method, path, token string, body any, headers ...string) response {
	c.t.Helper()
	var payload []byte
	switch b := body.(type) {
	case nil:
	case string:
		payload = []byte(b)
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	newReq := func() *http.Request {
		var rd io.Reader = http.NoBody
		if body != nil {
			rd = bytes.NewReader(payload)
		}
		req, err := http.NewRequest(method, c.s.URL+path, rd)
		if err != nil {
			c.t.Fatal(err)
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
		return req
	}
	res, err := noRedirects.Do(newReq())
	if err != nil {
		c.t.Fatal(err)
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	c.check(newReq(), valid, res, resBody)
	if valid && method == http.MethodGet && res.StatusCode < 400 {
		// Every GET route but the streams answers HEAD alike, without a body.
		if h := c.exchange(true, http.MethodHead, path, token, nil, headers...); h.Status != res.StatusCode {
			c.t.Errorf("HEAD %s: status %d, GET answered %d", path, h.Status, res.StatusCode)
		}
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: resBody}
}

// check holds one exchange to the document.
func (c *conformance) check(req *http.Request, valid bool, res *http.Response, body []byte) {
	c.t.Helper()
	what := req.Method + " " + req.URL.RequestURI() + " → " + strconv.Itoa(res.StatusCode)
	tmpl, found := c.template(req.URL.EscapedPath())
	op := c.ops[req.Method+" "+tmpl]
	if !found || op == nil {
		c.t.Errorf("%s: no operation of the document answers it", what)
		return
	}
	key := req.Method + " " + tmpl
	c.hit[key]++
	if valid {
		if ok, errs := c.v.ValidateHttpRequest(req); !ok {
			c.report(what+": the request does not conform", errs)
		}
	}
	if ok, errs := c.v.ValidateHttpResponse(req, res); !ok {
		c.report(what+": the answer does not conform; body "+string(body), errs)
	}

	status := strconv.Itoa(res.StatusCode)
	declared := op.Responses.Codes.GetOrZero(status)
	ct := res.Header.Get("Content-Type")
	switch {
	case res.StatusCode >= 400:
		// Errors are problem documents, whatever status they have.
		if !strings.HasPrefix(ct, "application/problem+json") {
			c.t.Errorf("%s: an error with Content-Type %q, want application/problem+json", what, ct)
		}
		if req.Method != http.MethodHead {
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
			}
			if err := json.Unmarshal(body, &p); err != nil || p.Status != res.StatusCode || p.Code == "" {
				c.t.Errorf("%s: problem document %s (%v) does not carry the status and a code", what, body, err)
			}
		}
	case declared == nil:
		c.t.Errorf("%s: the document does not list this answer (only default)", what)
	default:
		c.ok[key]++
		hasContent := declared.Content != nil && declared.Content.Len() > 0
		switch {
		case hasContent && len(body) == 0 && req.Method != http.MethodHead:
			c.t.Errorf("%s: the document promises a body; the answer has none", what)
		case !hasContent && len(body) > 0:
			c.t.Errorf("%s: the document promises no body; the answer has %q", what, body)
		case hasContent:
			mt := strings.TrimSpace(strings.Split(ct, ";")[0])
			if declared.Content.GetOrZero(mt) == nil {
				c.t.Errorf("%s: Content-Type %q is not one the document lists", what, ct)
			}
		}
		if declared.Headers != nil {
			for name := range declared.Headers.KeysFromOldest() {
				if name == "Idempotency-Replayed" || res.Header.Get("Idempotency-Replayed") == "true" {
					continue // a replay carries only the stored status, type and body
				}
				if res.Header.Get(name) == "" {
					c.t.Errorf("%s: the document promises the header %s; the answer lacks it", what, name)
				}
			}
		}
	}
}

func (c *conformance) report(what string, errs []*liberrors.ValidationError) {
	c.t.Helper()
	for _, e := range errs {
		c.t.Errorf("%s: %s: %s", what, e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			c.t.Errorf("    at %s: %s", se.FieldPath, se.Reason)
		}
	}
}

// stream opens the WebSocket at path, holds the upgrade's answer to the
// document, and returns a reader of its messages whose data is held to the
// stream's message schema.
func (c *conformance) stream(path, token string) *conformanceStream {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.s.URL, "http")+path, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		c.t.Fatalf("dial %s: %v", path, err)
	}
	c.t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	// The same request as the handshake, for the validator.
	req, _ := http.NewRequest(http.MethodGet, c.s.URL+path, http.NoBody)
	req.Header = hdr.Clone()
	for k, v := range map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
		req.Header.Set(k, v)
	}
	res.Body = io.NopCloser(bytes.NewReader(nil))
	c.check(req, true, res, nil)

	u, _ := url.Parse(c.s.URL + path)
	tmpl, _ := c.template(u.EscapedPath())
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Data struct {
					Ref string `json:"$ref"`
				} `json:"x-stream-message-data"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(c.doc.raw, &doc); err != nil {
		c.t.Fatal(err)
	}
	ref := doc.Paths[tmpl]["get"].Responses["101"].Data.Ref
	name := strings.TrimPrefix(ref, "#/components/schemas/")
	proxy := c.doc.model.Components.Schemas.GetOrZero(name)
	if ref == "" || proxy == nil {
		c.t.Fatalf("GET %s: the document names no schema for the stream's messages (%q)", tmpl, ref)
	}
	return &conformanceStream{c: c, conn: conn, path: path, name: name, schema: proxy.Schema(),
		sv: schema_validation.NewSchemaValidator(config.WithFormatAssertions())}
}

// conformanceStream reads a live stream's messages.
type conformanceStream struct {
	c      *conformance
	conn   *websocket.Conn
	path   string
	name   string       // the component of the messages' data
	schema *base.Schema // its schema
	sv     schema_validation.SchemaValidator
}

// next reads the next message that carries the stream's data and holds its
// data to the document's schema.
func (st *conformanceStream) next() json.RawMessage {
	t := st.c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var m struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
			Seq  *uint64         `json:"seq"`
		}
		if err := wsjson.Read(ctx, st.conn, &m); err != nil {
			t.Fatalf("read %s: %v", st.path, err)
		}
		switch m.Type {
		case "ready", "ping":
			continue
		case "error":
			t.Fatalf("%s failed: %s", st.path, m.Data)
		}
		if m.Seq == nil {
			t.Errorf("%s: a %s message without seq", st.path, m.Type)
		}
		if ok, errs := st.sv.ValidateSchemaBytes(st.schema, m.Data); !ok {
			st.c.report(st.path+": a "+m.Type+" message does not conform to "+st.name+": "+string(m.Data), errs)
		}
		return m.Data
	}
}

// TestOpenAPI_Conformance drives the API through its routes and holds what
// goes over the wire to the document the server serves.
func TestOpenAPI_Conformance(t *testing.T) {
	s := newTestServer(t, withOperators("ada@example.com"))
	c := newConformance(t, t, s, servedOpenAPI(t, s))
	runConformance(t, s, c)

	// Every operation of the document was held to real traffic, and all but
	// a few to a successful answer.
	noSuccess := map[string]string{
		"POST /api/v1/cluster/voters": "adding a voter needs a second node",
	}
	var keys []string
	for k := range c.ops {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case c.hit[k] == 0:
			t.Errorf("%s: no request of the conformance test reaches it; add one", k)
		case c.ok[k] == 0 && noSuccess[k] == "":
			t.Errorf("%s: no successful answer was checked; add one", k)
		}
	}
}

// runConformance is the traffic: each resource's routes with valid
// requests, and the errors clients meet most.
func runConformance(t *testing.T, s *testServer, c *conformance) {
	const pw = "correct horse battery"
	v1, acme := "/api/v1", "/api/v1/tenants/acme"

	// Operations.
	c.expect(200, "GET", "/healthz", "", nil)
	c.expect(200, "GET", "/readyz", "", nil)
	c.expect(200, "GET", v1+"/openapi.json", "", nil)
	c.expect(301, "GET", v1+"/docs", "", nil)

	// Accounts.
	c.expect(202, "POST", v1+"/auth/signup", "", map[string]any{"email": "ada@example.com", "password": pw, "name": "Ada",
		"tenant": map[string]string{"slug": "acme", "name": "Acme"}})
	var verified api.VerifyEmailResponse
	c.expect(200, "POST", v1+"/auth/verify-email", "", map[string]string{"token": s.verificationToken("ada@example.com")}).json(t, &verified)
	var login api.LoginResponse
	c.expect(200, "POST", v1+"/auth/login", "", map[string]string{"email": "ada@example.com", "password": pw}).json(t, &login)
	ada := login.AccessToken
	c.expect(200, "GET", v1+"/me", ada, nil)

	c.expect(202, "POST", v1+"/auth/signup", "", map[string]any{"email": "bob@example.com", "password": pw, "name": "Bob"})
	c.expect(200, "POST", v1+"/auth/login", "", map[string]string{"email": "bob@example.com", "password": pw}).json(t, &login)
	bob := login.AccessToken
	s.verificationToken("bob@example.com") // the signup's mail
	c.expect(202, "POST", v1+"/auth/verify-email/resend", bob, nil)
	c.expect(200, "POST", v1+"/auth/verify-email", "", map[string]string{"token": s.verificationToken("bob@example.com")})
	c.sendBad("POST", v1+"/auth/login", "", map[string]string{"email": "ada@example.com"}) // no password
	c.send("POST", v1+"/auth/login", "", map[string]string{"email": "ada@example.com", "password": "wrong password"})

	// Tenants.
	c.expect(201, "POST", v1+"/tenants", ada, map[string]string{"slug": "globex", "name": "Globex"})
	c.expect(200, "GET", acme, ada, nil)
	c.expect(404, "GET", v1+"/tenants/nope", ada, nil)
	c.sendBad("GET", acme, "", nil)

	// Members and invitations.
	c.expect(201, "POST", acme+"/members", ada, map[string]string{"email": "bob@example.com", "role": "editor"})
	c.expect(201, "POST", acme+"/members", ada, map[string]string{"email": "carol@example.com", "role": "viewer"})
	var members api.List[struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	}]
	c.expect(200, "GET", acme+"/members?limit=10", ada, nil).json(t, &members)
	c.expect(200, "GET", acme+"/invitations", ada, nil)
	c.expect(204, "DELETE", acme+"/invitations/carol@example.com", ada, nil)
	bobID := ""
	for _, m := range members.Items {
		if m.Email == "bob@example.com" {
			bobID = m.UserID
		}
	}
	c.expect(200, "PATCH", acme+"/members/"+bobID, ada, map[string]string{"role": "operator"})

	// Teams: create (retry-safe), read, update with If-Match, members.
	team := map[string]string{"slug": "payments", "name": "Payments"}
	r := c.expect(201, "POST", acme+"/teams", ada, team, "Idempotency-Key", "k-1")
	c.expect(201, "POST", acme+"/teams", ada, team, "Idempotency-Key", "k-1")
	c.expect(409, "POST", acme+"/teams", ada, team)
	etag := r.Header.Get("ETag")
	c.expect(200, "GET", acme+"/teams", ada, nil)
	c.expect(200, "GET", acme+"/teams/payments", ada, nil)
	c.expect(200, "PATCH", acme+"/teams/payments", ada, map[string]string{"name": "Payments EU"}, "If-Match", etag)
	c.expect(412, "PATCH", acme+"/teams/payments", ada, map[string]string{"name": "Payments US"}, "If-Match", etag)
	c.expect(200, "POST", acme+"/teams/payments/members", ada, map[string]string{"email": "bob@example.com"})
	c.expect(200, "DELETE", acme+"/teams/payments/members/bob@example.com", ada, nil)
	c.expect(204, "DELETE", acme+"/teams/payments", ada, nil)
	c.sendBad("POST", acme+"/teams", ada, `{"slug": 5, "name": "Five"}`)
	c.sendBad("POST", acme+"/teams", ada, `{"slug": "x", "name": "X", "colour": "red"}`)
	c.sendBad("POST", acme+"/teams", ada, "slug=x", "Content-Type", "text/plain")
	c.expect(403, "POST", acme+"/teams", bob, map[string]string{"slug": "ops", "name": "Ops"})

	// API tokens.
	var tok api.CreateTokenResponse
	c.expect(201, "POST", acme+"/tokens", ada, map[string]any{"name": "ci", "role": "viewer", "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}).json(t, &tok)
	c.expect(200, "GET", v1+"/me", tok.Token, nil)
	c.expect(200, "GET", acme+"/tokens", ada, nil)
	c.expect(204, "DELETE", acme+"/tokens/"+tok.ID.String(), ada, nil)

	// Policies.
	rule := map[string]string{"role": "viewer", "resource": "stream", "action": "read", "effect": "allow"}
	var created struct {
		ID string `json:"id"`
	}
	c.expect(201, "POST", acme+"/policies", ada, rule).json(t, &created)
	c.expect(200, "GET", acme+"/policies", ada, nil)
	example := map[string]any{"role": "viewer", "action": "read", "kind": "stream", "name": "order-1", "labels": map[string]string{"env": "prod"}}
	c.expect(200, "POST", acme+"/policies/try", ada, map[string]any{"request": example})
	c.expect(200, "POST", acme+"/policies/try", ada, map[string]any{"request": example,
		"rule": map[string]string{"role": "viewer", "resource": "stream", "action": "read", "effect": "deny", "condition": `label(r.obj, "env") == "prod"`}})
	c.expect(204, "DELETE", acme+"/policies/"+created.ID, ada, nil)
	c.expect(201, "POST", acme+"/policies", ada, map[string]string{"role": "viewer", "resource": "*", "action": "*", "effect": "deny", "condition": `label(r.obj, "env") == "prod"`}).json(t, &created)
	c.expect(204, "DELETE", acme+"/policies", ada, map[string]string{"id": created.ID})

	// Events: every form of expected_version, reads both ways, the log.
	stream := acme + "/streams/order-1"
	ev := func(typ string) map[string]any { return map[string]any{"type": typ, "data": map[string]any{"n": 1}} }
	live := c.stream(acme+"/subscriptions/live?from_position=0&category=order", ada)
	c.expect(201, "POST", stream+"/events", ada, map[string]any{"expected_version": "no_stream", "events": []any{ev("Placed")}})
	c.expect(201, "POST", stream+"/events", ada, map[string]any{"expected_version": 0, "events": []any{map[string]any{
		"id": "8b0f4a8e-5d0c-4c1e-9a51-5f3f1c2b7a10", "type": "Paid", "data": 42, "metadata": map[string]string{"by": "ada"}}}})
	c.expect(201, "POST", stream+"/events", ada, map[string]any{"expected_version": "stream_exists", "events": []any{ev("Packed")}})
	c.expect(201, "POST", stream+"/events", ada, map[string]any{"expected_version": "any", "events": []any{ev("Shipped")}})
	c.expect(201, "POST", stream+"/events", ada, map[string]any{"events": []any{ev("Delivered")}}, "Idempotency-Key", "e-1")
	c.expect(409, "POST", stream+"/events", ada, map[string]any{"expected_version": 1, "events": []any{ev("Late")}})
	c.sendBad("POST", stream+"/events", ada, map[string]any{"expected_version": "sometimes", "events": []any{ev("X")}})
	c.sendBad("POST", stream+"/events", ada, map[string]any{"expected_version": -1, "events": []any{ev("X")}})
	var e eventstore.Event
	if err := json.Unmarshal(live.next(), &e); err != nil || e.Type != "Placed" {
		t.Fatalf("live subscription: %+v %v", e, err)
	}
	c.expect(200, "GET", stream+"/events?limit=2", ada, nil)
	c.expect(200, "GET", stream+"/events?from=4&direction=backward", ada, nil)
	c.expect(200, "GET", acme+"/streams", ada, nil)
	c.expect(200, "GET", acme+"/events?from_position=1&category=order", ada, nil)
	c.expect(204, "PUT", stream+"/snapshot", ada, map[string]any{"version": 2, "data": map[string]int{"total": 3}})
	c.expect(200, "GET", stream+"/snapshot", ada, nil)
	c.expect(200, "PUT", stream+"/metadata", ada, map[string]any{"max_count": 100, "max_age": 3600})
	c.expect(200, "GET", stream+"/metadata", ada, nil)
	c.expect(201, "POST", acme+"/streams/cart-1/events", ada, map[string]any{"events": []any{ev("Added")}})
	c.expect(204, "DELETE", acme+"/streams/cart-1", ada, nil)
	c.expect(204, "DELETE", acme+"/streams/cart-1?hard=true", ada, nil)

	// Named subscriptions and consumer groups.
	sub := acme + "/subscriptions/billing"
	c.expect(201, "PUT", sub, ada, map[string]any{"category": "order"})
	c.expect(200, "PUT", sub, ada, map[string]any{"category": "order"})
	c.expect(200, "GET", acme+"/subscriptions", ada, nil)
	var batch eventstore.Batch
	c.expect(200, "GET", sub+"/events?limit=2", ada, nil).json(t, &batch)
	c.expect(200, "POST", sub+"/ack", ada, map[string]any{"position": batch.Through})
	c.expect(200, "GET", sub+"/events?limit=2&member=worker-1", ada, nil).json(t, &batch)
	c.expect(200, "POST", sub+"/ack", ada, map[string]any{"position": batch.Through, "member": "worker-1", "generation": batch.Generation})
	c.expect(200, "GET", sub, ada, nil)
	idle := acme + "/subscriptions/idle"
	c.expect(201, "PUT", idle, ada, map[string]any{"category": "nothing", "from_position": 0, "member_ttl_ms": 60000})
	c.expect(200, "GET", idle+"/events", ada, nil) // an empty batch
	c.sendBad("POST", sub+"/ack", ada, map[string]any{"member": "worker-1"})
	c.expect(204, "DELETE", sub, ada, nil)

	// Locks.
	lock := acme + "/locks/nightly-report"
	locks := c.stream(acme+"/locks/watch", ada)
	var held api.LockResponse
	c.expect(200, "POST", lock, ada, map[string]any{"owner": "worker-1", "ttl_ms": 10000}).json(t, &held)
	locks.next()
	c.expect(409, "POST", lock, ada, map[string]any{"owner": "worker-2", "ttl_ms": 10000, "wait_ms": 0})
	c.expect(200, "GET", acme+"/locks", ada, nil)
	c.expect(200, "POST", lock+"/verify", ada, map[string]any{"fencing_token": held.FencingToken})
	c.expect(200, "PUT", lock, ada, map[string]any{"token": held.Token, "ttl_ms": 20000})
	c.expect(204, "DELETE", lock, ada, map[string]any{"token": held.Token})
	c.expect(200, "POST", lock, ada, map[string]any{"owner": "worker-3", "ttl_ms": 10000})
	c.expect(200, "POST", lock+"/force-release", ada, nil)
	c.sendBad("POST", lock, ada, map[string]any{"owner": "worker-1", "ttl_ms": 1})

	// Elections.
	election := acme + "/elections/scheduler"
	changes := c.stream(acme+"/elections-watch", ada)
	observe := c.stream(election+"/observe", ada)
	var lead api.LeadershipResponse
	c.expect(200, "POST", election+"/campaign", ada, map[string]any{"candidate": "node-a", "ttl_ms": 10000}).json(t, &lead)
	changes.next()
	observe.next()
	c.expect(200, "GET", election, ada, nil)
	c.expect(200, "GET", acme+"/elections", ada, nil)
	c.expect(200, "POST", election+"/renew", ada, map[string]any{"token": lead.Token, "ttl_ms": 10000})
	c.expect(204, "POST", election+"/resign", ada, map[string]any{"token": lead.Token})
	c.expect(404, "GET", election, ada, nil)

	// The key-value space: compare-and-set by revision.
	kv := c.stream(acme+"/kv-watch?prefix=feature", ada)
	var k api.KVResponse
	c.expect(200, "PUT", acme+"/kv/feature.search", ada, map[string]any{"value": map[string]any{"on": true}}, "If-None-Match", "*").json(t, &k)
	kv.next()
	rev := `"` + strconv.FormatUint(k.Revision, 10) + `"`
	c.expect(200, "GET", acme+"/kv/feature.search", ada, nil)
	c.expect(304, "GET", acme+"/kv/feature.search", ada, nil, "If-None-Match", rev)
	c.expect(200, "GET", acme+"/kv?prefix=feature", ada, nil)
	c.expect(412, "PUT", acme+"/kv/feature.search", ada, map[string]any{"value": "off"}, "If-None-Match", "*")
	c.expect(200, "PUT", acme+"/kv/feature.search", ada, map[string]any{"value": "off"}, "If-Match", rev)
	c.expect(412, "DELETE", acme+"/kv/feature.search", ada, nil, "If-Match", rev)
	c.expect(204, "DELETE", acme+"/kv/feature.search", ada, nil)
	c.expect(404, "GET", acme+"/kv/no%20such%20key", ada, nil)

	// The Raft group: operators only.
	c.expect(200, "GET", v1+"/cluster", ada, nil)
	c.expect(403, "GET", v1+"/cluster", bob, nil)
	c.sendBad("POST", v1+"/cluster/voters", ada, map[string]string{"id": "n2", "addr": "not an address"})
	c.send("DELETE", v1+"/cluster/voters/n9", ada, nil)

	runCatalogConformance(t, c, ada, acme)
	runDLQConformance(t, c, ada, acme)
	runTraceConformance(t, c, ada, acme)

	// A WebSocket route asked without an upgrade; members removed last.
	c.expect(400, "GET", acme+"/locks/watch", ada, nil)
	c.expect(204, "DELETE", acme+"/members/"+bobID, ada, nil)
	c.expect(200, "GET", acme+"/audit?limit=100", ada, nil)
}
