package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/e2e/client"
)

// closeWithin bounds how long a test waits for the server to close a stream
// after the change that ends its right. The server promises about a second;
// the bound is generous for a loaded machine, and still far below the
// periodic re-check (a minute), so a stream closed by that re-check alone
// fails the test.
const closeWithin = 15 * time.Second

// Close codes of the live transport (internal/live): the credential is no
// longer valid, or the principal may no longer read the stream.
const (
	closeUnauthenticated websocket.StatusCode = 4401
	closeForbidden       websocket.StatusCode = 4403
)

// streamMessage is one message of a live stream: {"type","data","seq"}.
type streamMessage struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Seq  uint64          `json:"seq"`
}

// streamReader reads one WebSocket stream of the server as a client
// program would: it answers every ping with a pong and hands over the
// other messages; when the server closes the stream it keeps why.
type streamReader struct {
	name string
	conn *websocket.Conn
	msgs chan streamMessage // the messages other than pings, in order
	done chan struct{}      // closed when reading has stopped
	err  error              // why reading stopped; read after done is closed
}

// dialStream opens path (with its query) on the server at base with the
// bearer credential, and reads it until the test ends.
func dialStream(t *testing.T, base, path, bearer string) *streamReader {
	t.Helper()
	dialCtx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + path
	conn, res, err := websocket.Dial(dialCtx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + bearer}}})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("open the stream %s: %v (HTTP %d)", u, err, status)
	}
	readCtx, stop := context.WithCancel(context.Background())
	r := &streamReader{name: path, conn: conn, msgs: make(chan streamMessage, 1024), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = r.read(readCtx)
	}()
	t.Cleanup(func() {
		stop()
		_ = conn.CloseNow() // the stream may be closed already; nothing else to do
		<-r.done
	})
	return r
}

func (r *streamReader) read(ctx context.Context) error {
	for {
		_, data, err := r.conn.Read(ctx)
		if err != nil {
			return err
		}
		var m streamMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("a message that is not the envelope: %q: %w", data, err)
		}
		if m.Type == "ping" {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := r.conn.Write(wctx, websocket.MessageText, []byte(`{"type":"pong"}`))
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		select {
		case r.msgs <- m:
		default:
			return errors.New("the test did not keep up with the stream's messages")
		}
	}
}

// next waits for the next message other than a ping and checks its type.
func (r *streamReader) next(t *testing.T, typ string) streamMessage {
	t.Helper()
	select {
	case m := <-r.msgs:
		if m.Type != typ {
			t.Fatalf("%s: got a %q message %s, want %q", r.name, m.Type, m.Data, typ)
		}
		return m
	case <-r.done:
		t.Fatalf("%s: the stream ended (%v) before a %q message", r.name, r.err, typ)
	case <-time.After(closeWithin):
		t.Fatalf("%s: no %q message within %s", r.name, typ, closeWithin)
	}
	return streamMessage{}
}

// wantClosed waits for the server to close the stream and checks the close
// code; it returns the reason, which must say something.
func (r *streamReader) wantClosed(t *testing.T, code websocket.StatusCode) string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(closeWithin):
		t.Fatalf("%s: the stream is still open %s after the change, want it closed with %d", r.name, closeWithin, code)
	}
	var ce websocket.CloseError
	if !errors.As(r.err, &ce) {
		t.Fatalf("%s: the stream ended with %v, not a close frame with %d", r.name, r.err, code)
	}
	if ce.Code != code {
		t.Fatalf("%s: closed with %d %q, want %d", r.name, ce.Code, ce.Reason, code)
	}
	if websocket.CloseStatus(r.err) != code {
		t.Fatalf("%s: CloseStatus %d, want %d", r.name, websocket.CloseStatus(r.err), code)
	}
	if strings.TrimSpace(ce.Reason) == "" {
		t.Errorf("%s: closed with %d and no reason", r.name, code)
	}
	return ce.Reason
}

// wantOpen checks that the stream has not ended.
func (r *streamReader) wantOpen(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("%s: the stream ended (%v) though its right is intact", r.name, r.err)
	default:
	}
}

// liveEventsPath is the tenant's WebSocket subscription to its whole log.
func liveEventsPath(tenant string) string {
	return "/api/v1/tenants/" + tenant + "/subscriptions/live?from_position=0"
}

