package discovery_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	rabbithole "github.com/michaelklishin/rabbit-hole/v3"
	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/catalog"
	"switchboard/internal/discovery"
	"switchboard/internal/problem"
)

const (
	managementURL = "http://127.0.0.1:15672"
	amqpAddr      = "127.0.0.1:5672"
)

// rabbitVHost creates a virtual host of its own for one test, open to
// guest, and deletes it (with all it holds) when the test ends.
func rabbitVHost(t *testing.T) (vhost string, admin *rabbithole.Client) {
	t.Helper()
	admin, err := rabbithole.NewClient(managementURL, "guest", "guest")
	if err != nil {
		t.Fatal(err)
	}
	admin.SetTimeout(10 * time.Second)
	vhost = unique(t, "discovery")
	closeBody(t)(admin.PutVhost(vhost, rabbithole.VhostSettings{Description: "discovery test"}))
	closeBody(t)(admin.UpdatePermissionsIn(vhost, "guest", rabbithole.Permissions{Configure: ".*", Write: ".*", Read: ".*"}))
	t.Cleanup(func() {
		res, err := admin.DeleteVhost(vhost)
		if err != nil {
			t.Errorf("delete vhost %s: %v", vhost, err)
			return
		}
		res.Body.Close()
	})
	return vhost, admin
}

