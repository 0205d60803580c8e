package ui_test

import (
	"net/http"
	"net/url"
	"testing"

	"switchboard/internal/connectors/rabbitmq/rabbittest"
)

// The queue page offers "Set up dead-lettering" to who may change the
// queue; doing it declares the queues on the broker, says what it did, and
// the page then links the dead-letter queue's captured messages. A bad
// delay or a broker that refuses comes back as the page's message.
func TestQueuePage_SetsUpDeadLettering(t *testing.T) {
	e := newDLQEnv(t)
	q := e.work + "-fresh"
	rabbittest.DeleteDeadLettering(t, q)
	api(t, e.srv, e.owner, http.MethodPost, "/api/v1/tenants/acme/queues", map[string]any{"name": q, "broker": "rabbit", "owner_team": "payments"}, http.StatusCreated)
	page := "/t/acme/catalog/queue/" + q
	wantIn(t, "the queue's page", e.ada.get(page, http.StatusOK).html, `data-testid="dead-lettering-form"`, q+".dlx", "Set up dead-lettering")

	p := e.ada.post(page+"/dead-lettering", url.Values{"retry_delay_s": {"0"}, "_csrf": {e.ada.csrf(page)}})
	wantIn(t, "a bad delay", p.html, "The retry delay is a whole number of seconds")

	p = e.ada.post(page+"/dead-lettering", url.Values{"retry_delay_s": {"5"}, "_csrf": {e.ada.csrf(page)}})
	if p.location != page {
		t.Fatalf("the set-up went to %q, want back to %s", p.location, page)
	}
	wantIn(t, "after the set-up", p.html, "Dead letters of "+q+" now go to "+q+".dlq through "+q+".dlx", "gives messages back after 5s",
		"Declared: exchange "+q+".dlx", `data-testid="entity-dead-lettering"`, `href="/t/acme/dlq/queue:`+q+`.dlq"`)
	wantNotIn(t, "after the set-up", p.html, `data-testid="dead-lettering-form"`)
	if _, err := e.ch.QueueDeclarePassive(q+".retry", true, false, false, false, nil); err != nil {
		t.Fatalf("the retry queue is not on the broker: %v", err)
	}
	// The DLQ page exists: capture follows the catalog.
	e.ada.get("/t/acme/dlq/queue:"+q+".dlq", http.StatusOK)

	// Outside the default namespace: refused (a queue's dead_letter_queue
	// names a queue of the default namespace).
	api(t, e.srv, e.owner, http.MethodPost, "/api/v1/tenants/acme/queues", map[string]any{"name": "elsewhere", "namespace": "team-b", "broker": "rabbit", "owner_team": "payments"}, http.StatusCreated)
	p = e.ada.post("/t/acme/catalog/queue/elsewhere/dead-lettering?ns=team-b", url.Values{"retry_delay_s": {"30"}, "_csrf": {e.ada.csrf(page)}})
	wantIn(t, "a queue outside the default namespace", p.html, "Dead-lettering was not set up", `namespace "team-b"`)

	// A queue the broker already holds (the environment's DLQ), on a broker
	// without a management URL: the page says what is needed.
	p = e.ada.post("/t/acme/catalog/queue/"+e.dead+"/dead-lettering", url.Values{"retry_delay_s": {"30"}, "_csrf": {e.ada.csrf(page)}})
	wantIn(t, "an existing queue without a management URL", p.html, "Dead-lettering was not set up", "management_url")
}
