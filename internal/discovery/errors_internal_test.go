package discovery

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"switchboard/internal/problem"
)

// Kafka answers a wrong password with SASL_AUTHENTICATION_FAILED; the
// in-process cluster the other tests use drops the connection instead,
// so the mapping of Kafka's answer is checked here.
func TestKafkaErr_RefusedCredentials(t *testing.T) {
	answer := fmt.Errorf("list topics: %w", kerr.SaslAuthenticationFailed)
	err := brokerError(context.Background(), "events", kafkaErr("events", answer), "pw")
	p, ok := problem.As(err)
	if !ok || p.Code != problem.CodeBadGateway || p.Message != `broker "events": the broker refused the stored credentials` {
		t.Fatalf("err = %v", err)
	}
}

func TestBrokerError_ScrubsSecrets(t *testing.T) {
	err := brokerError(context.Background(), "events", fmt.Errorf("auth as app:hunter2 failed"), "hunter2")
	if strings.Contains(err.Error(), "hunter2") || problem.Code(err) != problem.CodeBadGateway {
		t.Fatalf("err = %v", err)
	}
}

func TestBrokerError_WhenTheContextEnds(t *testing.T) {
	ctx, cancel := bounded(context.Background())
	cancel()
	err := brokerError(ctx, "events", ctx.Err())
	if problem.Code(err) != problem.CodeBadGateway || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("err = %v", err)
	}
}

func TestTopicMatch(t *testing.T) {
	cases := []struct {
		pattern, key string
		want         bool
	}{
		{"orders.dead", "orders.dead", true},
		{"orders.*", "orders.dead", true},
		{"orders.*", "orders.dead.letter", false},
		{"orders.#", "orders", true},
		{"orders.#", "orders.a.b", true},
		{"#", "anything.at.all", true},
		{"*.dead", "orders.dead", true},
		{"*.dead", "dead", false},
		{"#.dead", "a.b.dead", true},
		{"a.#.z", "a.z", true},
		{"a.#.z", "a.b.c", false},
	}
	for _, c := range cases {
		if got := topicMatch(c.pattern, c.key); got != c.want {
			t.Errorf("topicMatch(%q, %q) = %v, want %v", c.pattern, c.key, got, c.want)
		}
	}
}
