package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/api"
	"switchboard/internal/connectors/rabbitmq/rabbittest"
	"switchboard/internal/dlq"
	"switchboard/internal/tenancy"
)

// getOne waits (up to 15 s) for a message on queue and takes it.
func getOne(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing arrived on %s", queue)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Setting up dead-lettering for a queue the broker does not have yet:
// the queue, its dead-letter exchange and queue (quorum) and a retry queue
// are declared; the catalog names the dead-letter queue and registers both
// new queues, so a rejected message is captured into the DLQ store, and a
// message sent to the retry queue comes back after the delay. Doing it
// again changes nothing.
func TestDeadLettering_SetUpForANewQueue(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@example.com", "acme")
	t0 := "/api/v1/tenants/acme"
	s.must(201, "POST", t0+"/teams", owner, map[string]string{"slug": "payments", "name": "Payments"})
	s.must(201, "POST", t0+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://guest:guest@127.0.0.1:5672/"})
	q := rabbittest.Name("setup-new-")
	rabbittest.DeleteDeadLettering(t, q)
	ch := rabbittest.Channel(t)
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": q, "broker": "rabbit", "owner_team": "payments", "labels": map[string]string{"tier": "core"}})

	var out api.DeadLetteringResponse
	s.must(200, "POST", t0+"/queues/"+q+"/dead-lettering", owner, map[string]any{"retry_delay_ms": 1000}).json(t, &out)
	if out.QueueType != "quorum" || out.Exchange != q+".dlx" || out.DeadLetterQueue != q+".dlq" || out.RetryQueue != q+".retry" || out.Policy != "" ||
		len(out.Created) != 4 || len(out.Registered) != 2 || out.Entity.DeadLetterQueue != q+".dlq" || out.Entity.DeadLetterExchange != q+".dlx" {
		t.Fatalf("set-up answered %+v", out)
	}
	var dlqEntity api.EntityBody
	s.must(200, "GET", t0+"/queues/"+q+".dlq", owner, nil).json(t, &dlqEntity)
	if dlqEntity.OwnerTeam != "payments" || dlqEntity.Broker != "rabbit" || dlqEntity.Labels["tier"] != "core" {
		t.Errorf("the registered dead-letter queue %+v", dlqEntity)
	}

	// A rejected message dead-letters into the DLQ, which is captured.
	if err := ch.Publish("", q, true, false, amqp.Publishing{MessageId: "m-1", Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if err := getOne(t, ch, q).Reject(false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page api.List[dlq.Message]
		s.must(200, "GET", t0+"/dlq/queue:"+q+".dlq/messages", owner, nil).json(t, &page)
		if len(page.Items) == 1 && page.Items[0].MessageID == "m-1" && page.Items[0].Original.Queue == q {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rejected message was not captured: %+v", page.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The retry queue holds a message for its delay, then gives it back.
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", q+".retry", true, false, amqp.Publishing{MessageId: "m-2", Body: []byte("again")})
	if err != nil || !dc.Wait() {
		t.Fatalf("publish to the retry queue: %v", err)
	}
	if held, err := ch.QueueDeclarePassive(q+".retry", true, false, false, false, nil); err != nil || held.Messages != 1 {
		t.Fatalf("the retry queue holds %d messages (%v), want the one sent", held.Messages, err)
	}
	back := getOne(t, ch, q)
	if back.MessageId != "m-2" {
		t.Fatalf("from the retry queue: %q", back.MessageId)
	}
	_ = back.Ack(false)

	// Again: everything is there as it should be.
	var again api.DeadLetteringResponse
	s.must(200, "POST", t0+"/queues/"+q+"/dead-lettering", owner, nil).json(t, &again)
	if len(again.Created) != 0 || len(again.Registered) != 0 || again.Policy != "" {
		t.Fatalf("the second set-up answered %+v", again)
	}
}

// An existing queue without dead-letter arguments is dead-lettered by a
// policy written through the management API; without a management URL,
// the answer says what is needed.
func TestDeadLettering_AnExistingQueueGetsAPolicy(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@example.com", "acme")
	t0 := "/api/v1/tenants/acme"
	s.must(201, "POST", t0+"/teams", owner, map[string]string{"slug": "payments", "name": "Payments"})
	s.must(201, "POST", t0+"/brokers", owner, map[string]any{"name": "plain", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://guest:guest@127.0.0.1:5672/"})
	s.must(201, "POST", t0+"/brokers", owner, map[string]any{"name": "managed", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://guest:guest@127.0.0.1:5672/",
		"management_url": "http://127.0.0.1:15672"})
	q := rabbittest.Name("setup-old-")
	rabbittest.DeleteDeadLettering(t, q)
	ch := rabbittest.Channel(t)
	t.Cleanup(func() { deletePolicy(t, "switchboard-dead-letter-"+q) })
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": q, "broker": "plain", "owner_team": "payments"})
	r := s.do("POST", t0+"/queues/"+q+"/dead-lettering", owner, nil)
	wantProblem(t, r, 409, "conflict")
	s.must(200, "PATCH", t0+"/queues/"+q, owner, map[string]any{"broker": "managed"})

	var out api.DeadLetteringResponse
	s.must(200, "POST", t0+"/queues/"+q+"/dead-lettering", owner, nil).json(t, &out)
	if out.Policy != "switchboard-dead-letter-"+q || out.RetryDelayMs != 30000 {
		t.Fatalf("set-up answered %+v", out)
	}
	// A queue another policy governs: RabbitMQ would apply only one of
	// them, so the answer names the other.
	governed := rabbittest.Name("setup-governed-")
	rabbittest.DeleteDeadLettering(t, governed)
	if _, err := ch.QueueDeclare(governed, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	putPolicy(t, "other-"+governed, "^"+governed+"$")
	t.Cleanup(func() { deletePolicy(t, "other-"+governed) })
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": governed, "broker": "managed", "owner_team": "payments"})
	deadline := time.Now().Add(10 * time.Second)
	for queuePolicy(t, governed) != "other-"+governed { // the broker applies a new policy within moments
		if time.Now().After(deadline) {
			t.Fatal("the broker never applied the other policy")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r = s.do("POST", t0+"/queues/"+governed+"/dead-lettering", owner, nil)
	if p := wantProblem(t, r, 409, "conflict"); !strings.Contains(p.Detail, "other-"+governed) {
		t.Fatalf("a queue governed by another policy: %s", p.Detail)
	}

	// The policy applies within moments: a rejected message dead-letters.
	deadline = time.Now().Add(20 * time.Second)
	for n := 0; ; n++ {
		if err := ch.Publish("", q, true, false, amqp.Publishing{MessageId: "old-1", Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if err := getOne(t, ch, q).Reject(false); err != nil {
			t.Fatal(err)
		}
		var page api.List[dlq.Message]
		time.Sleep(300 * time.Millisecond)
		s.must(200, "GET", t0+"/dlq/queue:"+q+".dlq/messages", owner, nil).json(t, &page)
		if len(page.Items) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a rejected message never reached the dead-letter queue through the policy")
		}
	}
}

// Bad input: a clear 4xx each; a broker that does not answer, a 502 naming
// it; another tenant's queue, 404; one who may not change the queue, 403.
func TestDeadLettering_BadInput(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@example.com", "acme")
	stranger := s.signup("eve@example.com", "globex")
	t0 := "/api/v1/tenants/acme"
	viewer := s.member(owner, "acme", "viewer@example.com", tenancy.Viewer)
	s.must(201, "POST", t0+"/brokers", owner, map[string]any{"name": "gone", "kind": "rabbitmq", "url": "amqp://guest:guest@127.0.0.1:1/"})
	s.must(201, "POST", t0+"/queues", owner, map[string]any{"name": "orders", "broker": "gone"})
	path := t0 + "/queues/orders/dead-lettering"
	wantProblem(t, s.do("POST", path, owner, map[string]any{"retry_delay_ms": 5}), 400, "invalid")
	wantProblem(t, s.do("POST", path, owner, map[string]any{"retry_delay_ms": 90_000_000}), 400, "invalid")
	wantProblem(t, s.do("POST", path, owner, map[string]any{"nonsense": true}), 400, "invalid")
	wantProblem(t, s.do("POST", t0+"/queues/nowhere/dead-lettering", owner, nil), 404, "not_found")
	wantProblem(t, s.do("POST", path, stranger, nil), 404, "not_found")
	wantProblem(t, s.do("POST", path, viewer, nil), 403, "forbidden")
	p := wantProblem(t, s.do("POST", path, owner, nil), 502, "bad_gateway")
	if !strings.Contains(p.Detail, `"gone"`) {
		t.Errorf("the 502 says %q, not naming the broker", p.Detail)
	}
}

// deletePolicy removes a policy through the management API.
func deletePolicy(t *testing.T, name string) {
	req, _ := http.NewRequest(http.MethodDelete, "http://127.0.0.1:15672/api/policies/%2F/"+name, nil)
	req.SetBasicAuth("guest", "guest")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
	}
}

// putPolicy writes a max-length policy through the management API.
func putPolicy(t *testing.T, name, pattern string) {
	t.Helper()
	body := strings.NewReader(`{"pattern":"` + pattern + `","apply-to":"queues","priority":0,"definition":{"max-length":100000}}`)
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:15672/api/policies/%2F/"+name, body)
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("put policy %s: %d", name, res.StatusCode)
	}
}

// queuePolicy is the policy the broker applies to queue ("": none).
func queuePolicy(t *testing.T, queue string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:15672/api/queues/%2F/"+queue, nil)
	req.SetBasicAuth("guest", "guest")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var q struct {
		Policy string `json:"policy"`
	}
	_ = json.NewDecoder(res.Body).Decode(&q)
	return q.Policy
}
