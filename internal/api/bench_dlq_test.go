package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"switchboard/internal/connectors/rabbitmq/rabbittest"

	amqp "github.com/rabbitmq/amqp091-go"
)

// benchDLQ makes tenant bench with a DLQ (queue:orders.dlq) holding n
// captured messages: five reasons, three original queues, JSON bodies,
// a tenth of them replayed.
func benchDLQ(b *testing.B, n int) (*testServer, string, string) {
	s := newTestServer(b)
	tok := s.signup("bench@example.com", "bench")
	t := "/api/v1/tenants/bench"
	s.must(201, "POST", t+"/teams", tok, map[string]string{"slug": "orders", "name": "Orders"})
	s.must(201, "POST", t+"/brokers", tok, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "orders", "url": "amqp://127.0.0.1:5672/"})
	s.must(201, "POST", t+"/queues", tok, map[string]any{"name": "orders.dlq", "broker": "rabbit", "owner_team": "orders"})
	s.must(201, "POST", t+"/queues", tok, map[string]any{"name": "orders", "broker": "rabbit", "owner_team": "orders", "dead_letter_queue": "orders.dlq"})
	if _, err := s.DB.Pool.Exec(b.Context(), `INSERT INTO dlq_messages (tenant_id, dlq, fingerprint, message_id, content_type, headers, body, body_size,
			original_queue, original_routing_key, reason, exception, status, captured_at, first_death_at, last_death_at)
		SELECT t.id, 'queue:orders.dlq', int8send(g), 'm-' || g, 'application/json',
			jsonb_build_object('x-exception-message', jsonb_build_object('type', 'string', 'value', 'error ' || (g % 7)),
				'x-order', jsonb_build_object('type', 'int64', 'value', g)),
			convert_to('{"order":' || g || ',"customer":"c-' || (g % 1000) || '","items":[{"sku":"s-' || (g % 50) || '","qty":2}]}', 'UTF8'), 80,
			'orders-' || (g % 3), 'orders-' || (g % 3), (ARRAY['rejected','expired','maxlen','delivery_limit','rejected'])[1 + g % 5],
			'error ' || (g % 7), CASE WHEN g % 10 = 0 THEN 'replayed' ELSE 'dead' END,
			now() - (($1 - g) || ' seconds')::interval, now() - (($1 - g) || ' seconds')::interval, now() - (($1 - g) || ' seconds')::interval
		FROM tenants t, generate_series(1, $1) g WHERE t.slug = 'bench'`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB.Pool.Exec(b.Context(), `ANALYZE dlq_messages`); err != nil {
		b.Fatal(err)
	}
	return s, tok, s.URL + t + "/dlq/queue:orders.dlq/messages"
}

// BenchmarkDLQBrowse: a DLQ of 100,000 messages browsed one page (50) at a
// time: the newest page, pages deep by cursor, and filtered by reason,
// status, original queue, header, body text and time; p50 and p99 over all.
func BenchmarkDLQBrowse(b *testing.B) {
	_, tok, base := benchDLQ(b, 100_000)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	// A cursor some 20 pages deep, to start from.
	var deep string
	cursor := ""
	for range 20 {
		var page struct {
			NextCursor string `json:"next_cursor"`
		}
		req, _ := http.NewRequest("GET", base+"?limit=50&cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if err := json.Unmarshal(raw, &page); err != nil {
			b.Fatal(err)
		}
		cursor = page.NextCursor
	}
	deep = cursor
	since := url.QueryEscape(time.Now().Add(-30 * time.Hour).UTC().Format(time.RFC3339))
	until := url.QueryEscape(time.Now().Add(-20 * time.Hour).UTC().Format(time.RFC3339))
	queries := []string{
		"?limit=50",
		"?limit=50&cursor=" + url.QueryEscape(deep),
		"?limit=50&reason=expired",
		"?limit=50&status=replayed",
		"?limit=50&original=orders-2",
		"?limit=50&header=" + url.QueryEscape("x-exception-message=error 3"),
		"?limit=50&text=" + url.QueryEscape(`"customer":"c-42"`),
		"?limit=50&since=" + since + "&until=" + until,
		"?limit=50&reason=delivery_limit&status=dead&original=orders-1",
	}
	for _, q := range queries { // warm, and every query answers
		if _, err := get(client, base+q, tok); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		d, err := get(client, base+queries[i%len(queries)], tok)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkDLQFanout: new dead letters, ten a second, put on a DLQ on the
// machine's RabbitMQ, captured and pushed to 1,000 open live streams of
// that DLQ; latency from the publish to the broker to each delivery.
func BenchmarkDLQFanout(b *testing.B) {
	s := newTestServer(b)
	tok := s.signup("bench@example.com", "bench")
	t := "/api/v1/tenants/bench"
	_, dead, ch := rabbittest.DeadLettering(b, "api-", nil)
	s.must(201, "POST", t+"/teams", tok, map[string]string{"slug": "orders", "name": "Orders"})
	s.must(201, "POST", t+"/brokers", tok, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "orders", "url": "amqp://guest:guest@127.0.0.1:5672/"})
	s.must(201, "POST", t+"/queues", tok, map[string]any{"name": dead, "broker": "rabbit", "owner_team": "orders"})
	s.must(201, "POST", t+"/queues", tok, map[string]any{"name": "orders", "broker": "rabbit", "owner_team": "orders", "dead_letter_queue": dead})
	runFanout(b, s, tok, t+"/dlq/queue:"+dead+"/live", "dlq", 1000, func() error {
		return ch.Publish("", dead, true, false, amqp.Publishing{MessageId: fmt.Sprint(time.Now().UnixNano()), Body: []byte(`{"order":1}`)})
	})
}
