package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/api"
	"switchboard/internal/app"
)

// defectNumbers are the numbers a tenant is shown by one round of its own
// writes: a key's revision, a lock's fencing token, an election's term.
type defectNumbers struct{ revision, fencing, term uint64 }

// defectRoundOfWrites writes a key, takes and releases a lock, and wins and
// resigns an election in tenant, and returns the numbers it was shown.
func defectRoundOfWrites(t *testing.T, s *testServer, cred, tenant string) defectNumbers {
	t.Helper()
	base := "/api/v1/tenants/" + tenant
	var kv api.KVResponse
	s.must(200, "PUT", base+"/kv/counter", cred, map[string]any{"value": tenant}).json(t, &kv)
	var l api.LockResponse
	s.must(200, "POST", base+"/locks/job", cred, map[string]any{"owner": "w", "ttl_ms": 30000}).json(t, &l)
	s.must(204, "DELETE", base+"/locks/job", cred, map[string]any{"token": l.Token})
	var e api.LeadershipResponse
	s.must(200, "POST", base+"/elections/boss/campaign", cred, map[string]any{"candidate": "c", "ttl_ms": 30000}).json(t, &e)
	s.must(204, "POST", base+"/elections/boss/resign", cred, map[string]any{"token": e.Token})
	return defectNumbers{kv.Revision, l.FencingToken, e.Term}
}

// defectObserveIndex opens the observe stream of an election and returns the
// index of its first message: the tenant's revision when it began.
func defectObserveIndex(t *testing.T, s *testServer, cred, tenant string) uint64 {
	t.Helper()
	ls := defectDial(t, s.URL, "/api/v1/tenants/"+tenant+"/elections/boss/observe", cred)
	defer ls.conn.CloseNow()
	m := ls.next(t)
	var ev api.ElectionEventMessage
	if err := json.Unmarshal(m.Data, &ev); err != nil || m.Type != "leader" {
		t.Fatalf("first observe message %s %s: %v", m.Type, m.Data, err)
	}
	return ev.Index
}

// TestDefect_LockServiceNumbersArePerTenant: KV revisions, fencing tokens,
// election terms and stream indexes count one tenant's own changes, so
// tenant B cannot learn how much tenant A writes: B's numbers move by the
// same steps whether or not A wrote meanwhile.
func TestDefect_LockServiceNumbersArePerTenant(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	a := s.signup("owner@acme.test", "acme")
	b := s.signup("owner@globex.test", "globex")

	b1 := defectRoundOfWrites(t, s, b, "globex")
	b2 := defectRoundOfWrites(t, s, b, "globex") // nothing else happened between b1 and b2
	before := defectObserveIndex(t, s, b, "globex")

	// Tenant A writes a lot.
	for range 15 {
		defectRoundOfWrites(t, s, a, "acme")
	}
	if after := defectObserveIndex(t, s, b, "globex"); after != before {
		t.Errorf("globex's stream index moved from %d to %d while only acme wrote", before, after)
	}
	b3 := defectRoundOfWrites(t, s, b, "globex")
	if b3.revision-b2.revision != b2.revision-b1.revision || b3.fencing-b2.fencing != b2.fencing-b1.fencing || b3.term-b2.term != b2.term-b1.term {
		t.Errorf("globex's numbers: %+v, %+v, then %+v after acme's writes: the steps differ, so they count acme's writes", b1, b2, b3)
	}
	// The numbers of one object still strictly increase.
	if !(b1.revision < b2.revision && b2.revision < b3.revision && b1.fencing < b2.fencing && b2.fencing < b3.fencing && b1.term < b2.term && b2.term < b3.term) {
		t.Errorf("globex's numbers do not increase: %+v %+v %+v", b1, b2, b3)
	}
}

