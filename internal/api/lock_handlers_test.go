package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/app/apptest"
	"switchboard/internal/lockd"
	"switchboard/internal/tenancy"
)

const locksPath = "/api/v1/tenants/acme/locks"

// lockState is what GET .../locks says of one lock, or nil when not held.
func (s *testServer) lockState(tok, tenant, name string) *api.LockInfo {
	s.t.Helper()
	var l api.List[api.LockInfo]
	s.must(200, "GET", "/api/v1/tenants/"+tenant+"/locks", tok, nil).json(s.t, &l)
	for _, it := range l.Items {
		if it.Name == name {
			return &it
		}
	}
	return nil
}

func (s *testServer) verify(tok, tenant, name string, fencing uint64) bool {
	s.t.Helper()
	var v api.VerifyLockResponse
	s.must(200, "POST", "/api/v1/tenants/"+tenant+"/locks/"+name+"/verify", tok, map[string]any{"fencing_token": fencing}).json(s.t, &v)
	return v.Valid
}

func TestLocks_AcquireRenewReleaseVerify(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	editor := s.member(owner, "acme", "editor@acme.test", tenancy.Editor)

	var l api.LockResponse
	s.must(200, "POST", locksPath+"/orders", editor, map[string]any{"owner": "worker-1", "ttl_ms": 30000}).json(t, &l)
	if l.Token == "" || l.FencingToken == 0 || l.Owner != "worker-1" || l.Name != "orders" {
		t.Fatalf("acquire answered %+v", l)
	}
	if d := time.Until(l.ExpiresAt); d < 25*time.Second || d > 35*time.Second {
		t.Errorf("expires_at %s is not about 30s away", l.ExpiresAt)
	}
	if !s.verify(editor, "acme", "orders", l.FencingToken) {
		t.Fatal("the holder's fencing token does not verify")
	}
	if s.verify(editor, "acme", "orders", l.FencingToken+1) {
		t.Fatal("another fencing token verifies")
	}

	// Held: another acquire without waiting is refused.
	wantProblem(t, s.do("POST", locksPath+"/orders", owner, map[string]any{"owner": "worker-2", "ttl_ms": 30000}), 409, "conflict")

	// A wrong token neither renews nor releases, and leaves the lock as it was.
	before := s.lockState(editor, "acme", "orders")
	if before == nil || before.Owner != "worker-1" || before.FencingToken != l.FencingToken {
		t.Fatalf("listed %+v", before)
	}
	wantProblem(t, s.do("PUT", locksPath+"/orders", editor, map[string]any{"token": "not-the-token", "ttl_ms": 60000}), 409, "conflict")
	wantProblem(t, s.do("DELETE", locksPath+"/orders", editor, map[string]any{"token": "not-the-token"}), 409, "conflict")
	after := s.lockState(editor, "acme", "orders")
	if after == nil || *after != *before {
		t.Fatalf("a wrong token changed the lock: before %+v, after %+v", before, after)
	}
	if !s.verify(editor, "acme", "orders", l.FencingToken) {
		t.Fatal("a wrong token ended the lease")
	}

	// The right token renews (same fencing token, later end) and releases.
	var renewed api.LockResponse
	s.must(200, "PUT", locksPath+"/orders", editor, map[string]any{"token": l.Token, "ttl_ms": 60000}).json(t, &renewed)
	if renewed.FencingToken != l.FencingToken || renewed.Token != l.Token || !renewed.ExpiresAt.After(l.ExpiresAt) {
		t.Fatalf("renew answered %+v after %+v", renewed, l)
	}
	s.must(204, "DELETE", locksPath+"/orders", editor, map[string]any{"token": l.Token})
	if s.verify(editor, "acme", "orders", l.FencingToken) {
		t.Fatal("a released lock's fencing token still verifies")
	}
	if st := s.lockState(editor, "acme", "orders"); st != nil {
		t.Fatalf("released lock still listed: %+v", st)
	}
	wantProblem(t, s.do("DELETE", locksPath+"/orders", editor, map[string]any{"token": l.Token}), 404, "not_found")
	wantProblem(t, s.do("PUT", locksPath+"/orders", editor, map[string]any{"token": l.Token, "ttl_ms": 1000}), 404, "not_found")

	// The next grant has a larger fencing token.
	var again api.LockResponse
	s.must(200, "POST", locksPath+"/orders", owner, map[string]any{"owner": "worker-2", "ttl_ms": 1000}).json(t, &again)
	if again.FencingToken <= l.FencingToken {
		t.Fatalf("fencing token went from %d to %d", l.FencingToken, again.FencingToken)
	}
}

// rawDo sends a request from any goroutine (no testing.T).
func rawDo(method, url, token string, body any) (int, []byte, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(buf))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

