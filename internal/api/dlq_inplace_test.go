package api_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchboard/internal/dlq"
	"switchboard/internal/tenancy"
)

// A Kafka DLQ topic is read where it lies, page by page, by partition and
// offset, without taking anything off it: the same page reads the same
// twice, a viewer sees payloads withheld, a RabbitMQ DLQ cannot be read so,
// and bad positions are 400s.
func TestDLQ_KafkaTopicIsReadInPlace(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	seeds := kafkaCluster(t) // topic payments, 3 partitions
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "events", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": seeds})
	s.must(201, "POST", cat+"/topics", owner, map[string]any{"name": "payments.DLT", "broker": "events", "owner_team": "payments", "partitions": 1})
	s.must(201, "POST", cat+"/topics", owner, map[string]any{"name": "payments", "broker": "events", "owner_team": "payments", "partitions": 3, "dead_letter_topic": "payments.DLT"})
	// Capture is paused first: this DLQ is only read in place.
	s.must(200, "PATCH", cat+"/dlq/topic:payments.DLT", owner, map[string]any{"paused": true})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, 1, nil, "payments.DLT"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := &kgo.Record{Topic: "payments.DLT", Partition: 0, Value: fmt.Appendf(nil, `{"n":%d}`, i),
			Headers: []kgo.RecordHeader{{Key: "kafka_dlt-original-topic", Value: []byte("payments")}, {Key: "kafka_dlt-exception-message", Value: []byte("boom")}}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	path := cat + "/dlq/topic:payments.DLT/records"
	var page dlq.InPlace
	for range 2 { // reading takes nothing: twice the same
		s.must(200, "GET", path+"?partition=0&offset=1&limit=2", owner, nil).json(t, &page)
		if len(page.Records) != 2 || *page.Records[0].Offset != 1 || *page.Records[1].Offset != 2 || page.NextOffset != 3 {
			t.Fatalf("page from offset 1: %+v", page)
		}
		if r := page.Records[0]; r.Body != `{"n":1}` || r.Original.Topic != "payments" || r.Exception != "boom" || r.ID != 0 {
			t.Fatalf("record %+v", r)
		}
	}
	if len(page.Partitions) != 1 || page.Partitions[0].End != 5 {
		t.Fatalf("partitions %+v", page.Partitions)
	}
	s.must(200, "GET", path+"?limit=2", owner, nil).json(t, &page) // the last page
	if len(page.Records) != 2 || *page.Records[0].Offset != 3 || page.NextOffset != 5 {
		t.Fatalf("last page: %+v", page)
	}
	s.must(200, "GET", path+"?offset=5", owner, nil).json(t, &page) // past the end: empty
	if len(page.Records) != 0 || page.NextOffset != 5 {
		t.Fatalf("page past the end: %+v", page)
	}
	s.must(200, "GET", path+"?offset=0&limit=1", viewer, nil).json(t, &page)
	if len(page.Records) != 1 || page.Records[0].BodyEncoding != "redacted" || page.Records[0].Body != "" {
		t.Fatalf("a viewer read %+v", page.Records)
	}
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://127.0.0.1:5672/"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "jobs.dlq", "broker": "rabbit", "owner_team": "payments"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "jobs", "broker": "rabbit", "owner_team": "payments", "dead_letter_queue": "jobs.dlq"})
	for _, c := range []struct {
		path   string
		status int
	}{
		{path + "?partition=7", 400},
		{path + "?partition=-1", 400},
		{path + "?offset=-3", 400},
		{path + "?limit=0", 400},
		{path + "?limit=501", 400},
		{path + "?offset=abc", 400},
		{cat + "/dlq/queue:jobs.dlq/records", 422},
		{cat + "/dlq/topic:nope/records", 404},
	} {
		if r := s.do("GET", c.path, owner, nil); r.Status != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, r.Status, r.Body, c.status)
		}
	}
}
