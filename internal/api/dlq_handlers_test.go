package api_test

import (
	"fmt"
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/catalog"
	"switchboard/internal/dlq"
	"switchboard/internal/tenancy"
)

// Browsing, reading payloads and replaying are decided on the DLQ's owning
// team: a viewer and an operator of another team see the DLQ's redaction
// applied and may not replay; an operator of the owning team reads it all
// and replays; another tenant's DLQ is not found.
func TestDLQ_PayloadsAndReplaysBelongToTheOwningTeam(t *testing.T) {
	s := newTestServer(t)
	owner := s.signup("owner@example.com", "acme")
	other := s.signup("eve@example.com", "globex")
	t0 := "/api/v1/tenants/acme"
	s.must(201, "POST", t0+"/teams", owner, map[string]string{"slug": "payments", "name": "Payments"})
	s.must(201, "POST", t0+"/teams", owner, map[string]string{"slug": "search", "name": "Search"})
	viewer := s.member(owner, "acme", "viewer@example.com", tenancy.Viewer)
	ours := s.member(owner, "acme", "ops@example.com", tenancy.Operator)
	theirs := s.member(owner, "acme", "ops2@example.com", tenancy.Operator)
	s.must(200, "POST", t0+"/teams/payments/members", owner, map[string]string{"email": "ops@example.com"})
	s.must(200, "POST", t0+"/teams/search/members", owner, map[string]string{"email": "ops2@example.com"})
	s.must(201, "POST", t0+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://127.0.0.1:5672/"})
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": "pay.dlq", "broker": "rabbit", "owner_team": "payments"})
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": "pay", "broker": "rabbit", "owner_team": "payments", "dead_letter_queue": "pay.dlq"})
	d := t0 + "/dlq/queue:pay.dlq"
	s.must(200, "PATCH", d, owner, map[string]any{"redaction": map[string]any{"headers": []string{"authorization"}, "json_paths": []string{"$.card"}}})
	var id int64
	if err := s.DB.Pool.QueryRow(t.Context(), `INSERT INTO dlq_messages (tenant_id, dlq, fingerprint, headers, body, body_size, original_queue, reason)
		SELECT id, 'queue:pay.dlq', 'f1', '{"authorization": {"type": "string", "value": "Bearer s3cret"}}', '{"card":"4111","order":7}', 25, 'pay', 'rejected'
		FROM tenants WHERE slug = 'acme' RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("%s/messages/%d", d, id)
	for who, tok := range map[string]string{"viewer": viewer, "an operator of another team": theirs} {
		var m dlq.Message
		s.must(200, "GET", msg, tok, nil).json(t, &m)
		if m.Body != `{"card":"[redacted]","order":7}` || m.Headers["authorization"].Type != "redacted" {
			t.Errorf("%s sees body %s, headers %+v", who, m.Body, m.Headers)
		}
		var page api.List[dlq.Message]
		s.must(200, "GET", d+"/messages", tok, nil).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].Body != `{"card":"[redacted]","order":7}` {
			t.Errorf("%s lists %+v", who, page.Items)
		}
		wantProblem(t, s.do("POST", d+"/replays", tok, map[string]any{"message_ids": []int64{id}}), 403, "forbidden")
		wantProblem(t, s.do("POST", d+"/discard", tok, map[string]any{"message_ids": []int64{id}, "confirm": true}), 403, "forbidden")
	}
	var m dlq.Message
	s.must(200, "GET", msg, ours, nil).json(t, &m)
	if m.Body != `{"card":"4111","order":7}` || m.Headers["authorization"].Type != "string" {
		t.Errorf("the owning team's operator sees body %s, headers %+v", m.Body, m.Headers)
	}
	s.must(200, "POST", d+"/replays", ours, map[string]any{"message_ids": []int64{id}, "dry_run": true})
	// Into a queue labelled env=prod takes an admin.
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": "pay-prod", "broker": "rabbit", "owner_team": "payments", "labels": map[string]string{"env": "prod"}})
	wantProblem(t, s.do("POST", d+"/replays", ours, map[string]any{"message_ids": []int64{id}, "dry_run": true, "target": map[string]string{"queue": "pay-prod"}}), 403, "forbidden")
	s.must(200, "POST", d+"/replays", owner, map[string]any{"message_ids": []int64{id}, "dry_run": true, "target": map[string]string{"queue": "pay-prod"}})
	// Another tenant: not found, whoever asks.
	wantProblem(t, s.do("GET", msg, other, nil), 404, "not_found")
	wantProblem(t, s.do("GET", "/api/v1/tenants/globex/dlq/queue:pay.dlq", other, nil), 404, "not_found")
}

// Bad input gets a clear 4xx each, never a 500.
func TestDLQ_BadInput(t *testing.T) {
	s := newTestServer(t)
	owner := s.signup("owner@example.com", "acme")
	t0 := "/api/v1/tenants/acme"
	s.must(201, "POST", t0+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "url": "amqp://127.0.0.1:5672/"})
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": "a.dlq", "broker": "rabbit"})
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": "a", "broker": "rabbit", "dead_letter_queue": "a.dlq"})
	d := t0 + "/dlq/queue:a.dlq"
	var id int64
	if err := s.DB.Pool.QueryRow(t.Context(), `INSERT INTO dlq_messages (tenant_id, dlq, fingerprint, body, body_size, original_queue)
		SELECT id, 'queue:a.dlq', 'f', 'x', 1, 'a' FROM tenants WHERE slug = 'acme' RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	// The topology counts the DLQ's dead letters on its node.
	var topo catalog.Topology
	s.must(200, "GET", t0+"/topology", owner, nil).json(t, &topo)
	for _, n := range topo.Nodes {
		switch {
		case n.ID == "queue:a.dlq" && (n.DeadLetters == nil || *n.DeadLetters != 1):
			t.Errorf("the DLQ node counts %v dead letters, want 1", n.DeadLetters)
		case n.ID == "queue:a" && n.DeadLetters != nil:
			t.Errorf("a queue that is not a DLQ counts %d dead letters", *n.DeadLetters)
		}
	}
	var jsonID int64 // a JSON message: an edit must keep it JSON
	if err := s.DB.Pool.QueryRow(t.Context(), `INSERT INTO dlq_messages (tenant_id, dlq, fingerprint, content_type, body, body_size, original_queue)
		SELECT id, 'queue:a.dlq', 'j', 'application/json', '{}', 2, 'a' FROM tenants WHERE slug = 'acme' RETURNING id`).Scan(&jsonID); err != nil {
		t.Fatal(err)
	}
	ids := []int64{id}
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", t0 + "/dlq/queue:nope", nil, 404},
		{"GET", t0 + "/dlq/bogus:a.dlq", nil, 404},
		{"GET", t0 + "/dlq/queue:", nil, 404},
		{"GET", t0 + "/dlq/queue:a", nil, 404}, // a queue, not a DLQ
		{"GET", t0 + "/dlq/queue:a%00", nil, 404},
		{"GET", d + "/messages/abc", nil, 404},
		{"GET", d + "/messages/0", nil, 404},
		{"GET", d + "/replays/not-a-uuid", nil, 404},
		{"GET", d + "/replays/00000000-0000-0000-0000-000000000001", nil, 404},
		{"GET", d + "/messages?status=lost", nil, 400},
		{"GET", d + "/messages?since=2026-13-01", nil, 400},
		{"GET", d + "/messages?header=novalue", nil, 400},
		{"GET", d + "/messages?cursor=made-up", nil, 400},
		{"GET", d + "/messages?text=%00", nil, 400},
		{"GET", d + "/messages?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z", nil, 400},
		{"POST", d + "/replays", map[string]any{}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": ids, "rate_per_second": 1_000_000}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": ids, "batch_size": -5}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": ids, "target": map[string]string{"topic": "t"}}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": ids, "target": map[string]string{"queue": "a.dlq"}}, 422},
		{"POST", d + "/replays", map[string]any{"message_ids": ids, "edit": map[string]any{"body": "!!", "body_encoding": "base64"}}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": []int64{jsonID}, "edit": map[string]any{"body": "{not json"}}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": []int64{jsonID}, "edit": map[string]any{"body": "{not json"}, "dry_run": true}, 400},
		{"POST", d + "/replays", map[string]any{"message_ids": []int64{999999}}, 422},
		{"POST", d + "/replays", map[string]any{"filter": map[string]any{"status": []string{"gone"}}}, 400},
		{"POST", d + "/replays", map[string]any{"group": map[string]string{"by": "colour", "key": "x"}}, 400},
		{"POST", d + "/replays", "not json", 400},
		{"POST", d + "/discard", map[string]any{"message_ids": ids}, 400},
		{"PATCH", d, map[string]any{"redaction": map[string]any{"json_paths": []string{"$..x"}}}, 400},
		{"PATCH", d, map[string]any{"paused": "yes"}, 400},
		{"PATCH", d, map[string]any{"kafka": map[string]any{"retry_topic": "{topic}.retry"}}, 400}, // a queue has no Kafka settings
		{"POST", d + "/replays", map[string]any{"message_ids": ids, "target": map[string]string{"consumer_group": "billing"}}, 400},
	} {
		r := s.do(c.method, c.path, owner, c.body)
		if r.Status != c.status {
			t.Errorf("%s %s %v: %d %s, want %d", c.method, c.path, c.body, r.Status, r.Body, c.status)
		}
	}
}