// appendOne appends one event of typ to stream through c.
func appendOne(t *testing.T, c *client.Client, tenant, stream, typ string) {
	t.Helper()
	_, err := c.AppendEvents(t.Context(), tenant, stream, client.AppendRequest{
		Events: []client.EventInput{{Type: typ, Data: json.RawMessage(`{"n":1}`)}}})
	mustOK(t, "append "+typ+" to "+stream, err)
}

// wantEvent reads the next message and checks it is the event typ.
func (r *streamReader) wantEvent(t *testing.T, typ string) {
	t.Helper()
	m := r.next(t, "event")
	var e client.Event
	if err := json.Unmarshal(m.Data, &e); err != nil || e.Type != typ {
		t.Fatalf("%s: event %s (%v), want a %s", r.name, m.Data, err, typ)
	}
}

// joinAs invites email to tenant with role (through the owner's client),
// signs the address up and confirms it, so the invitation becomes a
// membership, and returns a client signed in as the new member with the
// member's user id.
func joinAs(t *testing.T, s *server, owner *client.Client, tenant, email, role string) (*client.Client, string) {
	t.Helper()
	ctx := t.Context()
	_, err := owner.AddMember(ctx, tenant, client.AddMemberRequest{Email: email, Role: role})
	mustOK(t, "invite "+email+" as "+role, err)
	c := s.newClient(t)
	_, err = c.Signup(ctx, client.SignupRequest{Email: email, Password: testPassword, Name: strings.Split(email, "@")[0]})
	mustOK(t, "sign up "+email, err)
	_, err = c.VerifyEmail(ctx, verificationToken(t, s, email))
	mustOK(t, "confirm "+email, err)
	_, err = c.Login(ctx, email, testPassword)
	mustOK(t, "sign in "+email, err)
	me, err := c.Me(ctx)
	mustOK(t, "me of "+email, err)
	if me.User == nil || me.User.ID == "" {
		t.Fatalf("me of %s: %+v, want a user", email, me)
	}
	return c, me.User.ID
}

// memberCall sends a change of a tenant's member through the REST API with
// c's credential (the typed client has no call for these yet): PATCH with a
// new role, or DELETE to remove. It fails the test unless the answer is
// want.
func memberCall(t *testing.T, base string, c *client.Client, method, tenant, userID string, body any, want int) {
	t.Helper()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		mustOK(t, "encode the body", err)
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+"/api/v1/tenants/"+tenant+"/members/"+userID, in)
	mustOK(t, "build the request", err)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	res, err := hc.Do(req)
	mustOK(t, method+" member "+userID, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16)) // only shown on failure
	if res.StatusCode != want {
		t.Fatalf("%s member %s: %d %s, want %d", method, userID, res.StatusCode, raw, want)
	}
}

// removeMember removes the member userID from tenant.
func removeMember(t *testing.T, base string, owner *client.Client, tenant, userID string) {
	t.Helper()
	memberCall(t, base, owner, http.MethodDelete, tenant, userID, nil, http.StatusNoContent)
}

// setRole changes the role of the member userID in tenant.
func setRole(t *testing.T, base string, owner *client.Client, tenant, userID, role string) {
	t.Helper()
	memberCall(t, base, owner, http.MethodPatch, tenant, userID, map[string]string{"role": role}, http.StatusOK)
}

// An API token's live subscription ends with 4401 once the token is
// revoked; a stream of another token of the same tenant carries on.
func TestSecurity_TokenStreamClosedOnRevocation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := t.Context()
	owner := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	doomed, err := owner.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "dashboard", Role: client.RoleViewer})
	mustOK(t, "create the token to revoke", err)
	kept, err := owner.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "ci", Role: client.RoleViewer})
	mustOK(t, "create the token to keep", err)

	revoked := dialStream(t, s.URL, liveEventsPath("acme"), doomed.Secret)
	other := dialStream(t, s.URL, liveEventsPath("acme"), kept.Secret)
	revoked.next(t, "ready")
	other.next(t, "ready")
	// Both streams deliver before the change, so what ends one is the
	// revocation and nothing else.
	appendOne(t, owner, "acme", "order-1", "OrderPlaced")
	revoked.wantEvent(t, "OrderPlaced")
	other.wantEvent(t, "OrderPlaced")

	mustOK(t, "revoke the token", owner.RevokeToken(ctx, "acme", doomed.ID))
	reason := revoked.wantClosed(t, closeUnauthenticated)
	t.Logf("the revoked token's stream was closed: %q", reason)

	appendOne(t, owner, "acme", "order-1", "OrderPaid")
	other.wantEvent(t, "OrderPaid")
	other.wantOpen(t)
}

