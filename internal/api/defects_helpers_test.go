package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/app/apptest"
	"switchboard/internal/web"
)

// Helpers of the defects_*_test.go files: an attack and bad-input sweep
// that drives the real server over HTTP and WebSocket.

// defectCloseBound bounds the wait for a stream to be closed after a change of
// rights. The requirement is one second; the bound is generous for a loaded
// machine and still far below the hub's periodic re-check (a minute), so a
// stream closed within it was closed because of the change. It is a bound
// on a wait, not a measurement.
const defectCloseBound = 5 * time.Second

// defectLog collects a server's log, to find internal errors and panics
// that a client never sees.
type defectLog struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *defectLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *defectLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// option sends the server's log to l.
func (l *defectLog) option() serverOption {
	return apptest.WithLog(slog.New(web.LogHandler(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))))
}

// failures returns the log lines of internal errors and panics.
func (l *defectLog) failures() []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "panic") {
			out = append(out, line)
		}
	}
	return out
}

// defectTrustProxy makes the server take the client address from
// X-Forwarded-For.
func defectTrustProxy() serverOption { return func(c *app.Config) { c.TrustProxy = true } }

// defectInternalText matches what only a database or Go's own errors say: an
// answer that holds one of these let an internal message through.
var defectInternalText = regexp.MustCompile(`(?i)SQLSTATE|invalid byte sequence|encoding "UTF8"|violates|duplicate key|` +
	`syntax error at|pgx|pgconn|postgres|relation "|column "|invalid input syntax|out of range for type|value too long for type|` +
	`index row size|btree|unsupported Unicode escape|jsonb|tsvector|null value in column|` +
	`json: |jsontext|cannot unmarshal|invalid character|unexpected EOF|strconv\.|runtime error|goroutine|panic|` +
	`nil pointer|index out of range|context deadline exceeded|context canceled|i/o timeout|broken pipe|connection reset|%!`)

// defectLeak returns the internal text in body, or "".
func defectLeak(body []byte) string { return defectInternalText.FindString(string(body)) }

// defectUserID returns the id of the user of an access token.
func defectUserID(s *testServer, token string) string {
	s.t.Helper()
	var me api.MeResponse
	s.must(200, "GET", "/api/v1/me", token, nil).json(s.t, &me)
	if me.User == nil {
		s.t.Fatalf("GET /me answered no user")
	}
	return me.User.ID.String()
}

// defectToken creates an API token in tenant and returns it.
func defectToken(s *testServer, cred, tenant, name, role string) api.CreateTokenResponse {
	s.t.Helper()
	var tok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/"+tenant+"/tokens", cred, map[string]string{"name": name, "role": role}).json(s.t, &tok)
	return tok
}

// defectEscapeEvery percent-encodes every byte of s.
func defectEscapeEvery(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte('%')
		b.WriteByte(hex[s[i]>>4])
		b.WriteByte(hex[s[i]&15])
	}
	return b.String()
}

// defectNoRedirects is a client that reports redirects instead of following them.
var defectNoRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// defectEnvelope is a live stream's message (internal/live).
type defectEnvelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Seq  uint64          `json:"seq"`
}

// defectStream is an open WebSocket stream past its "ready" message.
type defectStream struct {
	path string
	conn *websocket.Conn
}

// defectDial opens a stream on the server at baseURL with the bearer
// credential and waits for its "ready" message (the hub registers a stream
// before it sends it, so a change after this is seen by the stream).
func defectDial(t testing.TB, baseURL, path, token string) *defectStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	t.Cleanup(func() { conn.CloseNow() })
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("%s: no ready message: %v", path, err)
		}
		var m defectEnvelope
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: message %s: %v", path, data, err)
		}
		if m.Type == "ready" {
			return &defectStream{path: path, conn: conn}
		}
	}
}

// defectStreamEnd is how a stream ended.
type defectStreamEnd struct {
	code   websocket.StatusCode // -1: not a close frame
	reason string
	last   defectEnvelope // the last message before the close (an "error" names why)
	err    error
}

// waitClosed reads the stream until it ends or bound passes; ok is false
// when it is still open at the bound.
func (ls *defectStream) waitClosed(bound time.Duration) (defectStreamEnd, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var last defectEnvelope
	for {
		_, data, err := ls.conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return defectStreamEnd{}, false
			}
			end := defectStreamEnd{code: websocket.CloseStatus(err), last: last, err: err}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				end.reason = ce.Reason
			}
			return end, true
		}
		var m defectEnvelope
		if json.Unmarshal(data, &m) == nil && m.Type != "ping" {
			last = m
		}
	}
}

// next returns the next message that carries data (not "ping"), failing
// t when none comes within ten seconds or the stream ends.
func (ls *defectStream) next(t testing.TB) defectEnvelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := ls.conn.Read(ctx)
		if err != nil {
			t.Fatalf("%s: read: %v", ls.path, err)
		}
		var m defectEnvelope
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: message %s: %v", ls.path, data, err)
		}
		if m.Type != "ping" {
			return m
		}
	}
}