type acquired struct {
	who    string
	status int
	lock   api.LockResponse
	body   string
	err    error
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLocks_WaitersAreServedFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	operator := s.member(owner, "acme", "operator@acme.test", tenancy.Operator)

	var first api.LockResponse
	s.must(200, "POST", locksPath+"/batch", owner, map[string]any{"owner": "a", "ttl_ms": 30000}).json(t, &first)

	// b, then c, queue behind a; each is queued before the next starts.
	got := make(chan acquired, 2)
	for i, who := range []string{"b", "c"} {
		go func() {
			st, body, err := rawDo("POST", s.URL+locksPath+"/batch", operator, map[string]any{"owner": who, "ttl_ms": 30000, "wait_ms": 20000})
			r := acquired{who: who, status: st, body: string(body), err: err}
			if err == nil && st == 200 {
				r.err = json.Unmarshal(body, &r.lock)
			}
			got <- r
		}()
		waitFor(t, who+" to queue", func() bool {
			l := s.lockState(owner, "acme", "batch")
			return l != nil && l.Waiters == i+1
		})
	}

	// A waiter that gives up gets 409 and changes nothing.
	wantProblem(t, s.do("POST", locksPath+"/batch", operator, map[string]any{"owner": "d", "ttl_ms": 30000, "wait_ms": 200}), 409, "conflict")
	if l := s.lockState(owner, "acme", "batch"); l == nil || l.Owner != "a" || l.Waiters != 2 {
		t.Fatalf("after a waiter gave up the lock is %+v", l)
	}

	prev := first
	for _, want := range []string{"b", "c"} {
		s.must(204, "DELETE", locksPath+"/batch", owner, map[string]any{"token": prev.Token})
		var r acquired
		select {
		case r = <-got:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s was not granted the lock after its release", want)
		}
		if r.err != nil || r.status != 200 {
			t.Fatalf("%s: status %d, err %v, body %s", r.who, r.status, r.err, r.body)
		}
		if r.who != want || r.lock.Owner != want {
			t.Fatalf("granted to %s (%+v), want %s", r.who, r.lock, want)
		}
		if r.lock.FencingToken <= prev.FencingToken {
			t.Fatalf("fencing token went from %d to %d", prev.FencingToken, r.lock.FencingToken)
		}
		if !s.verify(owner, "acme", "batch", r.lock.FencingToken) || s.verify(owner, "acme", "batch", prev.FencingToken) {
			t.Fatalf("after the hand-off to %s the wrong token verifies", want)
		}
		prev = r.lock
	}
}

func TestLocks_BadInputIs400AndTakesNothing(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	long := strings.Repeat("n", lockd.MaxNameLen+1)
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"ttl 0", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 0}, "ttl_ms"},
		{"ttl missing", "POST", locksPath + "/x", map[string]any{"owner": "o"}, "ttl_ms"},
		{"ttl negative", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": -1000}, "ttl_ms"},
		{"ttl below 100ms", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 99}, "ttl_ms"},
		{"ttl over an hour", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 3600001}, "ttl_ms"},
		{"ttl enormous", "POST", locksPath + "/x", `{"owner": "o", "ttl_ms": 9223372036854775807}`, "ttl_ms"},
		{"ttl past int64", "POST", locksPath + "/x", `{"owner": "o", "ttl_ms": 92233720368547758070}`, "ttl_ms"},
		{"ttl fractional", "POST", locksPath + "/x", `{"owner": "o", "ttl_ms": 1000.5}`, "ttl_ms"},
		{"ttl as a string", "POST", locksPath + "/x", `{"owner": "o", "ttl_ms": "1000"}`, "ttl_ms"},
		{"wait negative", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 1000, "wait_ms": -1}, "wait_ms"},
		{"wait over a minute", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 1000, "wait_ms": 60001}, "wait_ms"},
		{"wait enormous", "POST", locksPath + "/x", `{"owner": "o", "ttl_ms": 1000, "wait_ms": -9223372036854775808}`, "wait_ms"},
		{"owner missing", "POST", locksPath + "/x", map[string]any{"ttl_ms": 1000}, "owner"},
		{"owner with a newline", "POST", locksPath + "/x", map[string]any{"owner": "a\nb", "ttl_ms": 1000}, "owner"},
		{"owner too long", "POST", locksPath + "/x", map[string]any{"owner": long, "ttl_ms": 1000}, "owner"},
		{"unknown field", "POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 1000, "lease": 5}, "lease"},
		{"name too long", "POST", locksPath + "/" + long, map[string]any{"owner": "o", "ttl_ms": 1000}, "name"},
		{"name with a control character", "POST", locksPath + "/a%07b", map[string]any{"owner": "o", "ttl_ms": 1000}, "name"},
		{"renew ttl 0", "PUT", locksPath + "/x", map[string]any{"token": "t", "ttl_ms": 0}, "ttl_ms"},
		{"renew without token", "PUT", locksPath + "/x", map[string]any{"ttl_ms": 1000}, "token"},
		{"release without token", "DELETE", locksPath + "/x", map[string]any{}, "token"},
		{"verify token 0", "POST", locksPath + "/x/verify", map[string]any{"fencing_token": 0}, "fencing_token"},
		{"verify negative token", "POST", locksPath + "/x/verify", map[string]any{"fencing_token": -1}, "fencing_token"},
		{"campaign ttl huge", "POST", "/api/v1/tenants/acme/elections/e/campaign", map[string]any{"candidate": "c", "ttl_ms": int64(1) << 62}, "ttl_ms"},
		{"campaign without candidate", "POST", "/api/v1/tenants/acme/elections/e/campaign", map[string]any{"ttl_ms": 1000}, "candidate"},
		{"election name too long", "GET", "/api/v1/tenants/acme/elections/" + long, nil, "name"},
		{"kv key too long", "PUT", "/api/v1/tenants/acme/kv/" + long, map[string]any{"value": 1}, "key"},
		{"kv prefix too long", "GET", "/api/v1/tenants/acme/kv?prefix=" + long, nil, "prefix"},
		{"kv bad cursor", "GET", "/api/v1/tenants/acme/kv?cursor=!!!", nil, "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.bind(t)
			p := wantProblem(t, s.do(c.method, c.path, owner, c.body), 400, "invalid")
			if _, ok := p.Errors[c.field]; !ok {
				t.Errorf("errors %v do not name %s", p.Errors, c.field)
			}
		})
	}
	var l api.List[api.LockInfo]
	s.must(200, "GET", locksPath, owner, nil).json(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("bad requests took locks: %+v", l.Items)
	}
	// The longest name is fine.
	s.must(200, "POST", locksPath+"/"+strings.Repeat("n", lockd.MaxNameLen), owner, map[string]any{"owner": "o", "ttl_ms": 1000})
}

