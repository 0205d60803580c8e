package rabbitmq_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"switchboard/internal/connectors"
	"switchboard/internal/connectors/connectortest"
	"switchboard/internal/connectors/rabbitmq"
)

// The machine's RabbitMQ.
const broker = "127.0.0.1:5672"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		Broker: broker,
		New: func(t *testing.T, addr string) connectors.Connector {
			c := rabbitmq.New(rabbitmq.Config{URL: "amqp://guest:guest@" + addr + "/"})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		Queue: func(t *testing.T) (connectors.Destination, string, string) {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			name := "conformance-" + hex.EncodeToString(b)
			conn, err := amqp.Dial("amqp://guest:guest@" + broker + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				conn, err := amqp.Dial("amqp://guest:guest@" + broker + "/")
				if err != nil {
					return
				}
				defer conn.Close()
				if ch, err := conn.Channel(); err == nil {
					_, _ = ch.QueueDelete(name, false, false, false)
				}
			})
			return connectors.Destination{}, name, name // the default exchange routes by queue name
		},
	})
}

// A message no queue takes is an error, not counted as sent.
func TestPublish_UnroutableIsAnError(t *testing.T) {
	c := rabbitmq.New(rabbitmq.Config{URL: "amqp://guest:guest@" + broker + "/"})
	defer c.Close()
	err := c.Publish(t.Context(), connectors.Destination{}, connectors.Message{Key: "no-such-queue-anywhere", Body: []byte("x")})
	if err == nil {
		t.Fatal("an unroutable message was taken as published")
	}
}

// Refused credentials end the dialling at once, and say so without them.
func TestConnect_RefusedCredentials(t *testing.T) {
	c := rabbitmq.New(rabbitmq.Config{URL: "amqp://guest:wrong-s3cret@" + broker + "/"})
	defer c.Close()
	err := c.Publish(t.Context(), connectors.Destination{}, connectors.Message{Key: "x", Body: []byte("x")})
	if err == nil || contains(err.Error(), "wrong-s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
