package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"switchboard/internal/app"
	"switchboard/internal/app/apptest"
	"switchboard/internal/live"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Messages published on one replica reach the topic's subscribers on every
// replica, in the order they were published, and no other tenant's.
func TestPublish_CrossesReplicasInOrder(t *testing.T) {
	a := apptest.Start(t)
	b := apptest.Start(t, apptest.WithDatabase(a.DatabaseURL), apptest.WithKey(a.Key), func(c *app.Config) { c.NodeID = "n2" })
	tenant, other := uuid.New(), uuid.New()
	onB := b.Live.Subscribe("dlq:orders", tenant)
	defer onB.Close()
	onA := a.Live.Subscribe("dlq:orders", tenant)
	defer onA.Close()
	stranger := b.Live.Subscribe("dlq:orders", other)
	defer stranger.Close()

	ctx := t.Context()
	const n = 100
	for i := 1; i <= n; i++ {
		if err := a.Live.Publish(ctx, "dlq:orders", tenant, "message", uint64(i), map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for name, src := range map[string]live.Source{"the other replica": onB, "the publishing replica": onA} {
		for i := 1; i <= n; i++ {
			select {
			case m := <-src.C:
				raw, _ := m.Data.(json.RawMessage)
				if m.Seq != uint64(i) || m.Type != "message" || string(raw) != fmt.Sprintf(`{"n":%d}`, i) {
					t.Fatalf("%s: message %d is %+v", name, i, m)
				}
			case <-time.After(10 * time.Second): // a bound on a hang
				t.Fatalf("%s: message %d never came", name, i)
			}
		}
	}
	select {
	case m := <-stranger.C:
		t.Fatalf("another tenant's subscriber got %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
	// Too large for one notification: refused, not cut.
	err := a.Live.Publish(ctx, "dlq:orders", tenant, "message", 0, strings.Repeat("x", 9000))
	if err == nil {
		t.Fatal("a 9 kB message was published")
	}
}

// A subscriber that lets its buffer fill is ended, never blocks delivery to
// the others.
func TestSubscribe_SlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	a := apptest.Start(t, func(c *app.Config) { c.Live.TopicBuffer = 4 })
	tenant := uuid.New()
	slow := a.Live.Subscribe("traces", tenant)
	defer slow.Close()
	fast := a.Live.Subscribe("traces", tenant)
	defer fast.Close()
	ctx := t.Context()
	got := 0
	for i := 1; i <= 20; i++ {
		if err := a.Live.Publish(ctx, "traces", tenant, "span", uint64(i), i); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fast.C:
			got++
		case <-time.After(10 * time.Second):
			t.Fatalf("the reading subscriber missed message %d", i)
		}
	}
	n := 0
	for range slow.C { // closed once dropped
		n++
	}
	if n > 4 || !errors.Is(slow.Err(), live.ErrTooSlow) {
		t.Fatalf("the slow subscriber read %d messages and ended with %v, want at most 4 and ErrTooSlow", n, slow.Err())
	}
	if got != 20 {
		t.Fatalf("the reading subscriber got %d of 20", got)
	}
}

// The Origin of a stream must be the server's own: scheme, host and port.
func TestServe_OriginMustMatchExactly(t *testing.T) {
	a := apptest.Start(t)
	owner := signup(t, a, "ada@example.com", "acme")
	host := strings.TrimPrefix(a.URL, "http://")
	hostname, port, _ := strings.Cut(host, ":")
	for _, c := range []struct {
		origin string
		want   int
	}{
		{a.URL, 101},
		{"", 101}, // not a browser
		{"https://" + host, 403},
		{"http://" + hostname, 403},
		{"http://" + hostname + ":1" + port, 403},
		{"http://evil.test:" + port, 403},
		{"null", 403},
	} {
		t.Run(c.origin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			h := http.Header{"Authorization": {"Bearer " + owner}}
			if c.origin != "" {
				h.Set("Origin", c.origin)
			}
			conn, res, err := websocket.Dial(ctx, "ws://"+host+"/api/v1/tenants/acme/locks/watch", &websocket.DialOptions{HTTPHeader: h})
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			if err == nil {
				status = 101
				conn.Close(websocket.StatusNormalClosure, "")
			}
			if status != c.want {
				t.Fatalf("Origin %q: status %d (%v), want %d", c.origin, status, err, c.want)
			}
		})
	}
}

// signup makes a confirmed account owning tenant and returns its access
// token.
func signup(t *testing.T, a *apptest.Server, email, tenant string) string {
	t.Helper()
	do := func(path string, body string, want int) *http.Response {
		res, err := http.Post(a.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != want {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
		return res
	}
	do("/api/v1/auth/signup", fmt.Sprintf(`{"email":%q,"password":"correct horse battery","name":"Ada","tenant":{"slug":%q,"name":"Acme"}}`, email, tenant), 202).Body.Close()
	m := a.Mail.WaitFor(t, email)
	links := m.Links()
	var token string
	for _, l := range links {
		if _, rest, ok := strings.Cut(l, "/verify-email?token="); ok {
			token = rest
		}
	}
	do("/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, token), 200).Body.Close()
	res := do("/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":"correct horse battery"}`, email), 200)
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(res, &out); err != nil {
		t.Fatal(err)
	}
	return out.AccessToken
}
