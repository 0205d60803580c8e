package api_test

import (
	"fmt"
	"testing"
	"time"

	"switchboard/internal/api"
	"switchboard/internal/eventstore"
)

// awaitLog waits until the tenant's log holds n positioned events.
func awaitLog(s *testServer, tok, tenant string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page api.List[eventstore.Event]
		s.must(200, "GET", "/api/v1/tenants/"+tenant+"/events?limit=200", tok, nil).json(s.t, &page)
		if len(page.Items) >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("log holds %d events, want %d", len(page.Items), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubscriptions_CheckpointAcrossFetches(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	base := "/api/v1/tenants/acme/subscriptions"
	s.must(201, "POST", "/api/v1/tenants/acme/streams/order-1/events", tok, map[string]any{"events": events("A", "B", "C")})
	s.must(201, "POST", "/api/v1/tenants/acme/streams/invoice-1/events", tok, map[string]any{"events": events("I")})
	awaitLog(s, tok, "acme", 4)

	var sub eventstore.NamedSubscription
	s.must(201, "PUT", base+"/orders", tok, map[string]any{"category": "order", "from_position": 0}).json(t, &sub)
	if sub.Name != "orders" || sub.Category != "order" || sub.Checkpoint != 0 {
		t.Fatalf("created %+v", sub)
	}
	s.must(200, "PUT", base+"/orders", tok, map[string]any{"category": "order", "from_position": 0})
	wantProblem(t, s.do("PUT", base+"/orders", tok, map[string]any{"category": "invoice"}), 409, "conflict")

	var b eventstore.Batch
	s.must(200, "GET", base+"/orders/events?limit=2", tok, nil).json(t, &b)
	if len(b.Events) != 2 || b.Events[0].Type != "A" || b.Through != b.Events[1].Position {
		t.Fatalf("first batch %+v", b)
	}
	var ack eventstore.AckResult
	s.must(200, "POST", base+"/orders/ack", tok, map[string]any{"position": b.Through}).json(t, &ack)
	if ack.Checkpoint != b.Through {
		t.Fatalf("ack %+v, want checkpoint %d", ack, b.Through)
	}
	// Backwards is a no-op; beyond the end is invalid.
	s.must(200, "POST", base+"/orders/ack", tok, map[string]any{"position": 1}).json(t, &ack)
	if ack.Checkpoint != b.Through {
		t.Fatalf("ack backwards moved the checkpoint: %+v", ack)
	}
	wantProblem(t, s.do("POST", base+"/orders/ack", tok, map[string]any{"position": 99}), 400, "invalid")

	s.must(200, "GET", base+"/orders/events", tok, nil).json(t, &b)
	if len(b.Events) != 1 || b.Events[0].Type != "C" {
		t.Fatalf("after the ack %+v", b)
	}
	s.must(200, "GET", base+"/orders", tok, nil).json(t, &sub)
	if sub.Checkpoint != ack.Checkpoint {
		t.Fatalf("get %+v", sub)
	}
	var list api.List[eventstore.NamedSubscription]
	s.must(200, "GET", base, tok, nil).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "orders" {
		t.Fatalf("list %+v", list)
	}
	s.must(204, "DELETE", base+"/orders", tok, nil)
	wantProblem(t, s.do("GET", base+"/orders", tok, nil), 404, "not_found")
	wantProblem(t, s.do("GET", base+"/orders/events", tok, nil), 404, "not_found")
	wantProblem(t, s.do("DELETE", base+"/orders", tok, nil), 404, "not_found")

	// Another tenant does not see acme's subscriptions.
	s.must(201, "PUT", base+"/mine", tok, map[string]any{})
	other := s.signup("bob@example.com", "globex")
	wantProblem(t, s.do("GET", "/api/v1/tenants/globex/subscriptions/mine", other, nil), 404, "not_found")
	wantProblem(t, s.do("GET", base+"/mine", other, nil), 404, "not_found")
}

func TestSubscriptions_ConsumerGroupOverAPI(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	base := "/api/v1/tenants/acme/subscriptions/workers"
	for i := range 12 {
		s.must(201, "POST", fmt.Sprintf("/api/v1/tenants/acme/streams/job-%d/events", i), tok, map[string]any{"events": events("Queued", "Done")})
	}
	awaitLog(s, tok, "acme", 24)
	s.must(201, "PUT", base, tok, map[string]any{"category": "job"})
	// Both join before either reads, so the split holds still.
	for _, m := range []string{"w1", "w2"} {
		s.must(200, "GET", base+"/events?limit=1&member="+m, tok, nil)
	}
	owner := map[string]string{}
	total := 0
	for _, m := range []string{"w1", "w2"} {
		for {
			var b eventstore.Batch
			s.must(200, "GET", base+"/events?limit=5&member="+m, tok, nil).json(t, &b)
			if len(b.Members) != 2 || b.Member != m {
				t.Fatalf("batch of %s: %+v", m, b)
			}
			for _, e := range b.Events {
				if o, ok := owner[e.Stream]; ok && o != m {
					t.Fatalf("stream %s went to %s and %s", e.Stream, o, m)
				}
				owner[e.Stream] = m
				total++
			}
			// An ack without the generation is refused; with a stale one too.
			wantProblem(t, s.do("POST", base+"/ack", tok, map[string]any{"position": b.Through, "member": m}), 400, "invalid")
			wantProblem(t, s.do("POST", base+"/ack", tok, map[string]any{"position": b.Through, "member": m, "generation": b.Generation - 1}), 409, "conflict")
			s.must(200, "POST", base+"/ack", tok, map[string]any{"position": b.Through, "member": m, "generation": b.Generation})
			if len(b.Events) == 0 {
				break
			}
		}
	}
	if total != 24 || len(owner) != 12 {
		t.Fatalf("delivered %d events of %d streams, want 24 of 12", total, len(owner))
	}
	// Once a group, never a single consumer.
	wantProblem(t, s.do("GET", base+"/events", tok, nil), 409, "conflict")
	var sub eventstore.NamedSubscription
	s.must(200, "GET", base, tok, nil).json(t, &sub)
	if len(sub.Members) != 2 || sub.Checkpoint != 24 {
		t.Fatalf("group %+v", sub)
	}
}

func TestSubscriptions_BadInput(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	viewer := s.member(tok, "acme", "viewer@example.com", "viewer")
	base := "/api/v1/tenants/acme/subscriptions"
	s.must(201, "PUT", base+"/ok", tok, map[string]any{})
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"reserved name", "PUT", base + "/live", map[string]any{}, 400, "invalid"},
		{"unknown field", "PUT", base + "/x", map[string]any{"categoryy": "a"}, 400, "invalid"},
		{"not JSON", "PUT", base + "/x", "{", 400, "invalid"},
		{"empty body", "PUT", base + "/x", "", 400, "invalid"},
		{"negative from", "PUT", base + "/x", map[string]any{"from_position": -1}, 400, "invalid"},
		{"string from", "PUT", base + "/x", map[string]any{"from_position": "1"}, 400, "invalid"},
		{"bad category", "PUT", base + "/x", map[string]any{"category": "a\u0001"}, 400, "invalid"},
		{"tiny ttl", "PUT", base + "/x", map[string]any{"member_ttl_ms": 1}, 400, "invalid"},
		{"negative ttl", "PUT", base + "/x", map[string]any{"member_ttl_ms": -5}, 400, "invalid"},
		{"huge ttl", "PUT", base + "/x", map[string]any{"member_ttl_ms": int64(1) << 60}, 400, "invalid"},
		{"control name", "PUT", base + "/a%01b", map[string]any{}, 400, "invalid"},
		{"zero limit", "GET", base + "/ok/events?limit=0", nil, 400, "invalid"},
		{"text limit", "GET", base + "/ok/events?limit=x", nil, 400, "invalid"},
		{"bad member", "GET", base + "/ok/events?member=a%00b", nil, 400, "invalid"},
		{"missing sub", "GET", base + "/nope/events", nil, 404, "not_found"},
		{"no position", "POST", base + "/ok/ack", map[string]any{}, 400, "invalid"},
		{"negative position", "POST", base + "/ok/ack", map[string]any{"position": -1}, 400, "invalid"},
		{"beyond the end", "POST", base + "/ok/ack", map[string]any{"position": 5}, 400, "invalid"},
		{"fractional position", "POST", base + "/ok/ack", map[string]any{"position": 1.5}, 400, "invalid"},
		{"unknown member", "POST", base + "/ok/ack", map[string]any{"position": 0, "member": "ghost", "generation": 0}, 404, "not_found"},
		{"ack missing sub", "POST", base + "/nope/ack", map[string]any{"position": 0}, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := s.bind(t)
			wantProblem(t, s.do(tc.method, tc.path, tok, tc.body), tc.status, tc.code)
		})
	}
	// A viewer may read but not join a group or acknowledge.
	s.must(200, "GET", base+"/ok/events", viewer, nil)
	wantProblem(t, s.do("GET", base+"/ok/events?member=v", viewer, nil), 403, "forbidden")
	wantProblem(t, s.do("POST", base+"/ok/ack", viewer, map[string]any{"position": 0}), 403, "forbidden")
}

func TestSubscriptions_CreateAndDeleteAreAudited(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	s.must(201, "PUT", "/api/v1/tenants/acme/subscriptions/billing", tok, map[string]any{"category": "order", "from_position": 0})
	s.must(204, "DELETE", "/api/v1/tenants/acme/subscriptions/billing", tok, nil)
	s.must(404, "DELETE", "/api/v1/tenants/acme/subscriptions/billing", tok, nil)
	var log api.List[map[string]any]
	s.must(200, "GET", "/api/v1/tenants/acme/audit?limit=2", tok, nil).json(t, &log)
	if len(log.Items) != 2 || log.Items[0]["action"] != "subscription.deleted" || log.Items[1]["action"] != "subscription.created" ||
		log.Items[0]["before"] == nil || log.Items[1]["after"] == nil {
		t.Fatalf("audit %v", log.Items)
	}
}
