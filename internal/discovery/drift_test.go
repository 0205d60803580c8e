package discovery_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"switchboard/internal/catalog"
	"switchboard/internal/discovery"
)

// rabbitInventory is a broker with a dead-letter setup in vhost "/" and
// the queues RabbitMQ keeps for itself.
func rabbitInventory() discovery.Inventory {
	return discovery.Inventory{
		Type: "rabbitmq",
		Queues: []discovery.Queue{
			{Name: "amq.gen-Xy12", VHost: "/", Type: "classic"},
			{Name: "billing", VHost: "billing", Type: "classic"},
			{Name: "orders", VHost: "/", Type: "quorum", Durable: true, DeadLettering: true, DeadLetterExchange: "dlx", DeadLetterRoutingKey: "orders"},
			{Name: "orders.dlq", VHost: "/", Type: "classic", Durable: true},
			{Name: "reply-42", VHost: "/", Type: "classic", Exclusive: true},
			{Name: "stock", VHost: "/", Type: "classic", Durable: true, DeadLettering: true, DeadLetterExchange: "dlx", DeadLetterRoutingKey: "stock"},
			{Name: "stock.parking", VHost: "/", Type: "classic", Durable: true},
		},
		Exchanges: []discovery.Exchange{
			{Name: "", VHost: "/", Type: "direct"},
			{Name: "dlx", VHost: "/", Type: "direct"},
			{Name: "events", VHost: "/", Type: "topic"},
		},
		Bindings: []discovery.Binding{
			{VHost: "/", Source: "", Destination: "orders", DestinationType: "queue", RoutingKey: "orders"},
			{VHost: "/", Source: "dlx", Destination: "orders.dlq", DestinationType: "queue", RoutingKey: "orders"},
			{VHost: "/", Source: "dlx", Destination: "stock.parking", DestinationType: "queue", RoutingKey: "stock"},
			{VHost: "/", Source: "events", Destination: "orders", DestinationType: "queue", RoutingKey: "order.created"},
		},
	}
}

func rabbitQueue(name, vhost string, spec catalog.QueueSpec) catalog.Entity {
	spec.Broker = "main"
	spec.VHost = vhost
	return catalog.Entity{Kind: catalog.KindQueue, Namespace: catalog.DefaultNamespace, Name: name, Queue: &spec}
}

func TestDrift_RabbitMQ(t *testing.T) {
	declared := []catalog.Entity{
		// Matches the broker exactly, binding included.
		rabbitQueue("orders", "/", catalog.QueueSpec{
			DeadLetterExchange: "dlx", DeadLetterQueue: "orders.dlq",
			Bindings: []catalog.Binding{{Exchange: "events", RoutingKey: "order.created"}},
		}),
		rabbitQueue("orders.dlq", "/", catalog.QueueSpec{}),
		// The broker dead-letters stock to stock.parking through another
		// exchange's binding, and lacks the declared binding.
		rabbitQueue("stock", "/", catalog.QueueSpec{
			DeadLetterExchange: "stock.dlx", DeadLetterQueue: "stock.dlq",
			Bindings: []catalog.Binding{{Exchange: "events", RoutingKey: "stock.#"}},
		}),
		// In another vhost than declared, and with no dead-lettering.
		rabbitQueue("billing", "/", catalog.QueueSpec{DeadLetterExchange: "dlx"}),
		rabbitQueue("invoices", "/", catalog.QueueSpec{}),
		// Another broker's queue and a topic: not this broker's business.
		{Kind: catalog.KindQueue, Name: "stock.parking", Queue: &catalog.QueueSpec{Broker: "other"}},
		{Kind: catalog.KindTopic, Name: "orders", Topic: &catalog.TopicSpec{Broker: "main", Partitions: 3}},
	}
	want := []discovery.Item{
		{Ref: "queue:billing", Kind: discovery.DriftDifferent, Field: "dead_letter_exchange", Declared: "dlx"},
		{Ref: "queue:billing", Kind: discovery.DriftDifferent, Field: "vhost", Declared: "/", Actual: "billing"},
		{Ref: "queue:invoices", Kind: discovery.DriftMissing},
		{Ref: "queue:stock", Kind: discovery.DriftDifferent, Field: "bindings", Declared: "exchange=events routing_key=stock.#"},
		{Ref: "queue:stock", Kind: discovery.DriftDifferent, Field: "dead_letter_exchange", Declared: "stock.dlx", Actual: "dlx"},
		{Ref: "queue:stock", Kind: discovery.DriftDifferent, Field: "dead_letter_queue", Declared: "stock.dlq", Actual: "stock.parking"},
		{Ref: "queue:stock.parking", Kind: discovery.DriftUndeclared},
	}
	assertDrift(t, discovery.Drift("main", declared, rabbitInventory()), want)
}

