package discovery_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchboard/internal/catalog"
	"switchboard/internal/discovery"
)

// kafkaCluster starts an in-process Kafka cluster, closed when the test
// ends, and an admin client to it.
func kafkaCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

func TestKafka_ListsTopicsAndGroupLag(t *testing.T) {
	ctx := context.Background()
	c, cl := kafkaCluster(t)
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopics(ctx, 3, 1, nil, "payments")
	must(t, err)
	must(t, created.Error())
	created, err = adm.CreateTopics(ctx, 1, 1, nil, "orders")
	must(t, err)
	must(t, created.Error())

	// Five records on payments/0; the group billing has committed up to
	// offset 2, so it is 3 behind.
	for i := range 5 {
		must(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Partition: 0, Value: []byte{byte(i)}}).FirstErr())
	}
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "payments", Partition: 0, At: 2, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, "billing", commits)
	must(t, err)
	must(t, resp.Error())

	inv, err := discovery.Kafka(ctx, discovery.KafkaConfig{Name: "events", Seeds: c.ListenAddrs()})
	must(t, err)
	if inv.Type != "kafka" {
		t.Errorf("type = %q", inv.Type)
	}
	var user []discovery.Topic
	for _, tp := range inv.Topics {
		if !tp.Internal {
			user = append(user, tp)
		}
	}
	wantTopics := []discovery.Topic{
		{Name: "orders", Partitions: 1, ReplicationFactor: 1},
		{Name: "payments", Partitions: 3, ReplicationFactor: 1},
	}
	if !slices.Equal(user, wantTopics) {
		t.Errorf("topics = %+v, want %+v", user, wantTopics)
	}
	if len(inv.ConsumerGroups) != 1 {
		t.Fatalf("groups = %+v", inv.ConsumerGroups)
	}
	g := inv.ConsumerGroups[0]
	if g.Group != "billing" || g.Members != 0 || g.TotalLag != 3 ||
		!slices.Equal(g.Lag, []discovery.TopicLag{{Topic: "payments", Lag: 3}}) {
		t.Errorf("group = %+v", g)
	}
	if g.State == "" {
		t.Errorf("group %q has no state", g.Group)
	}

	declared := []catalog.Entity{
		topicEntity("payments", "events", 6),
		topicEntity("refunds", "events", 1),
		topicEntity("elsewhere", "other-cluster", 1), // another broker's: not compared
	}
	drift := discovery.Drift("events", declared, inv)
	assertDrift(t, drift, []discovery.Item{
		{Ref: "topic:orders", Kind: discovery.DriftUndeclared},
		{Ref: "topic:payments", Kind: discovery.DriftDifferent, Field: "partitions", Declared: "6", Actual: "3"},
		{Ref: "topic:refunds", Kind: discovery.DriftMissing},
	})
	imported := discovery.Undeclared("events", inv, drift)
	if len(imported) != 1 || imported[0].Name != "orders" || imported[0].Topic == nil ||
		*imported[0].Topic != (catalog.TopicSpec{Broker: "events", Partitions: 1}) {
		t.Errorf("undeclared entities = %+v", imported)
	}
}

func TestKafka_UnreachableBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := discovery.Kafka(ctx, discovery.KafkaConfig{
		Name: "events", Seeds: []string{closedAddr(t)},
		SASLMechanism: "PLAIN", Username: "app", Password: "kafka-secret",
	})
	assertBadGateway(t, ctx, err, `broker "events" did not answer`, "kafka-secret")
}

func TestKafka_RefusedCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "right-password"))
	must(t, err)
	defer c.Close()

	_, err = discovery.Kafka(ctx, discovery.KafkaConfig{
		Name: "events", Seeds: c.ListenAddrs(),
		SASLMechanism: "PLAIN", Username: "admin", Password: "wrong-password",
	})
	// kfake drops the connection on a wrong PLAIN password where Kafka
	// answers SASL_AUTHENTICATION_FAILED (that answer's wording is
	// checked in TestKafkaErr_RefusedCredentials): either way a 502 that
	// names the broker and holds no password.
	assertBadGateway(t, ctx, err, `broker "events"`, "wrong-password", "right-password")

	inv, err := discovery.Kafka(ctx, discovery.KafkaConfig{
		Name: "events", Seeds: c.ListenAddrs(),
		SASLMechanism: "PLAIN", Username: "admin", Password: "right-password",
	})
	must(t, err)
	if inv.Type != "kafka" {
		t.Errorf("type = %q", inv.Type)
	}
}

func topicEntity(name, broker string, partitions int) catalog.Entity {
	return catalog.Entity{
		Kind: catalog.KindTopic, Namespace: catalog.DefaultNamespace, Name: name,
		Topic: &catalog.TopicSpec{Broker: broker, Partitions: partitions},
	}
}
