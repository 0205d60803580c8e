package api_test

import (
	"testing"
)

// runCatalogConformance drives every catalog route once or more, with the
// live stream of changes open.
func runCatalogConformance(t *testing.T, c *conformance, ada, acme string) {
	t.Helper()
	c.expect(201, "POST", acme+"/teams", ada, map[string]string{"slug": "orders", "name": "Orders"})
	changes := c.stream(acme+"/catalog/live", ada)
	c.expect(201, "POST", acme+"/services", ada, map[string]any{"name": "checkout", "owner_team": "orders", "description": "takes orders",
		"labels": map[string]string{"env": "prod"}, "links": []map[string]string{{"url": "https://docs.example.com/checkout", "title": "Docs"}},
		"endpoints":    []map[string]string{{"url": "http://10.0.0.5:8080", "protocol": "http"}},
		"health_check": map[string]any{"url": "http://10.0.0.5:8080/healthz", "interval_seconds": 10}}, "Idempotency-Key", "svc-1")
	changes.next()
	c.expect(201, "POST", acme+"/services", ada, map[string]any{"name": "billing", "owner_team": "orders"})
	c.expect(201, "POST", acme+"/brokers", ada, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "orders", "url": "amqp://127.0.0.1:5672/", "vhost": "/"})
	c.expect(201, "POST", acme+"/brokers", ada, map[string]any{"name": "events", "kind": "kafka", "owner_team": "orders", "bootstrap_servers": []string{"127.0.0.1:9092"}})
	c.expect(201, "POST", acme+"/queues", ada, map[string]any{"name": "orders", "broker": "rabbit", "owner_team": "orders", "dead_letter_queue": "orders.dlq",
		"bindings": []map[string]string{{"exchange": "shop", "routing_key": "order.*"}}})
	c.expect(201, "POST", acme+"/topics", ada, map[string]any{"name": "payments", "broker": "events", "owner_team": "orders", "partitions": 3, "dead_letter_topic": "payments.dlq"})
	c.expect(201, "POST", acme+"/sagas", ada, map[string]any{"name": "place-order", "owner_team": "orders",
		"steps": []map[string]string{{"name": "charge", "service": "billing", "action": "charge", "compensation": "refund"}}})
	for _, p := range []string{"/services", "/brokers", "/queues", "/topics", "/sagas"} {
		c.expect(200, "GET", acme+p+"?owner_team=orders&labels=env!=dev&limit=10", ada, nil)
	}
	c.sendBad("GET", acme+"/services?labels=a==b==c", ada, nil)
	for _, p := range []string{"/services/checkout", "/brokers/rabbit", "/queues/orders", "/topics/payments", "/sagas/place-order"} {
		etag := c.expect(200, "GET", acme+p, ada, nil).Header.Get("ETag")
		c.expect(200, "PATCH", acme+p, ada, map[string]any{"description": "changed"}, "If-Match", etag)
		c.expect(412, "PATCH", acme+p, ada, map[string]any{"description": "stale"}, "If-Match", etag)
	}
	c.expect(404, "GET", acme+"/services/ghost", ada, nil)
	c.sendBad("POST", acme+"/services", ada, map[string]any{"name": "Not A Name"})
	c.expect(201, "POST", acme+"/relations", ada, map[string]string{"from": "service:checkout", "type": "publishes", "to": "queue:orders"})
	c.expect(201, "POST", acme+"/relations", ada, map[string]string{"from": "service:checkout", "type": "calls", "to": "service:billing"})
	c.expect(409, "POST", acme+"/relations", ada, map[string]string{"from": "service:checkout", "type": "calls", "to": "service:billing"})
	c.expect(422, "POST", acme+"/relations", ada, map[string]string{"from": "service:checkout", "type": "calls", "to": "service:ghost"})
	c.expect(200, "GET", acme+"/relations?ref=service:checkout", ada, nil)
	c.expect(200, "GET", acme+"/topology", ada, nil)
	c.expect(200, "GET", acme+"/topology?around=service:checkout&depth=2&kind=service,queue", ada, nil)
	c.expect(200, "GET", acme+"/problems?owner_team=orders", ada, nil)
	c.expect(204, "DELETE", acme+"/relations", ada, map[string]string{"from": "service:checkout", "type": "calls", "to": "service:billing"})
	c.expect(204, "DELETE", acme+"/relations?from=service:checkout&type=publishes&to=queue:orders", ada, nil)
	c.expect(409, "DELETE", acme+"/services/billing", ada, nil) // a saga step calls it
	c.expect(204, "DELETE", acme+"/sagas/place-order", ada, nil)
	c.expect(204, "DELETE", acme+"/services/billing", ada, nil)
	c.expect(204, "DELETE", acme+"/queues/orders?cascade=true", ada, nil)
	c.expect(204, "DELETE", acme+"/topics/payments", ada, nil)
	c.expect(204, "DELETE", acme+"/brokers/rabbit", ada, nil)
	c.expect(204, "DELETE", acme+"/brokers/events", ada, nil)
	c.expect(400, "GET", acme+"/catalog/live", ada, nil)

	file := "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: imported\nspec:\n  type: service\n  owner: orders\n"
	c.expect(200, "POST", acme+"/catalog/import?source=repo&dry_run=true", ada, file, "Content-Type", "application/yaml")
	c.expect(200, "POST", acme+"/catalog/import?source=repo", ada, file, "Content-Type", "application/yaml")
	c.expect(422, "POST", acme+"/catalog/import?source=repo", ada, "kind: [", "Content-Type", "application/yaml")
	c.expect(200, "GET", acme+"/catalog/export", ada, nil)
	c.expect(200, "GET", acme+"/catalog/imports", ada, nil)

	c.expect(201, "POST", acme+"/brokers", ada, map[string]any{"name": "kafka", "kind": "kafka", "owner_team": "orders", "bootstrap_servers": kafkaCluster(t)})
	c.expect(200, "GET", acme+"/brokers/kafka/discover", ada, nil)
	c.expect(200, "POST", acme+"/brokers/kafka/discover/import", ada, nil)
	c.expect(404, "GET", acme+"/brokers/nope/discover", ada, nil)
}