func TestKV_CompareAndSetWithETags(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	const key = "/api/v1/tenants/acme/kv/config%2Fdb" // the key "config/db"

	wantProblem(t, s.do("GET", key, owner, nil), 404, "not_found")

	// Create only.
	created := s.must(200, "PUT", key, owner, map[string]any{"value": map[string]any{"host": "db1", "port": 5432}}, "If-None-Match", "*")
	var kv1 api.KVResponse
	created.json(t, &kv1)
	if kv1.Key != "config/db" || kv1.Revision == 0 || kv1.CreateRevision != kv1.Revision || string(kv1.Value) != `{"host":"db1","port":5432}` {
		t.Fatalf("created %+v value %s", kv1, kv1.Value)
	}
	etag1 := created.Header.Get("ETag")
	if etag1 != fmt.Sprintf(`"%d"`, kv1.Revision) {
		t.Fatalf("ETag %q for revision %d", etag1, kv1.Revision)
	}
	wantProblem(t, s.do("PUT", key, owner, map[string]any{"value": "other"}, "If-None-Match", "*"), 412, "precondition")

	// Read: value, revision and the same ETag; a matching If-None-Match is 304.
	r := s.must(200, "GET", key, owner, nil)
	var got api.KVResponse
	r.json(t, &got)
	if r.Header.Get("ETag") != etag1 || got.Revision != kv1.Revision || string(got.Value) != string(kv1.Value) {
		t.Fatalf("GET %s with ETag %s", r.Body, r.Header.Get("ETag"))
	}
	s.must(304, "GET", key, owner, nil, "If-None-Match", etag1)

	// Compare-and-set: the current revision wins once, a stale one is 412 and
	// writes nothing.
	updated := s.must(200, "PUT", key, owner, map[string]any{"value": "db2:5432"}, "If-Match", etag1)
	var kv2 api.KVResponse
	updated.json(t, &kv2)
	if kv2.Revision <= kv1.Revision || kv2.CreateRevision != kv1.CreateRevision || string(kv2.Value) != `"db2:5432"` {
		t.Fatalf("updated %+v value %s", kv2, kv2.Value)
	}
	etag2 := updated.Header.Get("ETag")
	wantProblem(t, s.do("PUT", key, owner, map[string]any{"value": "lost update"}, "If-Match", etag1), 412, "precondition")
	s.must(200, "GET", key, owner, nil).json(t, &got)
	if got.Revision != kv2.Revision || string(got.Value) != `"db2:5432"` {
		t.Fatalf("a stale If-Match wrote: %+v %s", got, got.Value)
	}
	wantProblem(t, s.do("PUT", "/api/v1/tenants/acme/kv/missing", owner, map[string]any{"value": 1}, "If-Match", etag2), 412, "precondition")

	// Bad conditions and bodies are 400.
	wantProblem(t, s.do("PUT", key, owner, map[string]any{"value": 1}, "If-Match", "*"), 400, "invalid")
	wantProblem(t, s.do("PUT", key, owner, map[string]any{"value": 1}, "If-Match", "yesterday"), 400, "invalid")
	wantProblem(t, s.do("PUT", key, owner, map[string]any{"value": 1}, "If-None-Match", etag2), 400, "invalid")
	wantProblem(t, s.do("PUT", key, owner, map[string]any{}), 400, "invalid")
	wantProblem(t, s.do("PUT", key, owner, map[string]any{"value": strings.Repeat("v", lockd.MaxValueLen)}), 400, "invalid")

	// Delete: a stale revision is 412, the current one deletes.
	wantProblem(t, s.do("DELETE", key, owner, nil, "If-Match", etag1), 412, "precondition")
	s.must(204, "DELETE", key, owner, nil, "If-Match", etag2)
	wantProblem(t, s.do("GET", key, owner, nil), 404, "not_found")
	wantProblem(t, s.do("DELETE", key, owner, nil), 404, "not_found")

	// Unconditional writes, and null is a value.
	s.must(200, "PUT", key, owner, map[string]any{"value": nil})
	s.must(200, "GET", key, owner, nil).json(t, &got)
	if string(got.Value) != "null" {
		t.Fatalf("null read back as %s", got.Value)
	}
}