// closeBody checks a management call's answer and closes its body.
func closeBody(t *testing.T) func(*http.Response, error) {
	return func(res *http.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
}

// amqpChannel opens a connection and a channel to vhost, closed when the
// test ends.
func amqpChannel(t *testing.T, vhost string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig("amqp://guest:guest@"+amqpAddr+"/", amqp.Config{
		Vhost:      vhost,
		Properties: amqp.Table{"connection_name": "discovery-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rabbitConfig(vhost string) discovery.RabbitConfig {
	return discovery.RabbitConfig{
		Name:          "main-rabbit",
		ManagementURL: managementURL,
		Username:      "guest",
		Password:      "guest",
		VHost:         vhost,
		Client:        &http.Client{Transport: http.DefaultTransport},
	}
}

func TestRabbitMQ_ListsQueuesExchangesBindingsConsumers(t *testing.T) {
	vhost, admin := rabbitVHost(t)
	ch := amqpChannel(t, vhost)

	must(t, ch.ExchangeDeclare("orders.dlx", "direct", true, false, false, false, nil))
	must(t, ch.ExchangeDeclare("events", "topic", true, false, false, false, nil))
	_, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{
		"x-dead-letter-exchange":    "orders.dlx",
		"x-dead-letter-routing-key": "orders.dead",
	})
	must(t, err)
	_, err = ch.QueueDeclare("orders.dlq", true, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("audit", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	must(t, err)
	must(t, ch.QueueBind("orders.dlq", "orders.dead", "orders.dlx", false, nil))
	must(t, ch.QueueBind("orders", "order.*", "events", false, nil))
	// A dead-letter exchange set by policy, not by argument.
	_, err = ch.QueueDeclare("payments", true, false, false, false, nil)
	must(t, err)
	closeBody(t)(admin.PutPolicy(vhost, "payments-dlx", rabbithole.Policy{
		Pattern: "^payments$", ApplyTo: "queues",
		Definition: rabbithole.PolicyDefinition{"dead-letter-exchange": "payments.dlx"},
	}))
	must(t, ch.PublishWithContext(context.Background(), "", "orders.dlq", false, false, amqp.Publishing{Body: []byte("dead")}))
	_, err = ch.Consume("orders", "orders-worker-1", false, false, false, false, nil)
	must(t, err)

	var inv discovery.Inventory
	eventually(t, "inventory shows the consumer, the policy and the ready message", func() error {
		inv, err = discovery.RabbitMQ(context.Background(), rabbitConfig(vhost))
		if err != nil {
			return err
		}
		if len(inv.Consumers) != 1 || queue(inv, "payments").DeadLetterExchange != "payments.dlx" ||
			queue(inv, "orders.dlq").MessagesReady != 1 || queue(inv, "orders").Consumers != 1 {
			return errString("not yet")
		}
		return nil
	})

	if inv.Type != "rabbitmq" || inv.VHost != vhost {
		t.Errorf("type, vhost = %q, %q", inv.Type, inv.VHost)
	}
	var names []string
	for _, q := range inv.Queues {
		if q.VHost != vhost {
			t.Errorf("queue %s from vhost %q, only %q was asked for", q.Name, q.VHost, vhost)
		}
		names = append(names, q.Name)
	}
	if want := []string{"audit", "orders", "orders.dlq", "payments"}; !slices.Equal(names, want) {
		t.Errorf("queues = %v, want %v", names, want)
	}
	orders := queue(inv, "orders")
	if !orders.DeadLettering || orders.DeadLetterExchange != "orders.dlx" || orders.DeadLetterRoutingKey != "orders.dead" ||
		!orders.Durable || orders.Type != "classic" {
		t.Errorf("orders = %+v", orders)
	}
	if q := queue(inv, "audit"); q.Type != "quorum" || q.DeadLettering {
		t.Errorf("audit = %+v", q)
	}
	if q := queue(inv, "payments"); !q.DeadLettering || q.Policy != "payments-dlx" {
		t.Errorf("payments = %+v", q)
	}
	if c := inv.Consumers[0]; c.Queue != "orders" || c.ConsumerTag != "orders-worker-1" || c.Channel == "" || c.Connection == "" {
		t.Errorf("consumer = %+v", c)
	}
	if !slices.ContainsFunc(inv.Exchanges, func(x discovery.Exchange) bool { return x.Name == "events" && x.Type == "topic" }) {
		t.Errorf("exchanges %+v lack the topic exchange events", inv.Exchanges)
	}
	want := discovery.Binding{VHost: vhost, Source: "orders.dlx", Destination: "orders.dlq", DestinationType: "queue", RoutingKey: "orders.dead"}
	if !slices.Contains(inv.Bindings, want) {
		t.Errorf("bindings %+v lack %+v", inv.Bindings, want)
	}

	// The catalog declares orders with the right dead-letter queue, a
	// queue the broker lacks, and payments with another dead-letter
	// exchange than its policy sets.
	declared := []catalog.Entity{
		queueEntity("orders", vhost, "orders.dlx", "orders.dlq"),
		queueEntity("shipments", vhost, "", ""),
		queueEntity("payments", vhost, "payments.dead", ""),
	}
	drift := discovery.Drift("main-rabbit", declared, inv)
	wantDrift := []discovery.Item{
		{Ref: "queue:audit", Kind: discovery.DriftUndeclared},
		{Ref: "queue:orders.dlq", Kind: discovery.DriftUndeclared},
		{Ref: "queue:payments", Kind: discovery.DriftDifferent, Field: "dead_letter_exchange", Declared: "payments.dead", Actual: "payments.dlx"},
		{Ref: "queue:shipments", Kind: discovery.DriftMissing},
	}
	assertDrift(t, drift, wantDrift)

	imported := discovery.Undeclared("main-rabbit", inv, drift)
	if len(imported) != 2 || imported[0].Name != "audit" || imported[1].Name != "orders.dlq" {
		t.Fatalf("undeclared entities = %+v", imported)
	}
	if q := imported[0].Queue; q == nil || q.Broker != "main-rabbit" || q.VHost != vhost {
		t.Errorf("audit spec = %+v", q)
	}
}

func TestRabbitMQ_RefusedCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := rabbitConfig("")
	c.Password = "not-the-guest-password"
	_, err := discovery.RabbitMQ(ctx, c)
	assertBadGateway(t, ctx, err, "the broker refused the stored credentials", c.Password)
	if p, _ := problem.As(err); p != nil && !containsAll(p.Message, "main-rabbit") {
		t.Errorf("message %q does not name the broker", p.Message)
	}
}

func TestRabbitMQ_UnreachableBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := rabbitConfig("")
	c.ManagementURL = "http://admin:url-secret@" + closedAddr(t)
	c.Password = "field-secret"
	_, err := discovery.RabbitMQ(ctx, c)
	assertBadGateway(t, ctx, err, `broker "main-rabbit" did not answer`, "url-secret", "field-secret", "admin:")
}

func TestRabbitMQ_UnknownVHost(t *testing.T) {
	_, err := discovery.RabbitMQ(context.Background(), rabbitConfig(unique(t, "no-such-vhost")))
	if problem.Code(err) != problem.CodeUnprocessable {
		t.Fatalf("err = %v, want %s", err, problem.CodeUnprocessable)
	}
}

func TestRabbitMQ_RejectsOtherSchemes(t *testing.T) {
	c := rabbitConfig("")
	c.ManagementURL = "amqp://guest:guest@127.0.0.1:5672/"
	_, err := discovery.RabbitMQ(context.Background(), c)
	if problem.Code(err) != problem.CodeInvalid {
		t.Fatalf("err = %v, want %s", err, problem.CodeInvalid)
	}
	if containsAll(err.Error(), "guest:guest") {
		t.Errorf("error %q holds the URL's user information", err)
	}
}

func queue(inv discovery.Inventory, name string) discovery.Queue {
	for _, q := range inv.Queues {
		if q.Name == name {
			return q
		}
	}
	return discovery.Queue{}
}

func queueEntity(name, vhost, dlx, dlq string) catalog.Entity {
	return catalog.Entity{
		Kind: catalog.KindQueue, Namespace: catalog.DefaultNamespace, Name: name,
		Queue: &catalog.QueueSpec{Broker: "main-rabbit", VHost: vhost, DeadLetterExchange: dlx, DeadLetterQueue: dlq},
	}
}

type errString string

func (e errString) Error() string { return string(e) }