// defectIdempotencyRows returns the idempotency table's rows (as text) that hold
// needle anywhere, key or stored answer.
func defectIdempotencyRows(t *testing.T, s *testServer, needle string) []string {
	t.Helper()
	rows, err := s.DB.Pool.Query(t.Context(), `SELECT x::text FROM idempotency_keys x
		WHERE strpos(x::text, $1) > 0 OR strpos(x::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0`, needle)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDefect_IdempotencyKeysOnlyOnCreatingPosts: Idempotency-Key is honoured
// on creating POSTs only. A request a follower forwards is served by
// the leader like any other, and never stored either; lock and leadership tokens and
// API token secrets are never stored in the idempotency table, and a retry
// never replays them.
func TestDefect_IdempotencyKeysOnlyOnCreatingPosts(t *testing.T) {
	t.Parallel()
	ls := newTestServer(t, withOperators("owner@acme.test"))
	owner := ls.signup("owner@acme.test", "acme")

	t.Run("creating POSTs keep their answer", func(t *testing.T) {
		s := ls.bind(t)
		first := s.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"}, "Idempotency-Key", "team-core")
		if rows := defectIdempotencyRows(t, s, "team-core"); len(rows) != 1 {
			t.Fatalf("the key of a creating POST is stored in %d rows", len(rows))
		}
		again := s.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"}, "Idempotency-Key", "team-core")
		if again.Header.Get("Idempotency-Replayed") != "true" || string(again.Body) != string(first.Body) {
			t.Fatalf("the retry was not replayed: %s %s", again.Header.Get("Idempotency-Replayed"), again.Body)
		}
	})

	t.Run("other requests ignore the key", func(t *testing.T) {
		s := ls.bind(t)
		var l api.LockResponse
		s.must(200, "POST", "/api/v1/tenants/acme/locks/other", owner, map[string]any{"owner": "w", "ttl_ms": 60000}).json(t, &l)
		s.must(201, "PUT", "/api/v1/tenants/acme/subscriptions/sub", owner, map[string]any{})
		for i, c := range []struct {
			want         int
			method, path string
			body         any
		}{
			{200, "PUT", "/api/v1/tenants/acme/kv/k", map[string]any{"value": 1}},
			{200, "PUT", "/api/v1/tenants/acme/locks/other", map[string]any{"token": l.Token, "ttl_ms": 60000}},
			{200, "POST", "/api/v1/tenants/acme/locks/other/verify", map[string]any{"fencing_token": l.FencingToken}},
			{200, "POST", "/api/v1/tenants/acme/subscriptions/sub/ack", map[string]any{"position": 0}},
			{200, "PATCH", "/api/v1/tenants/acme/teams/core", map[string]any{"name": "Core 2"}},
			{204, "DELETE", "/api/v1/tenants/acme/kv/k", nil},
		} {
			key := "other-" + string(rune('a'+i))
			s.must(c.want, c.method, c.path, owner, c.body, "Idempotency-Key", key)
			if rows := defectIdempotencyRows(t, s, key); len(rows) > 0 {
				t.Errorf("%s %s is not a creating POST, yet its key is stored: %v", c.method, c.path, rows)
			}
		}
	})

	t.Run("lock and leadership tokens", func(t *testing.T) {
		s := ls.bind(t)
		for _, c := range []struct {
			path string
			body map[string]any
		}{
			{"/api/v1/tenants/acme/locks/idem", map[string]any{"owner": "w", "ttl_ms": 60000}},
			{"/api/v1/tenants/acme/elections/idem/campaign", map[string]any{"candidate": "c", "ttl_ms": 60000}},
		} {
			first := s.must(200, "POST", c.path, owner, c.body, "Idempotency-Key", "key:"+c.path)
			var got struct{ Token string }
			first.json(t, &got)
			if got.Token == "" {
				t.Fatalf("POST %s answered no token: %s", c.path, first.Body)
			}
			if rows := defectIdempotencyRows(t, s, got.Token); len(rows) > 0 {
				t.Errorf("POST %s: its token is stored in the idempotency table: %v", c.path, rows)
			}
			if rows := defectIdempotencyRows(t, s, "key:"+c.path); len(rows) > 0 {
				t.Errorf("POST %s is not a creating POST, yet its key is stored: %v", c.path, rows)
			}
			again := s.do("POST", c.path, owner, c.body, "Idempotency-Key", "key:"+c.path)
			if again.Header.Get("Idempotency-Replayed") != "" || strings.Contains(string(again.Body), got.Token) {
				t.Errorf("a retry of POST %s replayed the token: %d %s", c.path, again.Status, again.Body)
			}
		}
	})

	t.Run("API token secrets", func(t *testing.T) {
		s := ls.bind(t)
		var tok api.CreateTokenResponse
		s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "ci", "role": "viewer"}, "Idempotency-Key", "token-1").json(t, &tok)
		secret := tok.Token[len("sb_")+32+1:] // sb_<32 hex id>_<secret>
		if rows := defectIdempotencyRows(t, s, secret); len(rows) > 0 {
			t.Errorf("the token's secret is stored in the idempotency table: %v", rows)
		}
		again := s.do("POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": "ci", "role": "viewer"}, "Idempotency-Key", "token-1")
		if again.Status == 201 || strings.Contains(string(again.Body), secret) {
			t.Errorf("a retry created a token or replayed the secret: %d %s", again.Status, again.Body)
		}
		var toks api.List[map[string]any]
		s.must(200, "GET", "/api/v1/tenants/acme/tokens", owner, nil).json(t, &toks)
		if len(toks.Items) != 1 {
			t.Errorf("a retry with the same key made another token: %d tokens", len(toks.Items))
		}
	})

	t.Run("a follower's forward", func(t *testing.T) {
		fs := newTestServer(t, replicaOf(ls), func(c *app.Config) { c.NodeID, c.RaftJoin = "n2", true },
			withPeerURLs(map[string]string{"n1": ls.URL}))
		ls.bind(t).must(200, "POST", "/api/v1/cluster/voters", owner, map[string]string{"id": "n2", "addr": fs.App.Locks.Status().Addr})
		for deadline := time.Now().Add(10 * time.Second); fs.App.Locks.Status().LeaderAddr == ""; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) { // a bound on a hang
				t.Fatal("the follower never learned the leader")
			}
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/tenants/acme/locks/forwarded", map[string]any{"owner": "w", "ttl_ms": 60000}},
			{"POST", "/api/v1/tenants/acme/elections/forwarded/campaign", map[string]any{"candidate": "c", "ttl_ms": 60000}},
			{"PUT", "/api/v1/tenants/acme/kv/forwarded", map[string]any{"value": 1}},
		} {
			// Served by the leader, through the follower, twice: neither
			// answer is a replay and the key is stored nowhere.
			first := fs.bind(t).do(c.method, c.path, owner, c.body, "Idempotency-Key", "forward:"+c.path)
			again := fs.bind(t).do(c.method, c.path, owner, c.body, "Idempotency-Key", "forward:"+c.path)
			if first.Status != 200 || again.Header.Get("Idempotency-Replayed") != "" || (again.Status == 200 && string(again.Body) == string(first.Body)) {
				t.Errorf("%s %s through the follower: %d then %d (replayed %q) %s", c.method, c.path, first.Status, again.Status,
					again.Header.Get("Idempotency-Replayed"), again.Body)
			}
			if rows := defectIdempotencyRows(t, ls, "forward:"+c.path); len(rows) > 0 {
				t.Errorf("a forwarded %s is stored: %v", c.path, rows)
			}
		}
	})
}

