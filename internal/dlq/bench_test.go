package dlq_test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/connectors/rabbitmq/rabbittest"
	"switchboard/internal/dlq"
)

// fills numbers the fills, so that no message of one is a redelivery of
// another's.
var fills int

// benchN is how many messages each side of a benchmark moves.
const benchN = 20000

// fill publishes n messages straight into queue, confirmed.
func fill(b *testing.B, ch *amqp.Channel, queue string, n int) {
	fills++
	body := make([]byte, 512)
	publishConfirmed(b, ch, queue, n, 500, func(i int) amqp.Publishing {
		return amqp.Publishing{MessageId: fmt.Sprintf("%d-%d", fills, i), Body: body, Headers: amqp.Table{"x-exception-message": "boom"}}
	})
}

// publishConfirmed publishes n messages (msg(i) each) to queue through the
// default exchange in batches of batch, waiting for each batch's
// confirmations.
func publishConfirmed(b *testing.B, ch *amqp.Channel, queue string, n, batch int, msg func(i int) amqp.Publishing) {
	b.Helper()
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += batch {
		dcs := make([]*amqp.DeferredConfirmation, 0, batch)
		for i := start; i < min(n, start+batch); i++ {
			dc, err := ch.PublishWithDeferredConfirm("", queue, true, false, msg(i))
			if err != nil {
				b.Fatal(err)
			}
			dcs = append(dcs, dc)
		}
		for _, dc := range dcs {
			if !dc.Wait() {
				b.Fatal("not confirmed")
			}
		}
	}
}

// bareConsumeAck is what a plain amqp091-go consumer does with queue: take
// every message with manual acks, prefetch 500; it returns messages/s.
func bareConsumeAck(b *testing.B, conn *amqp.Connection, queue string, n int) float64 {
	b.Helper()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(500, 0, false); err != nil {
		b.Fatal(err)
	}
	ds, err := ch.Consume(queue, "bare", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range n {
		d := <-ds
		if err := d.Ack(false); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// barePublishConfirm is what a plain amqp091-go publisher does: publish n
// messages to queue in batches of batch, waiting for each batch's
// confirmations; it returns messages/s.
func barePublishConfirm(b *testing.B, conn *amqp.Connection, queue string, n, batch int) float64 {
	b.Helper()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	body := make([]byte, 512)
	start := time.Now()
	publishConfirmed(b, ch, queue, n, batch, func(i int) amqp.Publishing {
		return amqp.Publishing{MessageId: fmt.Sprint(i), Body: body, DeliveryMode: amqp.Persistent, Headers: amqp.Table{"x-exception-message": "boom"}}
	})
	return float64(n) / time.Since(start).Seconds()
}

func purge(b *testing.B, ch *amqp.Channel, queue string) {
	if _, err := ch.QueuePurge(queue, false); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCapture: capture of a DLQ holding benchN messages (512-byte
// bodies) into PostgreSQL, acknowledged after each commit, beside a bare
// consume-and-ack loop over the same messages on the same RabbitMQ.
func BenchmarkCapture(b *testing.B) {
	e := newEnv(b)
	conn, err := amqp.Dial(rabbittest.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var bare, ours float64
	for b.Loop() {
		fill(b, e.ch, e.dlqName, benchN)
		bare += bareConsumeAck(b, conn, e.dlqName, benchN)
		fill(b, e.ch, e.dlqName, benchN)
		before := e.count(b)
		start := time.Now()
		c := e.startCapture(b)
		waitFor(b, "captured", func() (bool, error) { return e.count(b) >= before+benchN, nil })
		ours += float64(benchN) / time.Since(start).Seconds()
		c.Close()
	}
	b.ReportMetric(bare/float64(b.N), "bare-msgs/s")
	b.ReportMetric(ours/float64(b.N), "capture-msgs/s")
	b.ReportMetric(100*ours/bare, "capture-%-of-bare")
}

// BenchmarkReplay: a replay of benchN captured messages with publisher
// confirms (batches of 500, no rate limit to speak of), beside a bare
// publish-with-confirms loop in the same batches on the same RabbitMQ.
func BenchmarkReplay(b *testing.B) {
	e := newEnv(b)
	conn, err := amqp.Dial(rabbittest.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	fill(b, e.ch, e.dlqName, benchN)
	c := e.startCapture(b)
	waitFor(b, "captured", func() (bool, error) { return e.count(b) >= benchN, nil })
	c.Close()
	e.startRunner(b)
	d, err := e.store.Get(b.Context(), e.tenant, "queue:"+e.dlqName, allowAll)
	if err != nil {
		b.Fatal(err)
	}
	var bare, ours float64
	round := 0
	for b.Loop() {
		round++
		bare += barePublishConfirm(b, conn, e.work, benchN, 500)
		purge(b, e.ch, e.work)
		// Every round replays them all again: the replayed go back to dead.
		if _, err := e.db.Pool.Exec(b.Context(), `UPDATE dlq_messages SET status = 'dead'`); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		job, _, err := e.store.StartReplay(b.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{Filter: &dlq.Filter{Status: []string{dlq.Dead}}},
			RatePerSecond: dlq.MaxRate, BatchSize: 500}, allowAll)
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, "replayed", func() (bool, error) {
			j, err := e.store.GetReplay(b.Context(), e.tenant, "queue:"+e.dlqName, job.ID)
			return j.State == dlq.Done, err
		})
		ours += float64(benchN) / time.Since(start).Seconds()
		if depth := e.queueDepth(b, e.work); depth != benchN {
			b.Fatalf("round %d: %d messages on the queue, want %d", round, depth, benchN)
		}
		j, _ := e.store.GetReplay(b.Context(), e.tenant, "queue:"+e.dlqName, job.ID)
		if j.Counts.Confirmed != benchN {
			b.Fatalf("round %d: counts %+v", round, j.Counts)
		}
		purge(b, e.ch, e.work)
	}
	b.ReportMetric(bare/float64(b.N), "bare-msgs/s")
	b.ReportMetric(ours/float64(b.N), "replay-msgs/s")
	b.ReportMetric(100*ours/bare, "replay-%-of-bare")
}