// A member's live subscription ends with 4403 once the member may no
// longer read it: demoted to a role the tenant's policy denies, or denied
// by a rule added to the policy. Their identity is intact, so not 4401.
func TestSecurity_MemberStreamClosedWhenTheRightGoes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := t.Context()
	owner := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	// Viewers of acme may not read the event log.
	_, err := owner.CreatePolicy(ctx, "acme", client.PolicyRule{Role: client.RoleViewer, Resource: "stream", Action: "read", Effect: "deny"})
	mustOK(t, "deny viewers reading streams", err)
	editor, editorID := joinAs(t, s, owner, "acme", "eve@example.com", client.RoleEditor)
	operator, _ := joinAs(t, s, owner, "acme", "otto@example.com", client.RoleOperator)

	demoted := dialStream(t, s.URL, liveEventsPath("acme"), editor.Token())
	denied := dialStream(t, s.URL, liveEventsPath("acme"), operator.Token())
	owners := dialStream(t, s.URL, liveEventsPath("acme"), owner.Token())
	for _, r := range []*streamReader{demoted, denied, owners} {
		r.next(t, "ready")
	}
	appendOne(t, owner, "acme", "order-1", "OrderPlaced")
	for _, r := range []*streamReader{demoted, denied, owners} {
		r.wantEvent(t, "OrderPlaced")
	}

	run(t, "demoted below the stream's read right", func(t *testing.T) {
		setRole(t, s.URL, owner, "acme", editorID, client.RoleViewer)
		reason := demoted.wantClosed(t, closeForbidden)
		t.Logf("the demoted member's stream was closed: %q", reason)
		denied.wantOpen(t)
	})
	run(t, "a policy rule now denies the stream", func(t *testing.T) {
		_, err := owner.CreatePolicy(ctx, "acme", client.PolicyRule{Role: client.RoleOperator, Resource: "stream", Action: "read", Effect: "deny"})
		mustOK(t, "deny operators reading streams", err)
		reason := denied.wantClosed(t, closeForbidden)
		t.Logf("the denied member's stream was closed: %q", reason)
	})
	// The owner's stream outlives both changes.
	appendOne(t, owner, "acme", "order-1", "OrderPaid")
	owners.wantEvent(t, "OrderPaid")
	owners.wantOpen(t)
}

// With several replicas on one database, a change made through one replica
// closes the streams held on another: a revoked token's (4401) and a
// removed member's (4403).
func TestSecurity_RevocationOnOneReplicaClosesStreamsOnAnother(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 3)
	ctx := t.Context()
	changer, holder := cl.nodes[0], cl.nodes[2]
	owner := signupAndLogin(t, ctx, changer, "ada@example.com", "acme")
	tok, err := owner.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "dashboard", Role: client.RoleViewer})
	mustOK(t, "create a token", err)
	member, memberID := joinAs(t, changer, owner, "acme", "vic@example.com", client.RoleViewer)

	// The access tokens one node issued are good on the others (one
	// signing key, one issuer), so both streams are opened on holder.
	tokens := dialStream(t, holder.URL, liveEventsPath("acme"), tok.Secret)
	members := dialStream(t, holder.URL, liveEventsPath("acme"), member.Token())
	owners := dialStream(t, holder.URL, liveEventsPath("acme"), owner.Token())
	for _, r := range []*streamReader{tokens, members, owners} {
		r.next(t, "ready")
	}
	appendOne(t, owner, "acme", "order-1", "OrderPlaced")
	for _, r := range []*streamReader{tokens, members, owners} {
		r.wantEvent(t, "OrderPlaced")
	}

	run(t, "a token revoked through another replica", func(t *testing.T) {
		mustOK(t, "revoke the token through "+changer.URL, owner.RevokeToken(ctx, "acme", tok.ID))
		t.Logf("closed on %s: %q", holder.URL, tokens.wantClosed(t, closeUnauthenticated))
		members.wantOpen(t)
	})
	run(t, "a member removed through another replica", func(t *testing.T) {
		removeMember(t, changer.URL, owner, "acme", memberID)
		t.Logf("closed on %s: %q", holder.URL, members.wantClosed(t, closeForbidden))
	})
	appendOne(t, owner, "acme", "order-1", "OrderPaid")
	owners.wantEvent(t, "OrderPaid")
	owners.wantOpen(t)
}