func TestKV_ListByPrefixInPages(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	for _, k := range []string{"app%2Fc", "app%2Fa", "apple", "app%2Fb", "other"} {
		s.must(200, "PUT", "/api/v1/tenants/acme/kv/"+k, owner, map[string]any{"value": k})
	}
	var keys []string
	path := "/api/v1/tenants/acme/kv?limit=2&prefix=" + url.QueryEscape("app/")
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var l api.List[api.KVResponse]
		s.must(200, "GET", path, viewer, nil).json(t, &l)
		for _, it := range l.Items {
			keys = append(keys, it.Key)
		}
		if l.NextCursor == "" {
			break
		}
		path = "/api/v1/tenants/acme/kv?limit=2&prefix=" + url.QueryEscape("app/") + "&cursor=" + url.QueryEscape(l.NextCursor)
	}
	if strings.Join(keys, ",") != "app/a,app/b,app/c" {
		t.Fatalf("listed %v", keys)
	}
	var all api.List[api.KVResponse]
	s.must(200, "GET", "/api/v1/tenants/acme/kv", viewer, nil).json(t, &all)
	if len(all.Items) != 5 || all.NextCursor != "" {
		t.Fatalf("listed all as %+v", all)
	}
}

func TestElections_CampaignLeaderRenewResign(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	const e = "/api/v1/tenants/acme/elections/scheduler"

	wantProblem(t, s.do("GET", e, viewer, nil), 404, "not_found")

	var a api.LeadershipResponse
	s.must(200, "POST", e+"/campaign", owner, map[string]any{"candidate": "node-a", "ttl_ms": 30000}).json(t, &a)
	if a.Leader != "node-a" || a.Term == 0 || a.Token == "" {
		t.Fatalf("campaign answered %+v", a)
	}
	var leader api.ElectionResponse
	s.must(200, "GET", e, viewer, nil).json(t, &leader)
	if leader.Leader != "node-a" || leader.Term != a.Term || leader.Name != "scheduler" {
		t.Fatalf("leader %+v after %+v", leader, a)
	}
	var all api.List[api.ElectionResponse]
	s.must(200, "GET", "/api/v1/tenants/acme/elections", viewer, nil).json(t, &all)
	if len(all.Items) != 1 || all.Items[0] != leader {
		t.Fatalf("elections list %+v, want just %+v", all.Items, leader)
	}
	other := s.signup("owner@globex.test", "globex")
	s.must(200, "GET", "/api/v1/tenants/globex/elections", other, nil).json(t, &all)
	if len(all.Items) != 0 {
		t.Fatalf("globex lists acme's elections: %+v", all.Items)
	}
	wantProblem(t, s.do("POST", e+"/campaign", owner, map[string]any{"candidate": "node-b", "ttl_ms": 30000}), 409, "conflict")
	wantProblem(t, s.do("POST", e+"/renew", owner, map[string]any{"token": "wrong", "ttl_ms": 30000}), 409, "conflict")
	wantProblem(t, s.do("POST", e+"/resign", owner, map[string]any{"token": "wrong"}), 409, "conflict")
	var renewed api.LeadershipResponse
	s.must(200, "POST", e+"/renew", owner, map[string]any{"token": a.Token, "ttl_ms": 60000}).json(t, &renewed)
	if renewed.Term != a.Term || !renewed.ExpiresAt.After(a.ExpiresAt) {
		t.Fatalf("renewed %+v after %+v", renewed, a)
	}

	// node-b waits; node-a resigns; node-b wins a later term.
	got := make(chan acquired, 1)
	go func() {
		st, body, err := rawDo("POST", s.URL+e+"/campaign", owner, map[string]any{"candidate": "node-b", "ttl_ms": 30000, "wait_ms": 20000})
		got <- acquired{status: st, body: string(body), err: err}
	}()
	// node-b most likely queues before the resignation; if not, it wins at once.
	time.Sleep(200 * time.Millisecond)
	s.must(204, "POST", e+"/resign", owner, map[string]any{"token": a.Token})
	r := <-got
	if r.err != nil || r.status != 200 {
		t.Fatalf("node-b: %d %v %s", r.status, r.err, r.body)
	}
	var b api.LeadershipResponse
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatal(err)
	}
	if b.Leader != "node-b" || b.Term <= a.Term {
		t.Fatalf("node-b won %+v after term %d", b, a.Term)
	}
	s.must(200, "GET", e, viewer, nil).json(t, &leader)
	if leader.Leader != "node-b" || leader.Term != b.Term {
		t.Fatalf("leader %+v, want node-b in term %d", leader, b.Term)
	}
}

// dialWS opens a WebSocket on path with the bearer credential.
func dialWS(t testing.TB, s *testServer, path, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return conn
}

// envelope is a live stream's message (internal/live).
type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Seq  uint64          `json:"seq"`
}

// readMsg reads the next message of a stream that carries data (not the
// opening "ready" nor a "ping").
func readMsg(t testing.TB, conn *websocket.Conn) envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var m envelope
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Type != "ready" && m.Type != "ping" {
			return m
		}
	}
}

// readWS reads the next data message's data into v.
func readWS(t testing.TB, conn *websocket.Conn, v any) {
	t.Helper()
	m := readMsg(t, conn)
	if m.Type == "error" {
		t.Fatalf("the stream failed: %s", m.Data)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		t.Fatalf("decode %s: %v", m.Data, err)
	}
}

