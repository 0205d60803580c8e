package backstage_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"switchboard/internal/catalog"
	"switchboard/internal/catalog/backstage"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParse parses data and fails the test on any error.
func mustParse(t testing.TB, data []byte) *backstage.Result {
	t.Helper()
	res, err := backstage.Parse(data, backstage.Options{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, e := range res.Errors {
		t.Errorf("unexpected error: %s", e)
	}
	if len(res.Errors) > 0 {
		t.FailNow()
	}
	return res
}

func entityMap(t testing.TB, ents []catalog.Entity, withRaw bool) map[string]catalog.Entity {
	t.Helper()
	m := map[string]catalog.Entity{}
	for _, e := range ents {
		if !withRaw {
			e.Raw = nil
		}
		m[e.Ref().String()] = e
	}
	return m
}

func relationSet(rels []catalog.Relation) []string {
	out := make([]string, 0, len(rels))
	for _, r := range rels {
		out = append(out, r.From+" "+r.Type+" "+r.To)
	}
	sort.Strings(out)
	return out
}

// semantic decodes a JSON document so that key order does not count.
func semantic(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("raw is not JSON: %v", err)
	}
	return v
}

// assertSame checks two results hold the same entities (with equal
// fields, Raw compared as JSON values when withRaw) and relations.
func assertSame(t *testing.T, want, got *backstage.Result, withRaw bool) {
	t.Helper()
	wm, gm := entityMap(t, want.Entities, false), entityMap(t, got.Entities, false)
	for ref, w := range wm {
		g, ok := gm[ref]
		if !ok {
			t.Errorf("%s missing after the round trip", ref)
			continue
		}
		if !reflect.DeepEqual(w, g) {
			wj, _ := json.Marshal(w)
			gj, _ := json.Marshal(g)
			t.Errorf("%s differs:\nwant %s\ngot  %s", ref, wj, gj)
		}
	}
	for ref := range gm {
		if _, ok := wm[ref]; !ok {
			t.Errorf("%s appeared after the round trip", ref)
		}
	}
	if withRaw {
		wr, gr := entityMap(t, want.Entities, true), entityMap(t, got.Entities, true)
		for ref, w := range wr {
			if g, ok := gr[ref]; ok && !reflect.DeepEqual(semantic(t, w.Raw), semantic(t, g.Raw)) {
				t.Errorf("%s raw differs:\nwant %s\ngot  %s", ref, w.Raw, g.Raw)
			}
		}
	}
	if w, g := relationSet(want.Relations), relationSet(got.Relations); !slices.Equal(w, g) {
		t.Errorf("relations differ:\nwant %s\ngot  %s", strings.Join(w, "\n     "), strings.Join(g, "\n     "))
	}
}

func TestParse_ExampleCatalog(t *testing.T) {
	res := mustParse(t, append(append(readFile(t, "org.yaml"), "\n---\n"...), readFile(t, "systems.yaml")...))
	ents := entityMap(t, res.Entities, true)
	if len(ents) != len(res.Entities) || len(ents) != 23 {
		t.Fatalf("got %d entities (%d distinct), want 23", len(res.Entities), len(ents))
	}
	// Two users named guest in two namespaces are two entities.
	if ents["user:guest"].Description != "The default guest user" || ents["user:partners/guest"].Description != "A partner's guest user, a different person" {
		t.Errorf("guests: %+v / %+v", ents["user:guest"], ents["user:partners/guest"])
	}
	owners := map[string]string{
		"service:artist-web":              "boxoffice",
		"system:artist-engagement-portal": "boxoffice",             // group:default/boxoffice
		"service:wayback-search":          "user:breanna.davison",  // a user owns it
		"service:partners/partner-portal": "group:partners/team-a", // another namespace
		"domain:artists":                  "acme-corp",
	}
	for ref, want := range owners {
		if got := ents[ref].OwnerTeam; got != want {
			t.Errorf("%s owner = %q, want %q", ref, got, want)
		}
	}
	web := ents["service:artist-web"]
	wantSvc := &catalog.ServiceSpec{
		Endpoints:   []catalog.Endpoint{{URL: "http://artist-web.internal:8080", Protocol: "http"}, {URL: "http://artist-web.internal:9090", Protocol: "grpc"}},
		HealthCheck: &catalog.HealthCheck{URL: "http://artist-web.internal:8080/healthz", IntervalSeconds: 15},
	}
	if !reflect.DeepEqual(web.Service, wantSvc) {
		t.Errorf("artist-web service = %+v, want %+v", web.Service, wantSvc)
	}
	if !reflect.DeepEqual(web.Labels, map[string]string{"env": "prod", "tier": "1"}) ||
		!reflect.DeepEqual(web.Annotations, map[string]string{"github.com/project-slug": "example/artist-web"}) ||
		len(web.Links) != 2 || web.Links[1] != (catalog.Link{URL: "https://example.com/group", Title: "Example Group", Type: "group"}) {
		t.Errorf("artist-web metadata = %+v", web)
	}
	if q := ents["queue:artist-events"].Queue; q == nil || q.Broker != "main-rabbit" || q.DeadLetterQueue != "artist-events.dlq" || len(q.Bindings) != 2 {
		t.Errorf("queue artist-events = %+v", q)
	}
	if q := ents["topic:artist-lookups"].Topic; q == nil || *q != (catalog.TopicSpec{Broker: "events", Partitions: 6, DeadLetterTopic: "artist-lookups.dlq"}) {
		t.Errorf("topic = %+v", q)
	}
	if b := ents["broker:events"].Broker; b == nil || b.Type != catalog.Kafka || len(b.BootstrapServers) != 2 || b.TLS == nil || !b.TLS.Enabled {
		t.Errorf("kafka broker = %+v", b)
	}
	if b := ents["broker:main-rabbit"].Broker; b == nil || b.Type != catalog.RabbitMQ || b.URL != "amqp://rabbit.internal:5672/" {
		t.Errorf("rabbit broker = %+v", b)
	}
	for _, ref := range []string{"location:example-groups", "template:create-react-app-template", "resource:artists-db", "api:wayback-api"} {
		if _, ok := ents[ref]; !ok {
			t.Errorf("%s not kept", ref)
		}
	}
	// Raw keeps what the catalog does not model.
	var raw struct {
		Spec struct {
			Definition string `json:"definition"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(ents["api:artist-api"].Raw, &raw); err != nil || !strings.Contains(raw.Spec.Definition, "List all artists") {
		t.Errorf("artist-api raw = %s (%v)", ents["api:artist-api"].Raw, err)
	}
	rels := relationSet(res.Relations)
	for _, want := range []string{
		"group:infrastructure child_of group:acme-corp",
		"group:partners/team-a child_of group:acme-corp",
		"user:partners/guest member_of group:partners/team-a",
		"user:breanna.davison member_of group:boxoffice",
		"service:artist-web depends_on resource:artists-db",
		"service:artist-web depends_on service:wayback-search",
		"service:artist-web provides_api api:artist-api",
		"service:artist-web consumes_api api:wayback-api",
		"service:artist-web part_of system:artist-engagement-portal",
		"system:artist-engagement-portal part_of domain:artists",
		"service:artist-web publishes queue:artist-events",
		"service:artist-web publishes topic:artist-lookups",
		"service:artist-web calls service:wayback-search",
		"service:wayback-search consumes queue:artist-events",
		"queue:artist-events dead_letters_to queue:artist-events.dlq",
		"service:partners/partner-portal consumes_api api:artist-api",
	} {
		if !slices.Contains(rels, want) {
			t.Errorf("missing relation %s", want)
		}
	}
	if len(rels) != 24 {
		t.Errorf("got %d relations, want 24:\n%s", len(rels), strings.Join(rels, "\n"))
	}
}

func TestParse_KeepsReferencesToEntitiesNotInTheFile(t *testing.T) {
	res := mustParse(t, []byte(`apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments
spec:
  type: team
  parent: group:finance/treasury
  children: []
`))
	if got := relationSet(res.Relations); !slices.Equal(got, []string{"group:payments child_of group:finance/treasury"}) {
		t.Errorf("relations = %v", got)
	}
}

func TestRoundTrip_ExampleCatalog(t *testing.T) {
	for _, f := range []string{"org.yaml", "systems.yaml"} {
		t.Run(f, func(t *testing.T) {
			first := mustParse(t, readFile(t, f))
			out, err := backstage.Export(first.Entities, first.Relations)
			if err != nil {
				t.Fatal(err)
			}
			second := mustParse(t, out)
			assertSame(t, first, second, true)
			again, err := backstage.Export(second.Entities, second.Relations)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(out) {
				t.Errorf("export is not stable:\n%s\n----\n%s", out, again)
			}
		})
	}
}

// Entities read back from the database have Raw with its keys reordered;
// the round trip still holds.
func TestRoundTrip_RawFromStore(t *testing.T) {
	first := mustParse(t, readFile(t, "systems.yaml"))
	ents := slices.Clone(first.Entities)
	for i := range ents {
		var v any
		if err := json.Unmarshal(ents[i].Raw, &v); err != nil {
			t.Fatal(err)
		}
		ents[i].Raw, _ = json.Marshal(v) // sorted keys
	}
	out, err := backstage.Export(ents, first.Relations)
	if err != nil {
		t.Fatal(err)
	}
	assertSame(t, first, mustParse(t, out), true)
}

// Changes made through the API (owner, labels, links, specs, relations)
// come out in the export and read back.
func TestRoundTrip_ChangedEntities(t *testing.T) {
	first := mustParse(t, readFile(t, "systems.yaml"))
	ents := slices.Clone(first.Entities)
	for i := range ents {
		e := &ents[i]
		switch e.Ref().String() {
		case "service:artist-web":
			e.Description = "Changed"
			e.OwnerTeam = "user:guest"
			e.Labels = map[string]string{"env": "staging"}
			e.Links = []catalog.Link{{URL: "https://example.com/group", Title: "Renamed"}}
			e.Service = &catalog.ServiceSpec{Endpoints: []catalog.Endpoint{{URL: "https://artist-web.example.com", Protocol: "http"}}}
		case "topic:artist-lookups":
			e.Topic = &catalog.TopicSpec{Broker: "events", Partitions: 12}
		case "resource:artists-db":
			e.OwnerTeam = ""
		}
	}
	var rels []catalog.Relation
	for _, r := range first.Relations {
		if r.From == "service:artist-web" && r.Type == catalog.DependsOn {
			continue // dropped
		}
		rels = append(rels, r)
	}
	rels = append(rels,
		catalog.Relation{From: "service:artist-web", Type: catalog.PartOf, To: "system:other"},
		catalog.Relation{From: "service:wayback-search", Type: catalog.DeadLettersTo, To: "queue:artist-events.dlq"},
		catalog.Relation{From: "service:wayback-search", Type: catalog.StepOf, To: "saga:checkout"},
		catalog.Relation{From: "queue:artist-events.dlq", Type: catalog.DependsOn, To: "queue:missing"},
	)
	out, err := backstage.Export(ents, rels)
	if err != nil {
		t.Fatal(err)
	}
	want := &backstage.Result{Entities: ents, Relations: rels}
	assertSame(t, want, mustParse(t, out), false)
}

// Entities made through the API have no imported document: they are
// written as Component and Resource documents with switchboard.io
// annotations.
func TestRoundTrip_EntitiesWithoutDocument(t *testing.T) {
	ents := []catalog.Entity{
		{Kind: catalog.KindService, Namespace: "default", Name: "checkout", OwnerTeam: "payments", Description: "Takes orders",
			Labels: map[string]string{"env": "prod"}, Annotations: map[string]string{}, Links: []catalog.Link{{URL: "https://docs.example.com/checkout", Title: "Docs", Type: "docs"}},
			Service: &catalog.ServiceSpec{
				Endpoints:   []catalog.Endpoint{{URL: "http://10.0.0.5:8080", Protocol: "http"}, {URL: "http://10.0.0.5:9090", Protocol: "grpc"}, {URL: "amqps://mq:5671", Protocol: "amqp"}},
				HealthCheck: &catalog.HealthCheck{URL: "http://10.0.0.5:8080/healthz", IntervalSeconds: 10},
			}},
		{Kind: catalog.KindService, Namespace: "default", Name: "billing", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Service: &catalog.ServiceSpec{Endpoints: []catalog.Endpoint{}}},
		{Kind: catalog.KindBroker, Namespace: "default", Name: "main-rabbit", OwnerTeam: "payments", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Broker: &catalog.BrokerSpec{Type: catalog.RabbitMQ, URL: "amqp://rabbit:5672/", VHost: "/", ManagementURL: "http://rabbit:15672"}},
		{Kind: catalog.KindBroker, Namespace: "default", Name: "events", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Broker: &catalog.BrokerSpec{Type: catalog.Kafka, BootstrapServers: []string{"k1:9092", "k2:9092"},
				SASL: &catalog.KafkaSASL{Mechanism: "SCRAM-SHA-512", Username: "svc"}, TLS: &catalog.KafkaTLS{Enabled: true, ServerName: "kafka.example.com", InsecureSkipVerify: true}}},
		{Kind: catalog.KindQueue, Namespace: "default", Name: "orders", OwnerTeam: "payments", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Queue: &catalog.QueueSpec{Broker: "main-rabbit", VHost: "/", Bindings: []catalog.Binding{{Exchange: "orders", RoutingKey: "order.*"}}, DeadLetterExchange: "dlx", DeadLetterQueue: "orders.dlq"}},
		// A queue and a topic of one name cannot both be Resource documents.
		{Kind: catalog.KindQueue, Namespace: "default", Name: "payments", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Queue: &catalog.QueueSpec{Broker: "main-rabbit", Bindings: []catalog.Binding{}}},
		{Kind: catalog.KindTopic, Namespace: "default", Name: "payments", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Topic: &catalog.TopicSpec{Broker: "events", Partitions: 3, DeadLetterTopic: "payments.dlq"}},
		{Kind: catalog.KindSaga, Namespace: "default", Name: "place-order", OwnerTeam: "payments", Labels: map[string]string{}, Annotations: map[string]string{}, Links: []catalog.Link{},
			Saga: &catalog.SagaSpec{Steps: []catalog.SagaStep{{Name: "charge", Service: "billing", Action: "charge", Compensation: "refund"}, {Name: "ship", Service: "checkout", Action: "ship"}}}},
	}
	rels := []catalog.Relation{
		{From: "service:checkout", Type: catalog.Publishes, To: "queue:orders"},
		{From: "service:checkout", Type: catalog.Publishes, To: "topic:payments"},
		{From: "service:checkout", Type: catalog.Calls, To: "service:billing"},
		{From: "service:billing", Type: catalog.Consumes, To: "queue:payments"},
		{From: "service:billing", Type: catalog.DependsOn, To: "queue:payments"},
		{From: "queue:orders", Type: catalog.DeadLettersTo, To: "queue:orders.dlq"},
		{From: "service:billing", Type: catalog.StepOf, To: "saga:place-order"},
		{From: "service:checkout", Type: catalog.StepOf, To: "saga:place-order"},
		{From: "service:checkout", Type: catalog.PartOf, To: "system:shop"},
		{From: "service:checkout", Type: catalog.PartOf, To: "system:legacy"},
	}
	out, err := backstage.Export(ents, rels)
	if err != nil {
		t.Fatal(err)
	}
	got := mustParse(t, out)
	assertSame(t, &backstage.Result{Entities: ents, Relations: rels}, got, false)
	if !strings.Contains(string(out), "kind: Component") || !strings.Contains(string(out), "switchboard.io/kind: queue") {
		t.Errorf("export:\n%s", out)
	}
}

func TestExport_IsOrderedByKindNamespaceName(t *testing.T) {
	res := mustParse(t, readFile(t, "org.yaml"))
	slices.Reverse(res.Entities)
	out, err := backstage.Export(res.Entities, res.Relations)
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, out)
	var refs []string
	for _, e := range again.Entities {
		refs = append(refs, e.Ref().String())
	}
	want := []string{"group:acme-corp", "group:backstage", "group:boxoffice", "group:infrastructure", "group:partners/team-a", "user:breanna.davison", "user:guest", "user:partners/guest"}
	if !slices.Equal(refs, want) {
		t.Errorf("order = %v, want %v", refs, want)
	}
}

// bigCatalog is a stream of n services, each publishing to its own queue
// and depending on and calling the next service.
func bigCatalog(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: svc-%d
  labels: {env: prod}
  annotations:
    switchboard.io/endpoints: http://svc-%d:8080
    switchboard.io/publishes: resource:q-%d
    switchboard.io/calls: component:svc-%d
spec:
  type: service
  lifecycle: production
  owner: team-%d
  dependsOn: [component:svc-%d, resource:q-%d]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: q-%d
  annotations:
    switchboard.io/broker: main
spec:
  type: queue
  owner: team-%d
`, i, i, i, (i+1)%n, i%50, (i+1)%n, (i+1)%n, i, i%50)
	}
	return []byte(b.String())
}

func TestParse_LargeCatalog(t *testing.T) {
	res := mustParse(t, bigCatalog(2500))
	if len(res.Entities) != 5000 || len(res.Relations) != 10000 {
		t.Fatalf("got %d entities, %d relations", len(res.Entities), len(res.Relations))
	}
}

func BenchmarkParse(b *testing.B) {
	data := bigCatalog(2500) // 5,000 entities, 10,000 relations
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := backstage.Parse(data, backstage.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExport(b *testing.B) {
	res := mustParse(b, bigCatalog(2500))
	for b.Loop() {
		if _, err := backstage.Export(res.Entities, res.Relations); err != nil {
			b.Fatal(err)
		}
	}
}
