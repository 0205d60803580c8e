package dlq

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/connectors"
)

// captured is a delivery read into what the store keeps.
type captured struct {
	fingerprint []byte
	messageID   string
	routingKey  string
	contentType string
	headers     Headers
	properties  map[string]string
	body        []byte
	bodySize    int
	truncated   bool
	original    Destination
	reason      string
	exception   string
	deathCount  int64
	firstDeath  *time.Time
	lastDeath   *time.Time
	traceparent string
	partition   *int32
	offset      *int64
	// returnOf is the stored message this one is a replay of, come back;
	// returnReplay the replay that sent it (uuid.Nil: unknown).
	returnOf     int64
	returnReplay uuid.UUID
}

// Exception headers, most telling first: Spring AMQP's and Spring Kafka's,
// and the plain ones.
var exceptionHeaders = []string{"x-exception-message", "kafka_dlt-exception-message", "exception", "x-exception"}

// Kafka headers naming where a dead letter was going: Spring Kafka's and
// the plain one. A topic may name its own (KafkaSettings).
var originalTopicHeaders = []string{"kafka_dlt-original-topic", "x-original-topic"}

// parse reads d, a delivery of a DLQ, keeping at most sizeCap bytes of its
// body (0: all). originalHeader, for Kafka, names the header holding the
// original topic ("" tries the known ones).
func parse(d connectors.Delivery, sizeCap int, originalHeader string) captured {
	c := captured{messageID: d.ID, routingKey: d.Key, contentType: d.ContentType, headers: EncodeHeaders(d.Headers), properties: d.Properties,
		body: d.Body, bodySize: len(d.Body), deathCount: 1}
	if c.properties == nil {
		c.properties = map[string]string{}
	}
	if !d.Timestamp.IsZero() {
		c.properties["timestamp"] = d.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	if sizeCap > 0 && len(c.body) > sizeCap {
		c.body, c.truncated = c.body[:sizeCap], true
	}
	if d.Partition >= 0 && d.Offset >= 0 {
		p, o := d.Partition, d.Offset
		c.partition, c.offset = &p, &o
	}
	text := func(name string) string {
		s, _ := c.headers[name].Text()
		return s
	}
	c.traceparent = text("traceparent")
	for _, name := range exceptionHeaders {
		if s := text(name); s != "" {
			c.exception = s
			break
		}
	}
	if id, err := strconv.ParseInt(text(HeaderMessage), 10, 64); err == nil && id > 0 {
		c.returnOf = id
		c.returnReplay, _ = uuid.Parse(text(HeaderReplayID))
	}
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		readXDeath(&c, d.Headers, deaths)
	} else {
		names := originalTopicHeaders
		if originalHeader != "" {
			names = []string{originalHeader}
		}
		for _, name := range names {
			if s := text(name); s != "" {
				c.original.Topic = s
				break
			}
		}
		if c.reason = text("kafka_dlt-exception-fqcn"); c.reason == "" {
			c.reason = text("x-exception-fqcn")
		}
		if !d.Timestamp.IsZero() {
			t := d.Timestamp.UTC()
			c.firstDeath, c.lastDeath = &t, &t
		}
	}
	if c.reason == "" && c.exception != "" {
		c.reason = "exception"
	}
	c.fingerprint = fingerprint(d)
	return c
}

// readXDeath reads where a RabbitMQ dead letter was going, and why, from
// the x-death header (one entry per queue and reason, the latest first)
// and the x-first-death-* headers.
func readXDeath(c *captured, headers map[string]any, deaths []any) {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	firstQueue, _ := headers["x-first-death-queue"].(string)
	firstReason, _ := headers["x-first-death-reason"].(string)
	var first map[string]any
	c.deathCount = 0
	for i, x := range deaths {
		m, ok := asMap(x)
		if !ok {
			continue
		}
		if n, ok := m["count"].(int64); ok {
			c.deathCount += n
		}
		if t, ok := m["time"].(time.Time); ok {
			t = t.UTC()
			if c.firstDeath == nil || t.Before(*c.firstDeath) {
				c.firstDeath = &t
			}
			if c.lastDeath == nil || t.After(*c.lastDeath) {
				c.lastDeath = &t
			}
		}
		if i == 0 {
			c.reason = str(m, "reason")
		}
		if first == nil || (str(m, "queue") == firstQueue && str(m, "reason") == firstReason) {
			first = m
		}
	}
	if c.deathCount == 0 {
		c.deathCount = 1
	}
	if first != nil {
		c.original.Exchange, c.original.Queue = str(first, "exchange"), str(first, "queue")
		if keys, ok := first["routing-keys"].([]any); ok && len(keys) > 0 {
			c.original.RoutingKey, _ = keys[0].(string)
		}
	}
	if s, ok := headers["x-first-death-exchange"].(string); ok {
		c.original.Exchange = s
	}
	if firstQueue != "" {
		c.original.Queue = firstQueue
	}
}

func asMap(x any) (map[string]any, bool) {
	switch m := x.(type) {
	case map[string]any:
		return m, true
	case amqp.Table:
		return m, true
	}
	return nil, false
}

// fingerprint identifies a delivery: a redelivery of it has the same one.
func fingerprint(d connectors.Delivery) []byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(d.ID))
	field([]byte(d.Key))
	field([]byte(d.ContentType))
	field([]byte(d.Timestamp.UTC().Format(time.RFC3339Nano)))
	if d.Partition >= 0 {
		field([]byte(strconv.Itoa(int(d.Partition)) + "/" + strconv.FormatInt(d.Offset, 10)))
	}
	enc := EncodeHeaders(d.Headers)
	for _, k := range slices.Sorted(maps.Keys(enc)) {
		field([]byte(k))
		field([]byte(enc[k].Type))
		field(enc[k].Value)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Properties)) {
		field([]byte(k))
		field([]byte(d.Properties[k]))
	}
	field(d.Body)
	return h.Sum(nil)
}