func TestWebSocket_ObserveAndWatchStreams(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)

	observe := dialWS(t, s, "/api/v1/tenants/acme/elections/primary/observe", viewer)
	elections := dialWS(t, s, "/api/v1/tenants/acme/elections-watch", viewer)
	locks := dialWS(t, s, locksPath+"/watch", viewer)
	kv := dialWS(t, s, "/api/v1/tenants/acme/kv-watch?prefix=flags%2F", viewer)

	var ev api.ElectionEventMessage
	readWS(t, observe, &ev)
	if ev.Leader != "" {
		t.Fatalf("first observe message %+v, want no leader", ev)
	}
	var lead api.LeadershipResponse
	s.must(200, "POST", "/api/v1/tenants/acme/elections/primary/campaign", owner, map[string]any{"candidate": "n1", "ttl_ms": 30000}).json(t, &lead)
	readWS(t, observe, &ev)
	if ev.Leader != "n1" || ev.Term != lead.Term || ev.ExpiresAt == nil || ev.Index != lead.Term {
		t.Fatalf("observed %+v after winning term %d (at that index)", ev, lead.Term)
	}
	s.must(204, "POST", "/api/v1/tenants/acme/elections/primary/resign", owner, map[string]any{"token": lead.Token})
	readWS(t, observe, &ev)
	if ev.Leader != "" || ev.Index <= lead.Term {
		t.Fatalf("observed %+v after the resignation", ev)
	}
	resigned := ev.Index
	for _, want := range []struct {
		typ   string
		index uint64
	}{{"acquired", lead.Term}, {"released", resigned}} {
		var m api.ElectionChangeMessage
		readWS(t, elections, &m)
		if m.Type != want.typ || m.Name != "primary" || m.Leader != "n1" || m.Term != lead.Term || m.Index != want.index {
			t.Fatalf("elections watch %+v, want %s of primary by n1 in term %d at index %d", m, want.typ, lead.Term, want.index)
		}
	}

	var l api.LockResponse
	s.must(200, "POST", locksPath+"/report", owner, map[string]any{"owner": "cron", "ttl_ms": 30000}).json(t, &l)
	s.must(204, "DELETE", locksPath+"/report", owner, map[string]any{"token": l.Token})
	for _, want := range []string{"acquired", "released"} {
		var m api.LockEventMessage
		readWS(t, locks, &m)
		if m.Type != want || m.Name != "report" || m.Owner != "cron" || m.FencingToken != l.FencingToken ||
			(want == "acquired") != (m.Index == l.FencingToken) || m.Index < l.FencingToken {
			t.Fatalf("lock event %+v, want %s of report (acquired at the grant's index, released later)", m, want)
		}
	}

	s.must(200, "PUT", "/api/v1/tenants/acme/kv/other", owner, map[string]any{"value": 1}) // not under the prefix
	var put api.KVResponse
	s.must(200, "PUT", "/api/v1/tenants/acme/kv/flags%2Fdark", owner, map[string]any{"value": true}).json(t, &put)
	s.must(204, "DELETE", "/api/v1/tenants/acme/kv/flags%2Fdark", owner, nil)
	var m api.KVEventMessage
	readWS(t, kv, &m)
	if m.Type != "put" || m.Key != "flags/dark" || string(m.Value) != "true" || m.Revision != put.Revision {
		t.Fatalf("kv event %+v value %s", m, m.Value)
	}
	m = api.KVEventMessage{}
	readWS(t, kv, &m)
	if m.Type != "deleted" || m.Key != "flags/dark" || m.Value != nil || m.Revision <= put.Revision {
		t.Fatalf("kv event %+v value %s", m, m.Value)
	}
}

func TestWebSocket_RefusedWithoutAccess(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	other := s.signup("owner@globex.test", "globex")
	ws := "ws" + strings.TrimPrefix(s.URL, "http")
	cases := []struct {
		name, path string
		header     http.Header
		status     int
	}{
		{"no credentials", locksPath + "/watch", nil, 401},
		{"another tenant", locksPath + "/watch", http.Header{"Authorization": {"Bearer " + other}}, 404},
		{"another tenant's election", "/api/v1/tenants/acme/elections/e/observe", http.Header{"Authorization": {"Bearer " + other}}, 404},
		{"another tenant's elections", "/api/v1/tenants/acme/elections-watch", http.Header{"Authorization": {"Bearer " + other}}, 404},
		{"a cross-site page", locksPath + "/watch", http.Header{"Authorization": {"Bearer " + owner}, "Origin": {"https://evil.example"}}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, res, err := websocket.Dial(ctx, ws+c.path, &websocket.DialOptions{HTTPHeader: c.header})
			if err == nil {
				conn.Close(websocket.StatusNormalClosure, "")
				t.Fatal("the upgrade was accepted")
			}
			if res == nil || res.StatusCode != c.status {
				t.Fatalf("refused with %v, want status %d", res, c.status)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("refused as %q, want a problem document", ct)
			}
		})
	}

	// What is not a WebSocket handshake gets a problem document too, on
	// every stream endpoint.
	handshake := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	without := func(name, value string) http.Header {
		h := handshake.Clone()
		if value == "" {
			h.Del(name)
		} else {
			h.Set(name, value)
		}
		return h
	}
	for _, path := range []string{locksPath + "/watch", "/api/v1/tenants/acme/elections-watch", "/api/v1/tenants/acme/elections/e/observe",
		"/api/v1/tenants/acme/kv-watch", "/api/v1/tenants/acme/subscriptions/live"} {
		for _, c := range []struct {
			name   string
			header http.Header
			status int
			code   string
		}{
			{"a plain GET", http.Header{}, 400, "invalid"},
			{"no Connection: Upgrade", without("Connection", ""), 400, "invalid"},
			{"version 8", without("Sec-Websocket-Version", "8"), 400, "invalid"},
			{"no key", without("Sec-Websocket-Key", ""), 400, "invalid"},
			{"another origin", without("Origin", "http://evil.example"), 403, "forbidden"},
			{"an origin that is no URL", without("Origin", "::"), 403, "forbidden"},
		} {
			t.Run(path+" "+c.name, func(t *testing.T) {
				req, err := http.NewRequest("GET", s.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header = c.header.Clone()
				req.Header.Set("Authorization", "Bearer "+owner)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var p struct{ Code string }
				_ = json.NewDecoder(res.Body).Decode(&p)
				if res.StatusCode != c.status || res.Header.Get("Content-Type") != "application/problem+json" || p.Code != c.code {
					t.Fatalf("%d %s %q, want %d %q as a problem document", res.StatusCode, res.Header.Get("Content-Type"), p.Code, c.status, c.code)
				}
			})
		}
	}
}

