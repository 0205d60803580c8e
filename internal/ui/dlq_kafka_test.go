package ui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchboard/internal/app/apptest"
)

// A Kafka DLQ topic's page reads the topic in place, a partition and an
// offset at a time, without consuming it; its settings take the topic's
// conventions (a retry topic without {group} is refused on the page); the
// replay form offers one consumer group.
func TestDLQPages_KafkaTopicInPlaceSettingsAndGroupReplay(t *testing.T) {
	srv := apptest.Start(t)
	owner := signup(t, srv, "ada@example.com", "acme")
	base := "/api/v1/tenants/acme"
	api(t, srv, owner, http.MethodPost, base+"/teams", map[string]string{"slug": "payments", "name": "Payments"}, http.StatusCreated)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, 1, nil, "payments.DLT"); err != nil {
		t.Fatal(err)
	}
	api(t, srv, owner, http.MethodPost, base+"/brokers", map[string]any{"name": "events", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": kc.ListenAddrs()}, http.StatusCreated)
	api(t, srv, owner, http.MethodPost, base+"/topics", map[string]any{"name": "payments.DLT", "broker": "events", "owner_team": "payments", "partitions": 1}, http.StatusCreated)
	api(t, srv, owner, http.MethodPost, base+"/topics", map[string]any{"name": "payments", "broker": "events", "owner_team": "payments", "partitions": 1, "dead_letter_topic": "payments.DLT"}, http.StatusCreated)
	api(t, srv, owner, http.MethodPatch, base+"/dlq/topic:payments.DLT", map[string]any{"paused": true}, http.StatusOK)
	for i := range 5 {
		r := &kgo.Record{Topic: "payments.DLT", Key: fmt.Appendf(nil, "k-%d", i), Value: fmt.Appendf(nil, `{"n":%d}`, i),
			Headers: []kgo.RecordHeader{{Key: "kafka_dlt-original-topic", Value: []byte("payments")}}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ada := newBrowser(t, srv, "ada@example.com")
	page := "/t/acme/dlq/topic:payments.DLT"
	p := ada.get(page, http.StatusOK)
	wantIn(t, "the Kafka DLQ's page", p.html, `data-testid="dlq-in-place"`, `name="consumer_group"`, `name="retry_topic"`, `name="original_topic_header"`)
	wantNotIn(t, "the page before reading", p.html, `data-testid="dlq-in-place-records"`)

	for range 2 { // reading takes nothing: twice the same
		p = ada.get(page+"?in_place=1&partition=0&offset=1", http.StatusOK)
		records := between(t, p.html, `data-testid="dlq-in-place-records"`, "</table>")
		wantIn(t, "records from offset 1", records, `data-offset="1"`, `data-offset="4"`, `{"n":1}`, "k-1", "payments")
		wantNotIn(t, "records from offset 1", records, `data-offset="0"`)
	}
	wantIn(t, "the last page", ada.get(page+"?in_place=1", http.StatusOK).html, `data-offset="0"`, `data-offset="4"`, "(offsets 0–5)")
	wantIn(t, "a bad offset", ada.get(page+"?in_place=1&offset=-2", http.StatusOK).html, `data-testid="dlq-in-place-error"`, "offset: must be a whole number")

	csrf := ada.csrf(page)
	p = ada.post(page+"/settings", url.Values{"_csrf": {csrf}, "retry_topic": {"{topic}.retry"}})
	wantIn(t, "a retry topic without {group}", p.html, "retry_topic", "{group}")
	p = ada.post(page+"/settings", url.Values{"_csrf": {csrf}, "paused": {"true"}, "retry_topic": {"{topic}.{group}.again"}, "original_topic_header": {"x-from"}})
	wantIn(t, "saved settings", p.html, "Settings saved.", `value="{topic}.{group}.again"`, `value="x-from"`)
}