// TestDefect_NoOtherCounterIsSharedAcrossTenants: the same side channel as
// the lock service's numbers, through the other numbers a tenant is shown:
// event log positions and audit entry ids move only with the tenant's own
// writes.
func TestDefect_NoOtherCounterIsSharedAcrossTenants(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	a := s.signup("owner@acme.test", "acme")
	b := s.signup("owner@globex.test", "globex")
	appendOne := func(cred, tenant string) int64 {
		t.Helper()
		var res api.AppendResponse
		s.must(201, "POST", "/api/v1/tenants/"+tenant+"/streams/orders-1/events?await=position", cred, map[string]any{"events": []map[string]any{{"type": "t", "data": 1}}}).json(t, &res)
		if res.Position == 0 {
			t.Fatalf("append answered no position: %+v", res)
		}
		return res.Position
	}
	// An audit entry's id names it and counts nothing: a random uuid.
	lastAudit := func(cred, tenant, slug string) uuid.UUID {
		t.Helper()
		s.must(201, "POST", "/api/v1/tenants/"+tenant+"/teams", cred, map[string]string{"slug": slug, "name": "T"})
		var entries api.List[struct {
			ID uuid.UUID `json:"id"`
		}]
		s.must(200, "GET", "/api/v1/tenants/"+tenant+"/audit?limit=1", cred, nil).json(t, &entries)
		if len(entries.Items) != 1 {
			t.Fatalf("the audit log of %s is empty", tenant)
		}
		if entries.Items[0].ID.Version() != 4 {
			t.Fatalf("audit entry id %s is not a random id", entries.Items[0].ID)
		}
		return entries.Items[0].ID
	}
	p1, _ := appendOne(b, "globex"), lastAudit(b, "globex", "t1")
	p2, _ := appendOne(b, "globex"), lastAudit(b, "globex", "t2")
	for i := range 10 {
		appendOne(a, "acme")
		lastAudit(a, "acme", "a"+string(rune('0'+i)))
	}
	p3 := appendOne(b, "globex")
	if p3-p2 != p2-p1 {
		t.Errorf("globex's log positions %d, %d, then %d after acme's appends: they count acme's events", p1, p2, p3)
	}
}