func TestCoordination_AnotherTenantsObjectsAreNotFound(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	acme := s.signup("owner@acme.test", "acme")
	globex := s.signup("owner@globex.test", "globex")

	var l api.LockResponse
	s.must(200, "POST", locksPath+"/shared", acme, map[string]any{"owner": "acme-worker", "ttl_ms": 30000}).json(t, &l)
	s.must(200, "PUT", "/api/v1/tenants/acme/kv/secret", acme, map[string]any{"value": "acme only"})
	s.must(200, "POST", "/api/v1/tenants/acme/elections/boss/campaign", acme, map[string]any{"candidate": "acme", "ttl_ms": 30000})

	// Under acme's path, globex's owner sees nothing.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", locksPath, nil},
		{"POST", locksPath + "/shared/verify", map[string]any{"fencing_token": l.FencingToken}},
		{"DELETE", locksPath + "/shared", map[string]any{"token": l.Token}},
		{"PUT", locksPath + "/shared", map[string]any{"token": l.Token, "ttl_ms": 1000}},
		{"GET", "/api/v1/tenants/acme/kv/secret", nil},
		{"DELETE", "/api/v1/tenants/acme/kv/secret", nil},
		{"GET", "/api/v1/tenants/acme/elections/boss", nil},
	} {
		wantProblem(t, s.do(c.method, c.path, globex, c.body), 404, "not_found")
	}
	// In its own tenant, acme's names and even acme's token find nothing.
	wantProblem(t, s.do("DELETE", "/api/v1/tenants/globex/locks/shared", globex, map[string]any{"token": l.Token}), 404, "not_found")
	wantProblem(t, s.do("PUT", "/api/v1/tenants/globex/locks/shared", globex, map[string]any{"token": l.Token, "ttl_ms": 1000}), 404, "not_found")
	wantProblem(t, s.do("GET", "/api/v1/tenants/globex/kv/secret", globex, nil), 404, "not_found")
	wantProblem(t, s.do("GET", "/api/v1/tenants/globex/elections/boss", globex, nil), 404, "not_found")
	if s.verify(globex, "globex", "shared", l.FencingToken) {
		t.Fatal("acme's fencing token verifies in globex")
	}
	var gl api.List[api.LockInfo]
	s.must(200, "GET", "/api/v1/tenants/globex/locks", globex, nil).json(t, &gl)
	if len(gl.Items) != 0 {
		t.Fatalf("globex lists %+v", gl.Items)
	}
	// The same name is a separate lock in globex.
	s.must(200, "POST", "/api/v1/tenants/globex/locks/shared", globex, map[string]any{"owner": "globex-worker", "ttl_ms": 30000})

	// acme's objects are untouched.
	if st := s.lockState(acme, "acme", "shared"); st == nil || st.Owner != "acme-worker" || st.FencingToken != l.FencingToken {
		t.Fatalf("acme's lock is now %+v", st)
	}
	s.must(200, "GET", "/api/v1/tenants/acme/kv/secret", acme, nil)
	s.must(200, "GET", "/api/v1/tenants/acme/elections/boss", acme, nil)
}

func TestCoordination_RolesThatMayUse(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	var viewerTok api.CreateTokenResponse
	s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "ro", "role": "viewer"}).json(t, &viewerTok)
	creds := map[string]string{
		"owner":        owner,
		"admin":        s.member(owner, "acme", "admin@acme.test", tenancy.Admin),
		"editor":       s.member(owner, "acme", "editor@acme.test", tenancy.Editor),
		"operator":     s.member(owner, "acme", "operator@acme.test", tenancy.Operator),
		"viewer":       s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer),
		"token:viewer": viewerTok.Token,
	}
	for who, cred := range creds {
		t.Run(who, func(t *testing.T) {
			s := s.bind(t)
			mayUse := !strings.Contains(who, "viewer")
			name := strings.ReplaceAll(who, ":", "-")
			uses := []struct {
				method, path string
				body         any
			}{
				{"POST", locksPath + "/" + name, map[string]any{"owner": who, "ttl_ms": 30000}},
				{"POST", "/api/v1/tenants/acme/elections/" + name + "/campaign", map[string]any{"candidate": who, "ttl_ms": 30000}},
				{"PUT", "/api/v1/tenants/acme/kv/" + name, map[string]any{"value": who}},
			}
			for _, u := range uses {
				r := s.do(u.method, u.path, cred, u.body)
				if mayUse && r.Status != 200 {
					t.Errorf("%s %s: %d %s", u.method, u.path, r.Status, r.Body)
				}
				if !mayUse {
					wantProblem(t, r, 403, "forbidden")
				}
			}
			// Everyone reads.
			s.must(200, "GET", locksPath, cred, nil)
			s.must(200, "GET", "/api/v1/tenants/acme/kv", cred, nil)
			s.must(200, "POST", locksPath+"/"+name+"/verify", cred, map[string]any{"fencing_token": 1})
		})
	}
	// Nothing a viewer tried exists.
	var l api.List[api.LockInfo]
	s.must(200, "GET", locksPath, owner, nil).json(t, &l)
	for _, it := range l.Items {
		if strings.Contains(it.Name, "viewer") {
			t.Errorf("a viewer took lock %s", it.Name)
		}
	}
	wantProblem(t, s.do("GET", "/api/v1/tenants/acme/kv/viewer", owner, nil), 404, "not_found")
}

