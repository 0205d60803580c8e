package discovery_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/discovery"
)

// The scheduled re-check reads every broker and keeps each declared
// topic's drift current: a topic missing from the broker shows drift, and
// stops showing it once the broker has it.
func TestCheckAll_KeepsDriftCurrent(t *testing.T) {
	db := dbtest.New(t)
	ctx := t.Context()
	var tenant uuid.UUID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	store := catalog.New(db, nil)
	all := func(context.Context, access.Object) error { return nil }
	cluster, client := kafkaCluster(t)
	if _, err := store.Create(ctx, tenant, catalog.Entity{Kind: catalog.KindBroker, Name: "events",
		Broker: &catalog.BrokerSpec{Type: catalog.Kafka, BootstrapServers: cluster.ListenAddrs()}}, nil, all); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, tenant, catalog.Entity{Kind: catalog.KindTopic, Name: "orders",
		Topic: &catalog.TopicSpec{Broker: "events", Partitions: 2}}, nil, all); err != nil {
		t.Fatal(err)
	}
	checker := &discovery.Checker{Store: store}
	drifted := func() bool {
		topo, err := store.Topology(ctx, tenant, catalog.TopologyQuery{}, all)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range topo.Nodes {
			for _, p := range n.Problems {
				if n.ID == "topic:orders" && p.Code == catalog.ProblemDrift {
					return true
				}
			}
		}
		return false
	}
	checker.CheckAll(ctx)
	if !drifted() {
		t.Fatal("a declared topic the broker lacks shows no drift")
	}
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	checker.CheckAll(ctx)
	if drifted() {
		t.Fatal("the topic's drift stayed after the broker got it")
	}
}