func TestDrift_DeadLetterQueueThroughTopicExchange(t *testing.T) {
	inv := discovery.Inventory{
		Type: "rabbitmq",
		Queues: []discovery.Queue{
			{Name: "a", VHost: "/", DeadLettering: true, DeadLetterExchange: "dead", DeadLetterRoutingKey: "dead.a"},
			{Name: "a.dlq", VHost: "/"},
			{Name: "b.dlq", VHost: "/"},
		},
		Exchanges: []discovery.Exchange{{Name: "dead", VHost: "/", Type: "topic"}},
		Bindings: []discovery.Binding{
			{VHost: "/", Source: "dead", Destination: "a.dlq", DestinationType: "queue", RoutingKey: "dead.*"},
			{VHost: "/", Source: "dead", Destination: "b.dlq", DestinationType: "queue", RoutingKey: "dead.b"},
		},
	}
	declared := []catalog.Entity{
		rabbitQueue("a", "/", catalog.QueueSpec{DeadLetterQueue: "a.dlq"}),
		rabbitQueue("a.dlq", "/", catalog.QueueSpec{}),
		rabbitQueue("b.dlq", "/", catalog.QueueSpec{}),
	}
	assertDrift(t, discovery.Drift("main", declared, inv), []discovery.Item{})

	declared[0].Queue.DeadLetterQueue = "b.dlq"
	assertDrift(t, discovery.Drift("main", declared, inv), []discovery.Item{
		{Ref: "queue:a", Kind: discovery.DriftDifferent, Field: "dead_letter_queue", Declared: "b.dlq", Actual: "a.dlq"},
	})
}

func TestDrift_Kafka(t *testing.T) {
	inv := discovery.Inventory{
		Type: "kafka",
		Topics: []discovery.Topic{
			{Name: "__consumer_offsets", Partitions: 50, Internal: true},
			{Name: "__transaction_state", Partitions: 50},
			{Name: "orders", Partitions: 6, ReplicationFactor: 3},
			{Name: "payments", Partitions: 3, ReplicationFactor: 3},
			{Name: "payments.dlq", Partitions: 1, ReplicationFactor: 3},
		},
	}
	declared := []catalog.Entity{
		topicEntity("payments", "events", 3),
		topicEntity("orders", "events", 12),
		topicEntity("refunds", "events", 1),
		// A queue on a Kafka broker is not compared with a Kafka inventory.
		{Kind: catalog.KindQueue, Name: "q", Queue: &catalog.QueueSpec{Broker: "events"}},
	}
	want := []discovery.Item{
		{Ref: "topic:orders", Kind: discovery.DriftDifferent, Field: "partitions", Declared: "12", Actual: "6"},
		{Ref: "topic:payments.dlq", Kind: discovery.DriftUndeclared},
		{Ref: "topic:refunds", Kind: discovery.DriftMissing},
	}
	assertDrift(t, discovery.Drift("events", declared, inv), want)
}

func TestDrift_OrderDoesNotDependOnInput(t *testing.T) {
	declared := []catalog.Entity{
		rabbitQueue("stock", "/", catalog.QueueSpec{DeadLetterExchange: "x", DeadLetterQueue: "y"}),
		rabbitQueue("zeta", "/", catalog.QueueSpec{}),
		rabbitQueue("alpha", "/", catalog.QueueSpec{}),
		rabbitQueue("billing", "/", catalog.QueueSpec{}),
	}
	first := discovery.Drift("main", declared, rabbitInventory())
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		d := append([]catalog.Entity(nil), declared...)
		r.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
		inv := rabbitInventory()
		r.Shuffle(len(inv.Queues), func(i, j int) { inv.Queues[i], inv.Queues[j] = inv.Queues[j], inv.Queues[i] })
		if got := discovery.Drift("main", d, inv); !reflect.DeepEqual(got, first) {
			t.Fatalf("drift changed with input order:\n%+v\nwas\n%+v", got, first)
		}
	}
}

func TestUndeclared_FillsSpecsFromTheInventory(t *testing.T) {
	inv := rabbitInventory()
	drift := discovery.Drift("main", nil, inv)
	got := discovery.Undeclared("main", inv, drift)
	want := []catalog.Entity{
		undeclaredQueue("billing", catalog.QueueSpec{VHost: "billing"}),
		undeclaredQueue("orders", catalog.QueueSpec{
			VHost: "/", DeadLetterExchange: "dlx", DeadLetterQueue: "orders.dlq",
			Bindings: []catalog.Binding{{Exchange: "events", RoutingKey: "order.created"}},
		}),
		undeclaredQueue("orders.dlq", catalog.QueueSpec{VHost: "/", Bindings: []catalog.Binding{{Exchange: "dlx", RoutingKey: "orders"}}}),
		undeclaredQueue("stock", catalog.QueueSpec{VHost: "/", DeadLetterExchange: "dlx", DeadLetterQueue: "stock.parking"}),
		undeclaredQueue("stock.parking", catalog.QueueSpec{VHost: "/", Bindings: []catalog.Binding{{Exchange: "dlx", RoutingKey: "stock"}}}),
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("undeclared =\n%s\nwant\n%s", g, w)
	}
	// Labels and links are empty, not absent, when written out.
	b, err := json.Marshal(got[0])
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	if m["labels"] == nil || m["links"] == nil || m["namespace"] != "default" {
		t.Errorf("entity JSON = %s", b)
	}
	// Only undeclared items become entities.
	if got := discovery.Undeclared("main", inv, []discovery.Item{{Ref: "queue:orders", Kind: discovery.DriftMissing}}); len(got) != 0 {
		t.Errorf("a missing item became %+v", got)
	}
}

func undeclaredQueue(name string, spec catalog.QueueSpec) catalog.Entity {
	spec.Broker = "main"
	if spec.Bindings == nil {
		spec.Bindings = []catalog.Binding{}
	}
	return catalog.Entity{
		Kind: catalog.KindQueue, Namespace: catalog.DefaultNamespace, Name: name,
		Labels: map[string]string{}, Links: []catalog.Link{}, Queue: &spec,
	}
}