func TestCluster_StatusAndWhoMaySeeIt(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, withOperators("owner@acme.test"))
	owner := s.signup("owner@acme.test", "acme")
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	admin := s.member(owner, "acme", "admin@acme.test", tenancy.Admin)
	nobody := s.signup("nobody@example.com", "")
	tokens := map[string]string{}
	for _, role := range []string{"viewer", "admin"} {
		var tok api.CreateTokenResponse
		s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": role, "role": role}).json(t, &tok)
		tokens[role] = tok.Token
	}

	var st api.ClusterResponse
	s.must(200, "GET", "/api/v1/cluster", owner, nil).json(t, &st)
	if st.State != "Leader" || st.NodeID != "n1" || st.LeaderID != "n1" || st.Term == 0 || st.CommitIndex == 0 ||
		st.AppliedIndex == 0 || len(st.Members) != 1 || !st.Members[0].Leader || st.Members[0].Suffrage != "Voter" {
		t.Fatalf("cluster %+v", st)
	}
	// Only the operators: the group's nodes and addresses serve every
	// tenant, and anyone can sign up and own one.
	for who, cred := range map[string]string{"viewer": viewer, "token:viewer": tokens["viewer"], "no tenant": nobody,
		"admin": admin, "token:admin": tokens["admin"]} {
		t.Run(who, func(t *testing.T) {
			s := s.bind(t)
			wantProblem(t, s.do("GET", "/api/v1/cluster", cred, nil), 403, "forbidden")
			wantProblem(t, s.do("POST", "/api/v1/cluster/voters", cred, map[string]string{"id": "n9", "addr": "127.0.0.1:1"}), 403, "forbidden")
			wantProblem(t, s.do("DELETE", "/api/v1/cluster/voters/n1", cred, nil), 403, "forbidden")
		})
	}
	// An owner of a tenant who is not an operator is no exception.
	other := s.signup("owner@globex.test", "globex")
	wantProblem(t, s.do("GET", "/api/v1/cluster", other, nil), 403, "forbidden")
	wantProblem(t, s.do("GET", "/api/v1/cluster", "", nil), 401, "unauthenticated")
	wantProblem(t, s.do("POST", "/api/v1/cluster/voters", owner, map[string]string{"id": "n2"}), 400, "invalid")
	wantProblem(t, s.do("POST", "/api/v1/cluster/voters", owner, map[string]string{"id": "", "addr": "127.0.0.1:7000"}), 400, "invalid")

	// The group is as it was.
	s.must(200, "GET", "/api/v1/cluster", owner, nil).json(t, &st)
	if len(st.Members) != 1 || st.State != "Leader" {
		t.Fatalf("cluster changed: %+v", st)
	}
}

func TestCoordination_WithoutRaftLeaderIs503(t *testing.T) {
	t.Parallel()
	// A node that waits to be added to a group has no leader to ask.
	s := newTestServer(t, joining("n2"))
	owner := s.signup("owner@acme.test", "acme")
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	wantProblem(t, s.do("POST", locksPath+"/x", owner, map[string]any{"owner": "o", "ttl_ms": 1000}), 503, "unavailable")
	wantProblem(t, s.do("GET", "/api/v1/tenants/acme/kv/x", owner, nil), 503, "unavailable")
	// Authorization still comes first.
	wantProblem(t, s.do("POST", locksPath+"/x", viewer, map[string]any{"owner": "o", "ttl_ms": 1000}), 403, "forbidden")
}

// joining starts the server's Raft node empty, waiting for a leader to add
// it as node id.
func joining(id string) serverOption {
	return func(c *app.Config) { c.NodeID, c.RaftJoin = id, true }
}

// replicaOf runs a server on s's database with s's signing key and public
// URL: a second replica of one deployment behind one load balancer, where
// an access token from one replica works on the other.
func replicaOf(s *testServer) serverOption {
	return func(c *app.Config) {
		apptest.WithDatabase(s.App.DatabaseURL)(c)
		apptest.WithKey(s.Key)(c)
		c.BaseURL = s.URL
	}
}

