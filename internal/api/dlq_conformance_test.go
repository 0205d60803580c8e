package api_test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/twmb/franz-go/pkg/kfake"

	"switchboard/internal/api"
	"switchboard/internal/connectors/rabbitmq/rabbittest"

	"switchboard/internal/dlq"
)

// deadLetter publishes msg to work and rejects it, so that the broker
// dead-letters it.
func deadLetter(t *testing.T, ch *amqp.Channel, work string, msg amqp.Publishing) {
	t.Helper()
	if err := ch.Publish("", work, true, false, msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, ok, err := ch.Get(work, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if err := d.Reject(false); err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the published message never reached the queue")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runDLQConformance drives every DLQ route: a real dead letter is captured
// off RabbitMQ, browsed, grouped, replayed (dry run, then for real,
// paused, resumed, cancelled) and discarded, with the live stream open.
func runDLQConformance(t *testing.T, c *conformance, ada, acme string) {
	t.Helper()
	work, dead, ch := rabbittest.DeadLettering(t, "api-", nil)
	c.expect(201, "POST", acme+"/teams", ada, map[string]string{"slug": "dlq-owners", "name": "DLQ owners"})
	c.expect(201, "POST", acme+"/brokers", ada, map[string]any{"name": "dlq-rabbit", "kind": "rabbitmq", "owner_team": "dlq-owners", "url": "amqp://guest:guest@127.0.0.1:5672/"})
	c.expect(201, "POST", acme+"/queues", ada, map[string]any{"name": dead, "broker": "dlq-rabbit", "owner_team": "dlq-owners"})
	c.expect(201, "POST", acme+"/queues", ada, map[string]any{"name": work, "broker": "dlq-rabbit", "owner_team": "dlq-owners", "dead_letter_queue": dead})
	// Setting up dead-lettering for a queue the broker does not have yet.
	fresh := rabbittest.Name("conformance-setup-")
	rabbittest.DeleteDeadLettering(t, fresh)
	c.expect(201, "POST", acme+"/queues", ada, map[string]any{"name": fresh, "broker": "dlq-rabbit", "owner_team": "dlq-owners"})
	c.sendBad("POST", acme+"/queues/"+fresh+"/dead-lettering", ada, map[string]any{"retry_delay_ms": 5})
	c.expect(200, "POST", acme+"/queues/"+fresh+"/dead-lettering", ada, map[string]any{"retry_delay_ms": 60000})
	d := acme + "/dlq/queue:" + dead
	live := c.stream(d+"/live", ada)
	deadLetter(t, ch, work, amqp.Publishing{MessageId: "order-7", ContentType: "application/json", Body: []byte(`{"order":7,"card":"4111"}`),
		Headers: amqp.Table{"x-exception-message": "card declined"}})
	deadLetter(t, ch, work, amqp.Publishing{MessageId: "order-8", Body: []byte{0xff, 0}})
	live.next()
	var msgs api.List[dlq.Message]
	deadline := time.Now().Add(20 * time.Second)
	for len(msgs.Items) < 2 {
		c.expect(200, "GET", d+"/messages?status=dead&reason=rejected&since=2020-01-01T00:00:00Z&limit=10", ada, nil).json(t, &msgs)
		if time.Now().After(deadline) {
			t.Fatal("the dead letters were not captured")
		}
	}
	id := msgs.Items[0].ID
	c.expect(200, "GET", acme+"/dlq", ada, nil)
	c.expect(200, "GET", d, ada, nil)
	c.expect(200, "GET", fmt.Sprintf("%s/messages/%d", d, id), ada, nil)
	c.expect(404, "GET", d+"/messages/999999", ada, nil)
	c.expect(404, "GET", acme+"/dlq/queue:"+work, ada, nil) // not a DLQ
	c.expect(200, "GET", d+"/messages?text=card&header=x-exception-message=card%20declined", ada, nil)
	c.sendBad("GET", d+"/messages?since=yesterday", ada, nil)
	// A Kafka DLQ read in place, on an in-process cluster.
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "refunds.DLT"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	c.expect(201, "POST", acme+"/brokers", ada, map[string]any{"name": "dlq-kafka", "kind": "kafka", "owner_team": "dlq-owners", "bootstrap_servers": kc.ListenAddrs()})
	c.expect(201, "POST", acme+"/topics", ada, map[string]any{"name": "refunds.DLT", "broker": "dlq-kafka", "owner_team": "dlq-owners", "partitions": 3})
	c.expect(201, "POST", acme+"/topics", ada, map[string]any{"name": "refunds", "broker": "dlq-kafka", "owner_team": "dlq-owners", "partitions": 1, "dead_letter_topic": "refunds.DLT"})
	c.expect(200, "GET", acme+"/dlq/topic:refunds.DLT/records?partition=2&offset=0&limit=10", ada, nil)
	c.sendBad("GET", acme+"/dlq/topic:refunds.DLT/records?partition=x", ada, nil)
	c.expect(422, "GET", d+"/records", ada, nil)
	c.expect(200, "GET", d+"/groups?by=exception", ada, nil)
	c.sendBad("GET", d+"/groups?by=colour", ada, nil)
	c.expect(200, "PATCH", d, ada, map[string]any{"redaction": map[string]any{"headers": []string{"x-exception-message"}, "json_paths": []string{"$.card"}}})
	c.sendBad("PATCH", d, ada, map[string]any{"redaction": map[string]any{"json_paths": []string{"card"}}})
	c.expect(200, "POST", d+"/replays", ada, map[string]any{"message_ids": []int64{id}, "dry_run": true})
	c.sendBad("POST", d+"/replays", ada, map[string]any{"message_ids": []int64{id}, "rate_per_second": 0.5})
	c.expect(422, "POST", d+"/replays", ada, map[string]any{"message_ids": []int64{id}, "target": map[string]string{"queue": dead}})
	// One message a second: the second waits, so the job is still running
	// to be paused, resumed and cancelled.
	var started api.ReplayResponse
	c.expect(202, "POST", d+"/replays", ada, map[string]any{"filter": map[string]any{"reason": "rejected"}, "rate_per_second": 1, "batch_size": 1},
		"Idempotency-Key", "replay-1").json(t, &started)
	job := d + "/replays/" + started.Replay.ID.String()
	c.expect(200, "GET", d+"/replays", ada, nil)
	c.expect(200, "POST", job+"/pause", ada, nil)
	c.expect(200, "POST", job+"/resume", ada, nil)
	c.expect(409, "POST", job+"/resume", ada, nil)
	c.expect(200, "POST", job+"/cancel", ada, nil)
	c.expect(409, "POST", job+"/cancel", ada, nil)
	deadline = time.Now().Add(20 * time.Second)
	for {
		var j dlq.Replay
		c.expect(200, "GET", job, ada, nil).json(t, &j)
		if j.Counts.Confirmed+j.Counts.Failed+j.Counts.Skipped == j.Counts.Total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled replay's counts do not add up: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// What was replayed fails again: back into the DLQ, then discarded.
	for {
		m, ok, err := ch.Get(work, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if s, _ := m.Headers[dlq.HeaderReplayID].(string); s != started.Replay.ID.String() {
			t.Fatalf("a replayed message carries replay id %q", s)
		}
		if err := m.Reject(false); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		var dl dlq.DLQ
		c.expect(200, "GET", d, ada, nil).json(t, &dl)
		if dl.Counts.Dead == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the messages did not come back: %+v", dl.Counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.sendBad("POST", d+"/discard", ada, map[string]any{"message_ids": []int64{id}})
	c.expect(200, "POST", d+"/discard", ada, map[string]any{"filter": map[string]any{"status": []string{"dead"}}, "confirm": true})
	c.expect(422, "POST", d+"/discard", ada, map[string]any{"message_ids": []int64{id}, "confirm": true})
	c.expect(400, "GET", d+"/live", ada, nil)
	live.next()
}
