package api_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchboard/internal/api"
	"switchboard/internal/discovery"
)

// kafkaCluster starts an in-process Kafka cluster holding topic
// "payments" (3 partitions) for the test, and returns its seeds.
func kafkaCluster(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}
	return c.ListenAddrs()
}

// Discovery reads the real broker, marks drift on what the catalog
// declares, and one action registers what it holds undeclared.
func TestDiscovery_KafkaDriftAndImport(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	seeds := kafkaCluster(t)
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "events", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": seeds})
	s.must(201, "POST", cat+"/topics", owner, map[string]any{"name": "ghost", "broker": "events", "owner_team": "payments", "partitions": 1})
	var d discovery.Result
	s.must(200, "GET", cat+"/brokers/events/discover", owner, nil).json(t, &d)
	kinds := map[string]string{}
	for _, it := range d.Drift {
		kinds[it.Ref] = it.Kind
	}
	if kinds["topic:ghost"] != "missing" || kinds["topic:payments"] != "undeclared" {
		t.Fatalf("drift %+v", d.Drift)
	}
	var topo struct {
		Nodes []struct {
			ID       string
			Problems []struct{ Code string }
		}
	}
	s.must(200, "GET", cat+"/topology", owner, nil).json(t, &topo)
	drifted := false
	for _, n := range topo.Nodes {
		for _, p := range n.Problems {
			drifted = drifted || (n.ID == "topic:ghost" && p.Code == "drift")
		}
	}
	if !drifted {
		t.Fatalf("topic:ghost shows no drift: %+v", topo.Nodes)
	}
	var imp api.DiscoveryImportResponse
	s.must(200, "POST", cat+"/brokers/events/discover/import", owner, nil).json(t, &imp)
	if len(imp.Created) != 1 || imp.Created[0].Name != "payments" || imp.Created[0].Partitions != 3 || imp.Created[0].OwnerTeam != "payments" {
		t.Fatalf("imported %+v", imp.Created)
	}
	// A broker that does not answer is a 502 naming it, soon.
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "gone", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": []string{"127.0.0.1:1"}})
	p := wantProblem(t, s.do("GET", cat+"/brokers/gone/discover", owner, nil), 502, "bad_gateway")
	if p.Detail == "" {
		t.Fatal("no detail")
	}
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://127.0.0.1:5672/"})
	wantProblem(t, s.do("GET", cat+"/brokers/rabbit/discover", owner, nil), 422, "unprocessable")
}