func TestCoordination_FollowerAnswers503NamingTheLeader(t *testing.T) {
	t.Parallel()
	ls := newTestServer(t, withOperators("owner@acme.test"))
	lowner := ls.signup("owner@acme.test", "acme")
	s := newTestServer(t, replicaOf(ls), joining("n2"), withOperators("owner@acme.test"))
	owner := s.login("owner@acme.test")
	leader, follower := ls.App.Locks, s.App.Locks

	// The leader adds the follower through the API of the server on the leader.
	var st api.ClusterResponse
	ls.must(200, "POST", "/api/v1/cluster/voters", lowner, map[string]string{"id": "n2", "addr": follower.Status().Addr}).json(t, &st)
	if len(st.Members) != 2 {
		t.Fatalf("after adding a voter: %+v", st)
	}
	waitFor(t, "the follower to know the leader", func() bool { return follower.Status().LeaderAddr != "" })

	leaderAddr := leader.Status().Addr
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", locksPath + "/x", map[string]any{"owner": "o", "ttl_ms": 1000}},
		{"GET", locksPath, nil},
		{"PUT", "/api/v1/tenants/acme/kv/k", map[string]any{"value": 1}},
		{"GET", "/api/v1/tenants/acme/elections/e", nil},
		{"POST", "/api/v1/cluster/voters", map[string]string{"id": "n3", "addr": "127.0.0.1:1"}},
	} {
		r := s.do(c.method, c.path, owner, c.body)
		p := wantProblem(t, r, 503, "unavailable")
		if r.Header.Get("Retry-After") != "1" || !strings.Contains(p.Detail, leaderAddr) || !strings.Contains(p.Detail, "n1") {
			t.Errorf("%s %s: Retry-After %q, detail %q; want the leader n1 at %s", c.method, c.path, r.Header.Get("Retry-After"), p.Detail, leaderAddr)
		}
	}
	// The follower still describes the cluster.
	s.must(200, "GET", "/api/v1/cluster", owner, nil).json(t, &st)
	if st.State != "Follower" || st.LeaderID != "n1" || st.LeaderAddr != leaderAddr || len(st.Members) != 2 {
		t.Fatalf("the follower sees %+v", st)
	}

	// Knowing the leader's Switchboard URL, a follower forwards instead,
	// before it authenticates or decodes: the leader answers everything,
	// its own problems included.
	// Every node's URL is given, as in production: on a busy machine the
	// leadership may move while the test runs.
	rs := newTestServer(t, replicaOf(ls), joining("n3"), withOperators("owner@acme.test"),
		withPeerURLs(map[string]string{"n1": ls.URL + "/", "n2": s.URL, "n3": "http://127.0.0.1:1"}))
	// On a loaded machine the two-node group may be between leaders for a
	// moment: adding the voter is retried while it says so.
	waitFor(t, "the group to add n3", func() bool {
		r := ls.do("POST", "/api/v1/cluster/voters", lowner, map[string]string{"id": "n3", "addr": rs.App.Locks.Status().Addr})
		if r.Status != 200 && r.Status != 503 {
			t.Fatalf("adding n3: status %d; body %s", r.Status, r.Body)
		}
		return r.Status == 200
	})
	waitFor(t, "the third node to know the leader", func() bool { return rs.App.Locks.Status().LeaderAddr != "" })
	rowner := rs.login("owner@acme.test")
	var l api.LockResponse
	// As a client does on 503 with Retry-After: the group may be between
	// leaders for a moment on a loaded machine.
	waitFor(t, "the lock taken through n3", func() bool {
		r := rs.do("POST", locksPath+"/x?x=1", rowner, map[string]any{"owner": "through-n3", "ttl_ms": 60000})
		if r.Status != 200 && r.Status != 503 {
			t.Fatalf("acquire through n3: status %d; body %s", r.Status, r.Body)
		}
		if r.Status == 200 {
			r.json(t, &l)
		}
		return r.Status == 200
	})
	var held api.List[api.LockInfo]
	rs.must(200, "GET", locksPath, rowner, nil).json(t, &held)
	if len(held.Items) != 1 || held.Items[0].Owner != "through-n3" {
		t.Fatalf("the leader holds %+v; want the lock taken through n3", held.Items)
	}
	rs.must(204, "DELETE", locksPath+"/x", rowner, map[string]any{"token": l.Token})
	wantProblem(t, rs.do("POST", locksPath+"/y", rowner, map[string]any{"owner": "o", "ttl_ms": 1000, "extra": 1}), 400, "invalid")
	wantProblem(t, rs.do("POST", locksPath+"/y", "", map[string]any{"owner": "o", "ttl_ms": 1000}), 401, "unauthenticated")
	wantProblem(t, rs.do("POST", "/api/v1/cluster/voters", rowner, map[string]string{"id": "bad id", "addr": "x"}), 400, "invalid")
	// What each node serves from its own state is not forwarded.
	rs.must(200, "GET", "/api/v1/cluster", rowner, nil).json(t, &st)
	if st.NodeID != "n3" || st.State != "Follower" {
		t.Fatalf("GET /cluster on n3 answered %+v", st)
	}

	// A follower that cannot reach the leader's server says so.
	us := newTestServer(t, replicaOf(ls), joining("n4"), withPeerURLs(map[string]string{"n1": "http://127.0.0.1:1", "n2": "http://127.0.0.1:1"}))
	rs.must(200, "POST", "/api/v1/cluster/voters", rowner, map[string]string{"id": "n4", "addr": us.App.Locks.Status().Addr})
	waitFor(t, "the fourth node to know the leader", func() bool { return us.App.Locks.Status().LeaderAddr != "" })
	r := us.do("POST", locksPath+"/z", us.login("owner@acme.test"), map[string]any{"owner": "o", "ttl_ms": 1000})
	if p := wantProblem(t, r, 503, "unavailable"); !strings.Contains(p.Detail, "could not reach the leader") || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("unreachable leader: %q, Retry-After %q", p.Detail, r.Header.Get("Retry-After"))
	}
}
