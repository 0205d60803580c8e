package kafka_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"switchboard/internal/connectors"
	"switchboard/internal/connectors/connectortest"
	"switchboard/internal/connectors/kafka"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster starts an in-process Kafka cluster of one broker, stopped when
// the test ends, and returns its address.
func cluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// through makes every connection go to addr: a cluster's metadata names
// its brokers' own addresses, and the suite's proxy must carry them all.
func through(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func newTopic(t *testing.T, broker string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "conformance-" + hex.EncodeToString(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, 1, nil, name); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestConformance(t *testing.T) {
	broker := cluster(t)
	connectortest.Run(t, connectortest.Harness{
		Broker:       broker,
		BytesHeaders: true,
		New: func(t *testing.T, addr string) connectors.Connector {
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			c := kafka.New(kafka.Config{Seeds: []string{addr}, Dial: through(addr), Group: "g-" + hex.EncodeToString(b)})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		Queue: func(t *testing.T) (connectors.Destination, string, string) {
			name := newTopic(t, broker)
			return connectors.Destination{Topic: name}, "key", name
		},
	})
}

// A header value Kafka cannot carry is refused, naming the header.
func TestPublish_UnsupportedHeaderIsAnError(t *testing.T) {
	broker := cluster(t)
	c := kafka.New(kafka.Config{Seeds: []string{broker}})
	defer c.Close()
	err := c.Publish(t.Context(), connectors.Destination{Topic: newTopic(t, broker)}, connectors.Message{Body: []byte("x"), Headers: map[string]any{"x-count": int64(3)}})
	if err == nil || !strings.Contains(err.Error(), "x-count") {
		t.Fatalf("err = %v", err)
	}
}

// A cluster that is gone is an error within the bound, not a hang.
func TestPublish_GoneClusterIsABoundedError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := kafka.New(kafka.Config{Seeds: []string{addr}, Timeout: 2 * time.Second})
	defer c.Close()
	start := time.Now()
	err = c.Publish(t.Context(), connectors.Destination{Topic: "t"}, connectors.Message{Body: []byte("x")})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}
