package dlq_test

import (
	"testing"

	"switchboard/internal/dlq"
)

func TestKafkaSettings_Validate(t *testing.T) {
	for _, c := range []struct {
		k  dlq.KafkaSettings
		ok bool
	}{
		{dlq.KafkaSettings{}, true},
		{dlq.KafkaSettings{OriginalTopicHeader: "origin", RetryTopic: "{topic}.{group}.retry"}, true},
		{dlq.KafkaSettings{RetryTopic: "retry-{group}"}, true},
		{dlq.KafkaSettings{RetryTopic: "{topic}.retry"}, false},   // one retry topic for every group
		{dlq.KafkaSettings{RetryTopic: "{topic} {group}"}, false}, // not a topic name
		{dlq.KafkaSettings{OriginalTopicHeader: "a\nb"}, false},   // not a header name
		{dlq.KafkaSettings{RetryTopic: "{group}/{topic}"}, false}, // not a topic name
	} {
		if err := c.k.Validate("kafka."); (err == nil) != c.ok {
			t.Errorf("%+v: %v, want ok %v", c.k, err, c.ok)
		}
	}
}
