package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/catalog"
	"switchboard/internal/tenancy"
)

const cat = "/api/v1/tenants/acme"

func catalogServer(t *testing.T) (*testServer, string) {
	t.Helper()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	s.must(201, "POST", cat+"/teams", owner, map[string]string{"slug": "payments", "name": "Payments"})
	return s, owner
}

func TestCatalog_RegisterRelateAndDraw(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "main-rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://10.0.0.9:5672/"})

	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "orders", "broker": "main-rabbit", "owner_team": "payments", "dead_letter_queue": "orders.dlq", "labels": map[string]string{"env": "prod"}})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "orders.dlq", "broker": "main-rabbit", "owner_team": "payments"})
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "checkout", "owner_team": "payments",
		"endpoints": []map[string]string{{"url": "http://10.0.0.5:8080", "protocol": "http"}}})
	s.must(201, "POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "publishes", "to": "queue:orders"})

	wantProblem(t, s.do("POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "publishes", "to": "queue:orders"}), 409, "conflict")
	wantProblem(t, s.do("POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "calls", "to": "service:checkout"}), 409, "conflict")
	wantProblem(t, s.do("POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "pokes", "to": "queue:orders"}), 422, "unprocessable")
	wantProblem(t, s.do("POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "calls", "to": "service:ghost"}), 422, "unprocessable")
	wantProblem(t, s.do("POST", cat+"/queues", owner, map[string]any{"name": "x", "broker": "nope", "owner_team": "payments"}), 422, "unprocessable")
	wantProblem(t, s.do("POST", cat+"/services", owner, map[string]any{"name": "Bad_Name", "owner_team": "payments"}), 400, "invalid")
	wantProblem(t, s.do("POST", cat+"/services", owner, map[string]any{"name": "svc", "owner_team": "payments", "url": "amqp://x/"}), 400, "invalid")

	var topo catalog.Topology
	s.must(200, "GET", cat+"/topology", owner, nil).json(t, &topo)
	if len(topo.Nodes) != 4 {
		t.Fatalf("nodes %+v", topo.Nodes)
	}
	edges := map[string]bool{}
	for _, e := range topo.Edges {
		edges[e.From+" "+e.Type+" "+e.To] = true
	}
	for _, want := range []string{"service:checkout publishes queue:orders", "queue:orders dead_letters_to queue:orders.dlq"} {
		if !edges[want] {
			t.Errorf("no edge %q in %+v", want, topo.Edges)
		}
	}
	status := map[string]catalog.Node{}
	for _, n := range topo.Nodes {
		status[n.ID] = n
	}
	if n := status["queue:orders"]; n.Status != "warning" || n.Problems[0].Code != catalog.ProblemNoConsumer {
		t.Errorf("queue:orders = %+v, want a no_consumer warning", n)
	}
	s.must(201, "POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "consumes", "to": "queue:orders"})
	var around catalog.Topology
	s.must(200, "GET", cat+"/topology?around=queue:orders.dlq&depth=1", owner, nil).json(t, &around)
	if len(around.Nodes) != 2 {
		t.Errorf("around the DLQ: %+v", around.Nodes)
	}
	var ps api.List[catalog.Problem]
	s.must(200, "GET", cat+"/problems?owner_team=payments", owner, nil).json(t, &ps)
	for _, p := range ps.Items {
		if p.Ref == "queue:orders" {
			t.Errorf("queue:orders still has a problem after it got a consumer: %+v", p)
		}
	}

	// In use: refused, naming what points at it; cascade removes both.
	r := s.do("DELETE", cat+"/queues/orders", owner, nil)
	wantProblem(t, r, 409, "conflict")
	if !strings.Contains(string(r.Body), "service:checkout publishes queue:orders") {
		t.Errorf("the refusal does not name the relation: %s", r.Body)
	}
	s.must(204, "DELETE", cat+"/queues/orders?cascade=true", owner, nil)
	var rels api.List[catalog.Relation]
	s.must(200, "GET", cat+"/relations?ref=service:checkout", owner, nil).json(t, &rels)
	if len(rels.Items) != 0 {
		t.Errorf("relations left: %+v", rels.Items)
	}
}

func TestCatalog_PatchAndETag(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	r := s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "checkout", "owner_team": "payments", "labels": map[string]string{"env": "dev", "tier": "web"}})
	etag := r.Header.Get("ETag")
	var svc api.EntityBody
	s.must(200, "PATCH", cat+"/services/checkout", owner, map[string]any{"description": "takes the money", "labels": map[string]any{"tier": nil}}, "If-Match", etag).json(t, &svc)
	if svc.Description != "takes the money" || svc.Labels["env"] != "dev" || svc.Labels["tier"] != "" || svc.Version != 2 {
		t.Fatalf("patched %+v", svc)
	}
	wantProblem(t, s.do("PATCH", cat+"/services/checkout", owner, map[string]any{"description": "stale"}, "If-Match", etag), 412, "precondition")
	wantProblem(t, s.do("PATCH", cat+"/services/checkout", owner, map[string]any{"name": "renamed"}), 422, "unprocessable")
	wantProblem(t, s.do("DELETE", cat+"/services/checkout", owner, nil, "If-Match", etag), 412, "precondition")

	var page api.List[api.EntityBody]
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "billing", "owner_team": "payments", "labels": map[string]string{"env": "prod"}})
	s.must(200, "GET", cat+"/services?labels=env!=prod", owner, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "checkout" {
		t.Fatalf("env!=prod: %+v", page.Items)
	}
	s.must(200, "GET", cat+"/services?q=MONEY", owner, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "checkout" {
		t.Fatalf("q=MONEY: %+v", page.Items)
	}
	s.must(200, "GET", cat+"/services?limit=1", owner, nil).json(t, &page)
	if len(page.Items) != 1 || page.NextCursor == "" {
		t.Fatalf("limit=1: %+v", page)
	}
}

// Decisions are made on the entity as loaded: an editor changes only their
// own team's entities and cannot delete one labelled env=prod; another
// tenant's entity is not found.
func TestCatalog_AuthorizationOnTheLoadedEntity(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	s.must(201, "POST", cat+"/teams", owner, map[string]string{"slug": "shipping", "name": "Shipping"})
	editor := s.member(owner, "acme", "ed@acme.test", tenancy.Editor)
	s.must(200, "POST", cat+"/teams/payments/members", owner, map[string]string{"email": "ed@acme.test"})
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "ship", "owner_team": "shipping"})
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "pay", "owner_team": "payments", "labels": map[string]string{"env": "prod"}})

	s.must(201, "POST", cat+"/services", editor, map[string]any{"name": "mine", "owner_team": "payments"})
	wantProblem(t, s.do("POST", cat+"/services", editor, map[string]any{"name": "theirs", "owner_team": "shipping"}), 403, "forbidden")
	wantProblem(t, s.do("PATCH", cat+"/services/ship", editor, map[string]any{"description": "x"}), 403, "forbidden")
	wantProblem(t, s.do("PATCH", cat+"/services/mine", editor, map[string]any{"owner_team": "shipping"}), 403, "forbidden")
	s.must(200, "PATCH", cat+"/services/pay", editor, map[string]any{"description": "ok"})
	wantProblem(t, s.do("DELETE", cat+"/services/pay", editor, nil), 403, "forbidden")
	s.must(204, "DELETE", cat+"/services/mine", editor, nil)
	wantProblem(t, s.do("POST", cat+"/relations", editor, map[string]string{"from": "service:ship", "type": "calls", "to": "service:pay"}), 403, "forbidden")

	other := s.signup("eve@evil.test", "evil")
	wantProblem(t, s.do("GET", cat+"/services/pay", other, nil), 404, "not_found")
	s.must(201, "POST", "/api/v1/tenants/evil/services", other, map[string]any{"name": "pay"})
	wantProblem(t, s.do("POST", "/api/v1/tenants/evil/relations", other, map[string]string{"from": "service:pay", "type": "calls", "to": "service:ship"}), 422, "unprocessable")
}

func tenantID(t testing.TB, s *testServer, slug string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT id FROM tenants WHERE slug = $1`, slug).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// A broker's credentials are sealed at rest: never answered, audited or
// kept in the clear, and the server's own connections get them back.
func TestCatalog_BrokerCredentialsAreSealed(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	var broker api.EntityBody
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "main-rabbit", "kind": "rabbitmq", "owner_team": "payments",
		"url": "amqp://app:s3cret-pass@10.0.0.9:5672/", "management_url": "http://admin:mgmt-pass@10.0.0.9:15672/"}).json(t, &broker)
	if broker.URL != "amqp://10.0.0.9:5672/" || broker.ManagementURL != "http://10.0.0.9:15672/" || broker.HasCredentials == nil || !*broker.HasCredentials {
		t.Fatalf("broker answered %+v", broker)
	}
	for _, path := range []string{cat + "/brokers/main-rabbit", cat + "/brokers", cat + "/audit", cat + "/catalog/export", cat + "/topology"} {
		if r := s.must(200, "GET", path, owner, nil); strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "mgmt-pass") {
			t.Fatalf("%s shows a password: %s", path, r.Body)
		}
	}
	var raw []byte
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT credentials FROM catalog_entities WHERE ref = 'broker:main-rabbit'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "s3cret") {
		t.Fatal("the password is stored in the clear")
	}
	tenant := tenantID(t, s, "acme")
	creds, err := s.App.Catalog.Credentials(t.Context(), tenant, "main-rabbit")
	if err != nil || creds.Password != "s3cret-pass" || creds.ManagementPassword != "mgmt-pass" || creds.Username != "app" {
		t.Fatalf("credentials %+v, %v", creds, err)
	}
	// A patch that does not name the URL keeps the credentials; a new URL
	// with a user replaces them.
	s.must(200, "PATCH", cat+"/brokers/main-rabbit", owner, map[string]any{"description": "the main one"})
	if creds, _ = s.App.Catalog.Credentials(t.Context(), tenant, "main-rabbit"); creds.Password != "s3cret-pass" {
		t.Fatalf("a patch lost the credentials: %+v", creds)
	}
	s.must(200, "PATCH", cat+"/brokers/main-rabbit", owner, map[string]any{"url": "amqp://other:next-pass@10.0.0.9:5672/"})
	if creds, _ = s.App.Catalog.Credentials(t.Context(), tenant, "main-rabbit"); creds.Password != "next-pass" {
		t.Fatalf("a new URL did not replace the credentials: %+v", creds)
	}
}

// Health checks run on their own and show on the service and the graph;
// the egress deny-list refuses a host the server must not reach.
func TestCatalog_HealthChecksAndTheEgressDenyList(t *testing.T) {
	t.Parallel()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer healthy.Close()
	s, owner := catalogServer(t)
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "up", "owner_team": "payments",
		"health_check": map[string]any{"url": healthy.URL + "/healthz", "interval_seconds": 5}})
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "down", "owner_team": "payments",
		"health_check": map[string]any{"url": "http://127.0.0.1:1/healthz", "interval_seconds": 5}})
	deadline := time.Now().Add(30 * time.Second)
	for {
		var up, down api.EntityBody
		s.must(200, "GET", cat+"/services/up", owner, nil).json(t, &up)
		s.must(200, "GET", cat+"/services/down", owner, nil).json(t, &down)
		if up.Health != nil && down.Health != nil {
			if up.Health.Status != "up" || down.Health.Status != "down" || down.Health.Error != "connection refused" {
				t.Fatalf("health: up %+v, down %+v", up.Health, down.Health)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no health check result within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var topo catalog.Topology
	s.must(200, "GET", cat+"/topology", owner, nil).json(t, &topo)
	for _, n := range topo.Nodes {
		if n.ID == "service:down" && n.Status != "down" {
			t.Fatalf("service:down drawn %s", n.Status)
		}
	}

	guarded := newTestServer(t, func(c *app.Config) { c.EgressDeny = []string{"127.0.0.0/8", "169.254.169.254"} })
	tok := guarded.signup("owner@acme.test", "acme")
	guarded.must(201, "POST", cat+"/teams", tok, map[string]string{"slug": "payments", "name": "Payments"})
	p := wantProblem(t, guarded.do("POST", cat+"/services", tok, map[string]any{"name": "meta", "owner_team": "payments",
		"health_check": map[string]any{"url": "http://169.254.169.254/latest/meta-data", "interval_seconds": 5}}), 422, "unprocessable")
	if p.Errors["health_check.url"] == "" {
		t.Fatalf("the refusal names no field: %+v", p)
	}
	wantProblem(t, guarded.do("POST", cat+"/brokers", tok, map[string]any{"name": "local", "kind": "kafka", "owner_team": "payments",
		"bootstrap_servers": []string{"localhost:9092"}}), 422, "unprocessable")
}
