package ui

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"switchboard/internal/catalog"
	"switchboard/internal/problem"
	"switchboard/views"
)

func TestEntityOf_TakesCredentialsOutOfABrokerURL(t *testing.T) {
	e, creds, errs := entityOf(views.EntityForm{Kind: catalog.KindBroker, Name: "main-rabbit", BrokerType: "rabbitmq",
		URL: "amqp://app:s3cret@rabbit.internal:5672/"})
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if creds == nil || creds.Username != "app" || creds.Password != "s3cret" {
		t.Fatalf("credentials %+v, want app / s3cret", creds)
	}
	if strings.Contains(e.Broker.URL, "s3cret") || strings.Contains(e.Broker.URL, "app@") || e.Broker.URL != "amqp://rabbit.internal:5672/" {
		t.Errorf("the stored URL is %q, want it without user and password", e.Broker.URL)
	}
	_, creds, _ = entityOf(views.EntityForm{Kind: catalog.KindBroker, Name: "b", URL: "amqp://127.0.0.1:5672/"})
	if creds != nil {
		t.Errorf("a URL without user info gave credentials %+v", creds)
	}
}

func TestEntityOf_ReadsEachKindsFields(t *testing.T) {
	e, _, errs := entityOf(views.EntityForm{Kind: catalog.KindService, Name: "checkout", OwnerTeam: "payments",
		Labels: "env=prod, tier=web", Links: "runbook https://wiki.example.com/checkout\nhttps://example.com",
		Endpoints: "grpc http://10.0.0.5:9090\nhttp://10.0.0.5:8080", HealthURL: "http://10.0.0.5:8080/healthz"})
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if e.Labels["env"] != "prod" || e.Labels["tier"] != "web" || len(e.Labels) != 2 {
		t.Errorf("labels %v", e.Labels)
	}
	if len(e.Links) != 2 || e.Links[0].Title != "runbook" || e.Links[1].Title != "" {
		t.Errorf("links %+v", e.Links)
	}
	eps := e.Service.Endpoints
	if len(eps) != 2 || eps[0].Protocol != "grpc" || eps[1].Protocol != "http" || eps[1].URL != "http://10.0.0.5:8080" {
		t.Errorf("endpoints %+v", eps)
	}
	if hc := e.Service.HealthCheck; hc == nil || hc.IntervalSeconds != 30 {
		t.Errorf("health check %+v, want the default interval of 30 s", hc)
	}

	q, _, _ := entityOf(views.EntityForm{Kind: catalog.KindQueue, Name: "orders", Broker: "main-rabbit", Bindings: "orders order.created\naudit"})
	if b := q.Queue.Bindings; len(b) != 2 || b[0].RoutingKey != "order.created" || b[1].Exchange != "audit" {
		t.Errorf("bindings %+v", b)
	}
	s, _, _ := entityOf(views.EntityForm{Kind: catalog.KindSaga, Name: "order", Steps: "reserve inventory reserve release stock"})
	if st := s.Saga.Steps; len(st) != 1 || st[0].Service != "inventory" || st[0].Compensation != "release stock" {
		t.Errorf("steps %+v", st)
	}

	for _, tc := range []struct {
		form  views.EntityForm
		field string
	}{
		{views.EntityForm{Kind: catalog.KindService, Name: "a", Labels: "env"}, "labels"},
		{views.EntityForm{Kind: catalog.KindService, Name: "a", HealthURL: "http://x/h", HealthInterval: "often"}, "health_interval"},
		{views.EntityForm{Kind: catalog.KindTopic, Name: "t", Partitions: "many"}, "partitions"},
		{views.EntityForm{Kind: catalog.KindSaga, Name: "s", Steps: "only two"}, "steps"},
		{views.EntityForm{Kind: catalog.KindBroker, Name: "b", URL: "amqp://a b:%zz@host/"}, "url"},
	} {
		if _, _, errs := entityOf(tc.form); errs[tc.field] == "" {
			t.Errorf("%+v: no message for %s (%v)", tc.form, tc.field, errs)
		}
	}
}

func TestEntityFormErrors_PutsEachDomainFieldAtItsBox(t *testing.T) {
	var invalid error = problem.Invalid(map[string]string{"name": "bad", "endpoints[1].url": "no host", "labels.env": "bad key",
		"health_check.interval_seconds": "5-3600", "kind": "must be rabbitmq or kafka", "steps[0].service": "unknown"})
	errs, err := entityFormErrors(invalid)
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{"name": "bad", "endpoints": "endpoints[1].url: no host", "labels": "labels.env: bad key",
		"health_interval": "5-3600", "broker_type": "rabbitmq or kafka", "steps": "steps[0].service: unknown"} {
		if !strings.Contains(errs[field], want) {
			t.Errorf("%s: %q, want it to hold %q", field, errs[field], want)
		}
	}
	errs, err = entityFormErrors(problem.Errorf(problem.CodeConflict, "service:a is already in the catalog"))
	if err != nil || errs[""] != "service:a is already in the catalog" {
		t.Errorf("a conflict: %v %v", errs, err)
	}
	if _, err := entityFormErrors(problem.Errorf(problem.CodeInternal, "boom")); err == nil {
		t.Error("an internal error became a form message")
	}
}

func TestTopologyQuery_ReadsTheAPIsParameters(t *testing.T) {
	ctx := func(q string) echo.Context {
		return echo.New().NewContext(httptest.NewRequest("GET", "/t/acme/topology.json?"+q, nil), httptest.NewRecorder())
	}
	q, err := topologyQuery(ctx("owner_team=payments&labels=env%3Dprod%2Ctier!%3Dweb&kind=service,Queue&kind=topic&q=pay&around=service%3Acheckout&depth=2"))
	if err != nil {
		t.Fatal(err)
	}
	if q.OwnerTeam != "payments" || q.Q != "pay" || q.Around != "service:checkout" || q.Depth != 2 {
		t.Errorf("query %+v", q)
	}
	if strings.Join(q.Kinds, ",") != "service,queue,topic" {
		t.Errorf("kinds %v", q.Kinds)
	}
	if len(q.Labels) != 2 || q.Labels[1].Op != "!=" {
		t.Errorf("labels %+v", q.Labels)
	}
	for _, bad := range []string{"depth=0", "depth=11", "depth=x", "labels=%3D%3D"} {
		if _, err := topologyQuery(ctx(bad)); problem.Code(err) != problem.CodeInvalid {
			t.Errorf("%s: %v, want invalid", bad, err)
		}
	}
}

func TestEntityPaths_KeepNamespaces(t *testing.T) {
	for ref, want := range map[string]string{
		"service:checkout":  "/t/acme/catalog/service/checkout",
		"user:guests/guest": "/t/acme/catalog/user/guest?ns=guests",
		"Component:a":       "/t/acme/catalog/component/a",
		"nonsense":          "",
	} {
		if got := views.RefPath("acme", ref); got != want {
			t.Errorf("RefPath(%q) = %q, want %q", ref, got, want)
		}
	}
	if got := (views.TopologyFilter{Kind: "queue", OwnerTeam: "payments", Depth: " "}).Query(); got != "kind=queue&owner_team=payments" {
		t.Errorf("filter query %q", got)
	}
}
