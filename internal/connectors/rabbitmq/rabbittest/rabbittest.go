// Package rabbittest gives tests queues on the machine's RabbitMQ
// (127.0.0.1:5672, guest/guest) under names no other test uses, deleted
// when the test ends.
package rabbittest

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"switchboard/internal/connectors/rabbitmq"

	amqp "github.com/rabbitmq/amqp091-go"
)

// URL is the machine's RabbitMQ.
const URL = "amqp://guest:guest@127.0.0.1:5672/"

// Name is prefix and ten random hex digits.
func Name(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Channel is a channel on its own connection, closed when the test ends.
func Channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(URL)
	if err != nil {
		t.Fatalf("connect to RabbitMQ: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open a channel: %v", err)
	}
	return ch
}

// Delete deletes queues and exchanges when the test ends, on a connection
// of its own (the test's may be closed by then).
func Delete(t testing.TB, queues, exchanges []string) {
	t.Cleanup(func() {
		c, err := amqp.Dial(URL)
		if err != nil {
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return
		}
		for _, q := range queues {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
		for _, x := range exchanges {
			_ = ch.ExchangeDelete(x, false, false)
		}
	})
}

// DeadLettering declares a work queue (prefix and random digits) that
// dead-letters through the default exchange into its DLQ (the work queue's
// name and ".dlq"), both with args besides (such as a queue type), deleted
// when the test ends, and returns them with a channel.
func DeadLettering(t testing.TB, prefix string, args amqp.Table) (work, dead string, ch *amqp.Channel) {
	t.Helper()
	work = Name(prefix)
	dead = work + ".dlq"
	Delete(t, []string{work, dead}, nil)
	ch = Channel(t)
	dlqArgs, workArgs := amqp.Table{}, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead}
	for k, v := range args {
		dlqArgs[k], workArgs[k] = v, v
	}
	if _, err := ch.QueueDeclare(dead, true, false, false, false, dlqArgs); err != nil {
		t.Fatalf("declare %s: %v", dead, err)
	}
	if _, err := ch.QueueDeclare(work, true, false, false, false, workArgs); err != nil {
		t.Fatalf("declare %s: %v", work, err)
	}
	return work, dead, ch
}

// DeleteDeadLettering deletes, when the test ends, queue and what setting
// up its dead-lettering declares (rabbitmq.DeadLetterNames).
func DeleteDeadLettering(t testing.TB, queue string) {
	dlx, dlq, retry := rabbitmq.DeadLetterNames(queue)
	Delete(t, []string{queue, dlq, retry}, []string{dlx})
}
