package dlq

import (
	"fmt"
	"regexp"
	"strings"

	"switchboard/internal/problem"
)

// KafkaSettings are a Kafka DLQ topic's conventions. Empty fields take the
// defaults, which Settings fills in when it answers.
type KafkaSettings struct {
	// OriginalTopicHeader names the header a dead letter carries its
	// original topic in; empty: the known ones (kafka_dlt-original-topic,
	// x-original-topic), then the DLQ's name without a known suffix.
	OriginalTopicHeader string `json:"original_topic_header"`
	// RetryTopic is the topic a replay to one consumer group goes to, with
	// {topic} (the original topic) and {group} in it: only that group
	// consumes it, so the others do not see the message twice.
	RetryTopic string `json:"retry_topic"`
}

// DefaultRetryTopic is the retry topic of a consumer group, unless a DLQ
// says otherwise.
const DefaultRetryTopic = "{topic}.{group}.retry"

// dlqSuffixes are the DLQ topic names' usual endings: a DLQ topic named
// orders.DLT (or orders-dlt, orders.dlq, orders-dlq) dead-letters orders.
var dlqSuffixes = []string{".DLT", "-dlt", ".dlt", "-DLT", ".dlq", "-dlq", ".DLQ", "-DLQ"}

// topicName is what Kafka takes as a topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// groupName bounds a consumer group's name in a retry topic.
var groupName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

func (k KafkaSettings) normalized() KafkaSettings {
	if k.RetryTopic == "" {
		k.RetryTopic = DefaultRetryTopic
	}
	return k
}

// Validate checks k's fields, under prefix.
func (k KafkaSettings) Validate(prefix string) error {
	bad := problem.Fields{}
	h := k.OriginalTopicHeader
	bad.Check(len(h) <= 255 && !strings.ContainsAny(h, "\x00\r\n"), prefix+"original_topic_header", "must be a header name: at most 255 bytes, no NUL or line break")
	if k.RetryTopic != "" {
		bad.Check(strings.Contains(k.RetryTopic, "{group}"), prefix+"retry_topic", "must hold {group}: each consumer group has its own retry topic")
		sample := strings.NewReplacer("{topic}", "t", "{group}", "g").Replace(k.RetryTopic)
		bad.Check(topicName.MatchString(sample), prefix+"retry_topic", "with {topic} and {group} filled in it must be a topic name: letters, digits, '.', '_', '-'")
	}
	return bad.Err()
}

// retryTopic is the retry topic of group for topic, by the DLQ's
// convention.
func (k KafkaSettings) retryTopic(topic, group string) (string, error) {
	name := strings.NewReplacer("{topic}", topic, "{group}", group).Replace(k.normalized().RetryTopic)
	if !topicName.MatchString(name) {
		return "", fmt.Errorf("the retry topic %q of consumer group %q is not a topic name", name, group)
	}
	return name, nil
}

// originalFromName is the topic a DLQ topic named name dead-letters by its
// name's suffix ("" when it has none of the usual ones).
func originalFromName(name string) string {
	for _, s := range dlqSuffixes {
		if base, ok := strings.CutSuffix(name, s); ok && base != "" {
			return base
		}
	}
	return ""
}
