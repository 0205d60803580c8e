package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
	"switchboard/internal/tenancy"
	"switchboard/internal/web"
)

// The catalog routes driven with hostile and malformed input: every
// refusal is a 4xx problem with a message, another tenant's catalog stays
// out of sight, secrets never come back, and a refused request changes
// nothing.

// clientError fails unless r is a 4xx application/problem+json answer
// that says what is wrong.
func clientError(t *testing.T, what string, r response) web.Problem {
	t.Helper()
	var p web.Problem
	if r.Status < 400 || r.Status > 499 {
		t.Errorf("%s: status %d, want a 4xx; body %.400s", what, r.Status, r.Body)
		return p
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s: status %d with Content-Type %q; body %.400s", what, r.Status, ct, r.Body)
		return p
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Errorf("%s: a problem that is not JSON: %v; body %.400s", what, err, r.Body)
		return p
	}
	if p.Status != r.Status || p.Code == "" || strings.TrimSpace(p.Detail+p.Title) == "" {
		t.Errorf("%s: an unclear problem %+v", what, p)
	}
	return p
}

// statusIn fails unless r's status is one of want (and, when an error, a
// clear problem).
func statusIn(t *testing.T, what string, r response, want ...int) {
	t.Helper()
	for _, w := range want {
		if r.Status == w {
			if w >= 400 {
				clientError(t, what, r)
			}
			return
		}
	}
	t.Errorf("%s: status %d, want one of %v; body %.400s", what, r.Status, want, r.Body)
}

// snapshot is what a tenant's catalog shows: every entity (with its
// version) and every relation, so a refused request can be shown to have
// changed nothing.
func snapshot(t *testing.T, s *testServer, tenant, token string) string {
	t.Helper()
	var b strings.Builder
	for _, kind := range []string{"services", "brokers", "queues", "topics", "sagas"} {
		var page api.List[api.EntityBody]
		s.must(200, "GET", "/api/v1/tenants/"+tenant+"/"+kind+"?limit=200", token, nil).json(t, &page)
		for _, e := range page.Items {
			fmt.Fprintf(&b, "%s:%s@%d %s %v\n", kind, e.Name, e.Version, e.Description, e.Labels)
		}
	}
	var rels api.List[catalog.Relation]
	s.must(200, "GET", "/api/v1/tenants/"+tenant+"/relations?limit=200", token, nil).json(t, &rels)
	for _, r := range rels.Items {
		fmt.Fprintf(&b, "%s %s %s\n", r.From, r.Type, r.To)
	}
	var topo catalog.Topology
	s.must(200, "GET", "/api/v1/tenants/"+tenant+"/topology", token, nil).json(t, &topo)
	fmt.Fprintf(&b, "nodes %d edges %d\n", len(topo.Nodes), len(topo.Edges))
	return b.String()
}

func sameSnapshot(t *testing.T, what, before, after string) {
	t.Helper()
	if before != after {
		t.Errorf("%s changed the catalog:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// sweepCatalog is a tenant "acme" with a team, a broker with credentials,
// a queue, a DLQ, two services and a relation.
func sweepCatalog(t *testing.T) (*testServer, string) {
	t.Helper()
	s, owner := catalogServer(t)
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "main-rabbit", "kind": "rabbitmq", "owner_team": "payments",
		"url": "amqp://app:S3CRET-URL@127.0.0.1:1/", "management_url": "http://admin:S3CRET-MGMT@127.0.0.1:1/"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "orders", "broker": "main-rabbit", "owner_team": "payments", "dead_letter_queue": "orders.dlq"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "orders.dlq", "broker": "main-rabbit", "owner_team": "payments"})
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "checkout", "owner_team": "payments", "labels": map[string]string{"env": "prod"}})
	s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "billing", "owner_team": "payments"})
	s.must(201, "POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "publishes", "to": "queue:orders"})
	return s, owner
}

func TestSweep_MalformedEntityBodies(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	before := snapshot(t, s, "acme", owner)

	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	labels := map[string]string{}
	for i := range 1000 {
		labels[fmt.Sprintf("k%d", i)] = "v"
	}
	deep := strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3000)
	bodies := []struct {
		name string
		body any
	}{
		{"empty", ""},
		{"spaces", "   "},
		{"null", "null"},
		{"array", "[]"},
		{"number", "42"},
		{"string", `"checkout"`},
		{"truncated", `{"name":"x"`},
		{"trailing data", `{"name":"x"} {"name":"y"}`},
		{"duplicate member", `{"name":"x","name":"y","owner_team":"payments"}`},
		{"unknown member", `{"name":"x","owner_team":"payments","colour":"red"}`},
		{"member in another case", `{"Name":"x","owner_team":"payments"}`},
		{"name a number", `{"name":1}`},
		{"name null", `{"name":null,"owner_team":"payments"}`},
		{"name empty", `{"name":"","owner_team":"payments"}`},
		{"name blank", `{"name":"   ","owner_team":"payments"}`},
		{"name very long", map[string]any{"name": strings.Repeat("a", 100000), "owner_team": "payments"}},
		{"name with NUL", "{\"name\":\"a\\u0000b\",\"owner_team\":\"payments\"}"},
		{"name lone surrogate", `{"name":"a\ud800b","owner_team":"payments"}`},
		{"invalid UTF-8", []byte("{\"name\":\"a\xff\xfeb\",\"owner_team\":\"payments\"}")},
		{"labels an array", `{"name":"x","owner_team":"payments","labels":[]}`},
		{"label value a number", `{"name":"x","owner_team":"payments","labels":{"env":1}}`},
		{"duplicate label", `{"name":"x","owner_team":"payments","labels":{"env":"a","env":"b"}}`},
		{"1000 labels", map[string]any{"name": "x", "owner_team": "payments", "labels": labels}},
		{"bad label key", map[string]any{"name": "x", "owner_team": "payments", "labels": map[string]string{"bad key": "v"}}},
		{"empty label key", map[string]any{"name": "x", "owner_team": "payments", "labels": map[string]string{"": "v"}}},
		{"10000 links", map[string]any{"name": "x", "owner_team": "payments", "links": many(10000, func(int) any { return map[string]string{"url": "https://a.example"} })}},
		{"link javascript", map[string]any{"name": "x", "owner_team": "payments", "links": []map[string]string{{"url": "javascript:alert(1)"}}}},
		{"link an object", `{"name":"x","owner_team":"payments","links":{"url":"https://a.example"}}`},
		{"10000 endpoints", map[string]any{"name": "x", "owner_team": "payments", "endpoints": many(10000, func(int) any { return map[string]string{"url": "http://a:1", "protocol": "http"} })}},
		{"endpoint protocol odd case", map[string]any{"name": "x", "owner_team": "payments", "endpoints": []map[string]string{{"url": "http://a:1", "protocol": "HTTP"}}}},
		{"endpoint with user", map[string]any{"name": "x", "owner_team": "payments", "endpoints": []map[string]string{{"url": "http://u:p@a:1", "protocol": "http"}}}},
		{"health check interval huge", `{"name":"x","owner_team":"payments","health_check":{"url":"http://a/","interval_seconds":1e20}}`},
		{"health check interval fraction", `{"name":"x","owner_team":"payments","health_check":{"url":"http://a/","interval_seconds":5.5}}`},
		{"health check file URL", `{"name":"x","owner_team":"payments","health_check":{"url":"file:///etc/passwd","interval_seconds":10}}`},
		{"health check null", `{"name":"x","owner_team":"payments","health_check":null,"url":"amqp://h/"}`},
		{"kind of another", `{"name":"x","owner_team":"payments","kind":"queue"}`},
		{"owner team unknown", `{"name":"x","owner_team":"ghosts"}`},
		{"owner team bad", `{"name":"x","owner_team":"Pay Ments"}`},
		{"description huge", map[string]any{"name": "x", "owner_team": "payments", "description": strings.Repeat("é", 5000)}},
		{"deep nesting", deep},
		{"namespace other", `{"name":"x","owner_team":"payments","namespace":"Other/ns"}`},
	}
	for _, b := range bodies {
		clientError(t, "POST services "+b.name, s.do("POST", cat+"/services", owner, b.body))
	}

	kindBodies := map[string][]any{
		"brokers": {
			`{"name":"b1","owner_team":"payments"}`,
			`{"name":"b1","kind":"RabbitMQ","url":"amqp://h/"}`,
			`{"name":"b1","kind":"rabbitmq","url":"http://h/"}`,
			`{"name":"b1","kind":"rabbitmq","url":"amqp://"}`,
			`{"name":"b1","kind":"rabbitmq","url":"amqp://h/","bootstrap_servers":["h:9092"]}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":[]}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":"h:9092"}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":["h"]}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":["h:port"]}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":[null]}`,
			map[string]any{"name": "b1", "kind": "kafka", "bootstrap_servers": many(1000, func(i int) any { return fmt.Sprintf("h%d:9092", i) })},
			`{"name":"b1","kind":"kafka","bootstrap_servers":["h:9092"],"sasl":{"mechanism":"GSSAPI","username":"u"}}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":["h:9092"],"sasl":{"mechanism":"PLAIN"}}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":["h:9092"],"tls":"yes"}`,
			`{"name":"b1","kind":"kafka","bootstrap_servers":["h:9092"],"url":"amqp://h/"}`,
		},
		"queues": {
			`{"name":"q1","owner_team":"payments"}`,
			`{"name":"q1","broker":"ghost","owner_team":"payments"}`,
			`{"name":"amq.q1","broker":"main-rabbit","owner_team":"payments"}`,
			`{"name":"q\u0001","broker":"main-rabbit","owner_team":"payments"}`,
			map[string]any{"name": strings.Repeat("q", 256), "broker": "main-rabbit", "owner_team": "payments"},
			map[string]any{"name": "q1", "broker": "main-rabbit", "owner_team": "payments", "bindings": many(1000, func(i int) any { return map[string]string{"exchange": "x", "routing_key": fmt.Sprint(i)} })},
			map[string]any{"name": "q1", "broker": "main-rabbit", "owner_team": "payments", "dead_letter_queue": "amq.dlq"},
			map[string]any{"name": "q1", "broker": "main-rabbit", "owner_team": "payments", "vhost": strings.Repeat("v", 300)},
			`{"name":"q1","broker":"main-rabbit","owner_team":"payments","partitions":3}`,
		},
		"topics": {
			`{"name":"t1","owner_team":"payments"}`,
			`{"name":"t1","broker":"main-rabbit","partitions":3,"owner_team":"payments"}`,
			`{"name":"t/1","broker":"main-rabbit","partitions":3,"owner_team":"payments"}`,
			`{"name":"..","broker":"main-rabbit","partitions":3,"owner_team":"payments"}`,
			`{"name":"t1","broker":"main-rabbit","partitions":-1,"owner_team":"payments"}`,
			`{"name":"t1","broker":"main-rabbit","partitions":1.5,"owner_team":"payments"}`,
			`{"name":"t1","broker":"main-rabbit","partitions":"3","owner_team":"payments"}`,
			`{"name":"t1","broker":"main-rabbit","partitions":1e400,"owner_team":"payments"}`,
			`{"name":"t1","broker":"main-rabbit","partitions":99999999999999999999,"owner_team":"payments"}`,
		},
		"sagas": {
			`{"name":"s1","owner_team":"payments"}`,
			`{"name":"s1","owner_team":"payments","steps":[]}`,
			`{"name":"s1","owner_team":"payments","steps":[{"name":"a","service":"ghost","action":"x"}]}`,
			`{"name":"s1","owner_team":"payments","steps":[{"name":"a","service":"checkout","action":"x"},{"name":"a","service":"checkout","action":"y"}]}`,
			`{"name":"s1","owner_team":"payments","steps":[{"name":"a","service":"checkout"}]}`,
			`{"name":"s1","owner_team":"payments","steps":[{"name":"a","service":"service:checkout","action":"x"}]}`,
			`{"name":"s1","owner_team":"payments","steps":[null]}`,
			`{"name":"s1","owner_team":"payments","steps":{"name":"a"}}`,
			map[string]any{"name": "s1", "owner_team": "payments", "steps": many(5000, func(i int) any {
				return map[string]string{"name": fmt.Sprintf("s%d", i), "service": "checkout", "action": "x"}
			})},
		},
	}
	for kind, bs := range kindBodies {
		for i, b := range bs {
			clientError(t, fmt.Sprintf("POST %s #%d", kind, i), s.do("POST", cat+"/"+kind, owner, b))
		}
	}

	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/yaml", "multipart/form-data; boundary=x", "application/json; charset=", "garbage/"} {
		clientError(t, "Content-Type "+ct, s.do("POST", cat+"/services", owner, `{"name":"x","owner_team":"payments"}`, "Content-Type", ct))
	}
	r := s.do("POST", cat+"/services", owner, `{"name":"x","owner_team":"payments","description":"`+strings.Repeat("a", 1<<20+10)+`"}`)
	if p := clientError(t, "a body over 1 MiB", r); p.Status != 413 && r.Status != 0 {
		t.Errorf("a body over 1 MiB: status %d, want 413", r.Status)
	}
	sameSnapshot(t, "malformed bodies", before, snapshot(t, s, "acme", owner))
}

func TestSweep_OddNames(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	// Queue names as RabbitMQ allows: '/', ':', unicode, spaces, 255 bytes.
	queues := []string{"orders/eu", "a:b", "заказы", "📦-parcels", "my queue", "50%off", "x?y#z", "..", ".", "dots.", strings.Repeat("q", 255)}
	for _, name := range queues {
		r := s.do("POST", cat+"/queues", owner, map[string]any{"name": name, "broker": "main-rabbit", "owner_team": "payments"})
		if r.Status != 201 {
			t.Errorf("queue %q: status %d; body %.300s", name, r.Status, r.Body)
			continue
		}
		loc := r.Header.Get("Location")
		etag := r.Header.Get("ETag")
		path := cat + "/queues/" + url.PathEscape(name)
		if loc != path {
			t.Errorf("queue %q: Location %q, want %q", name, loc, path)
		}
		var got api.EntityBody
		if g := s.do("GET", path, owner, nil); g.Status != 200 {
			t.Errorf("GET queue %q at %s: status %d; body %.300s", name, path, g.Status, g.Body)
			continue
		} else {
			g.json(t, &got)
		}
		if got.Name != name {
			t.Errorf("GET queue %q answered %q", name, got.Name)
		}
		if p := s.do("PATCH", path, owner, map[string]any{"description": "odd"}, "If-Match", etag); p.Status != 200 {
			t.Errorf("PATCH queue %q: status %d; body %.300s", name, p.Status, p.Body)
		}
		ref := catalog.Ref{Kind: "queue", Namespace: catalog.DefaultNamespace, Name: name}.String()
		if rr := s.do("POST", cat+"/relations", owner, map[string]string{"from": "service:billing", "type": "consumes", "to": ref}); rr.Status != 201 {
			t.Errorf("relate to %s: status %d; body %.300s", ref, rr.Status, rr.Body)
		}
		var rels api.List[catalog.Relation]
		s.must(200, "GET", cat+"/relations?ref="+url.QueryEscape(ref), owner, nil).json(t, &rels)
		if len(rels.Items) != 1 {
			t.Errorf("relations of %s: %+v", ref, rels.Items)
		}
		var topo catalog.Topology
		if tr := s.do("GET", cat+"/topology?around="+url.QueryEscape(ref), owner, nil); tr.Status != 200 {
			t.Errorf("topology around %s: status %d; body %.300s", ref, tr.Status, tr.Body)
		} else if tr.json(t, &topo); len(topo.Nodes) != 2 {
			t.Errorf("topology around %s: %+v", ref, topo.Nodes)
		}
		statusIn(t, "DELETE queue "+name+" in use", s.do("DELETE", path, owner, nil), 409)
		if d := s.do("DELETE", path+"?cascade=true", owner, nil); d.Status != 204 {
			t.Errorf("DELETE queue %q: status %d; body %.300s", name, d.Status, d.Body)
		}
		statusIn(t, "GET deleted queue "+name, s.do("GET", path, owner, nil), 404)
	}
	// Names invalid for their kind.
	for _, name := range []string{"Checkout", "check_out", "-x", "x-", "ü", "a/b", "a:b", strings.Repeat("a", 64), "a b", "a.b"} {
		clientError(t, "service name "+name, s.do("POST", cat+"/services", owner, map[string]any{"name": name, "owner_team": "payments"}))
	}
	// Odd paths: encoded slashes and dots, long names, NUL.
	for _, p := range []string{"/services/a%2Fb", "/services/..%2F..%2Fteams", "/services/%2E%2E", "/services/" + strings.Repeat("a", 5000),
		"/services/checkout%2F", "/services/CHECKOUT", "/services/default%2Fcheckout", "/services/service:checkout"} {
		r := s.do("GET", cat+p, owner, nil)
		statusIn(t, "GET "+p, r, 404, 400)
		r = s.do("DELETE", cat+p, owner, nil)
		statusIn(t, "DELETE "+p, r, 404, 400)
	}
}

func TestSweep_QueryGarbage(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	bad := []string{
		"/services?limit=0", "/services?limit=-1", "/services?limit=abc", "/services?limit=1e3", "/services?limit=99999999999999999999", "/services?limit=10001",
		"/services?cursor=garbage", "/services?cursor=%00", "/services?cursor=" + strings.Repeat("A", 5000), "/services?cursor=eyJ9",
		"/services?labels==", "/services?labels=!=", "/services?labels=a=b=c", "/services?labels=!", "/services?labels=key%20with%20space=1",
		"/services?labels=a!", "/services?labels=" + url.QueryEscape(strings.Repeat("a=b,", 17)), "/services?labels=env=" + strings.Repeat("v", 64),
		"/services?labels=%C3%A9=1", "/services?labels=env=prod%00", "/services?q=" + strings.Repeat("x", 201),
		"/topology?depth=0", "/topology?depth=11", "/topology?depth=-1", "/topology?depth=abc", "/topology?depth=1.5", "/topology?depth=99999999999999999999",
		"/topology?around=garbage", "/topology?around=:", "/topology?around=service:", "/topology?around=service:ghost", "/topology?around=service:Other%2Fx",
		"/topology?labels=a=b=c", "/topology?q=" + strings.Repeat("x", 201),
		"/relations?ref=garbage", "/relations?ref=:", "/relations?cursor=garbage", "/relations?limit=0",
		"/services/checkout?cascade=maybe",
	}
	// A NUL byte anywhere is a 500 today: see TestSweep_Findings.
	for _, p := range bad {
		method := "GET"
		if strings.Contains(p, "cascade") {
			method = "DELETE"
		}
		clientError(t, method+" "+p, s.do(method, cat+p, owner, nil))
	}
	okay := []string{
		"/services?labels=", "/services?labels=,,,", "/services?labels=env", "/services?labels=!env", "/services?labels=env!=prod,tier",
		"/services?owner_team=" + strings.Repeat("x", 3000), "/services?q=%25", "/services?q=_", "/services?q=%5C",
		"/services?q=%E2%80%AE", "/topology?kind=garbage,,,", "/topology?kind=", "/topology?around=SERVICE:checkout", "/topology?around=service:default/checkout&depth=10",
		"/relations?type=Publishes", "/relations?ref=SERVICE:default/checkout", "/problems?owner_team=ghosts",
	}
	for _, p := range okay {
		statusIn(t, "GET "+p, s.do("GET", cat+p, owner, nil), 200)
	}
	// LIKE wildcards are literal.
	var page api.List[api.EntityBody]
	s.must(200, "GET", cat+"/services?q=%25", owner, nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("q=%% matched %d services", len(page.Items))
	}
	// The same spellings of a reference find the same relations.
	for _, ref := range []string{"service:checkout", "SERVICE:checkout", "service:default/checkout", " service:checkout "} {
		var rels api.List[catalog.Relation]
		s.must(200, "GET", cat+"/relations?ref="+url.QueryEscape(ref), owner, nil).json(t, &rels)
		if len(rels.Items) != 1 {
			t.Errorf("relations of %q: %+v", ref, rels.Items)
		}
	}
}

func TestSweep_Relations(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	before := snapshot(t, s, "acme", owner)
	rel := func(from, typ, to string) map[string]string {
		return map[string]string{"from": from, "type": typ, "to": to}
	}
	// Self relations, however spelt.
	for _, r := range []map[string]string{
		rel("service:checkout", "calls", "service:checkout"),
		rel("service:checkout", "calls", "service:default/checkout"),
		rel("Service:checkout", "calls", "SERVICE:default/checkout"),
		rel(" service:checkout ", "calls", "service:checkout"),
	} {
		statusIn(t, fmt.Sprintf("self %v", r), s.do("POST", cat+"/relations", owner, r), 409)
	}
	// Duplicates, however spelt.
	for _, r := range []map[string]string{
		rel("service:default/checkout", "publishes", "queue:orders"),
		rel("SERVICE:checkout", "publishes", "Queue:default/orders"),
	} {
		statusIn(t, fmt.Sprintf("duplicate %v", r), s.do("POST", cat+"/relations", owner, r), 409)
	}
	// Unknown types, odd case included.
	for _, typ := range []string{"Publishes", "PUBLISHES", " publishes", "publishes ", "", "pokes", "dead-letters-to", strings.Repeat("x", 10000)} {
		statusIn(t, "type "+typ, s.do("POST", cat+"/relations", owner, rel("service:billing", typ, "queue:orders")), 422, 400)
	}
	// Malformed references.
	for _, ref := range []string{"", ":", "service", "service:", ":checkout", "service:default/", "service:/checkout", "service:Other/checkout",
		"service:a/b/c", "service:" + strings.Repeat("a", 10000), "sérvice:checkout", "service:ghost", "queue:orders/x"} {
		statusIn(t, "from "+ref, s.do("POST", cat+"/relations", owner, rel(ref, "calls", "service:billing")), 400, 422)
		statusIn(t, "to "+ref, s.do("POST", cat+"/relations", owner, rel("service:billing", "calls", ref)), 400, 422)
	}
	// Malformed bodies.
	for _, b := range []any{"", "null", "[]", `{"from":1,"type":"calls","to":"service:billing"}`, `{"from":null,"type":"calls","to":"service:billing"}`,
		`{"from":"service:checkout","type":"calls","to":"service:billing","extra":1}`, `{"from":["service:checkout"],"type":"calls","to":"service:billing"}`} {
		clientError(t, fmt.Sprintf("relation body %v", b), s.do("POST", cat+"/relations", owner, b))
	}
	// Deletes that name nothing, or garbage.
	for _, q := range []string{"?from=service:checkout&type=calls&to=service:billing", "?from=garbage&type=calls&to=service:billing", "?from=service:checkout",
		"?from=service:checkout&type=Publishes&to=queue:orders"} {
		r := s.do("DELETE", cat+"/relations"+q, owner, nil)
		statusIn(t, "DELETE relations"+q, r, 400, 404, 422)
	}
	clientError(t, "DELETE relations with an array body", s.do("DELETE", cat+"/relations", owner, "[]"))
	sameSnapshot(t, "refused relations", before, snapshot(t, s, "acme", owner))
	// The canonical spelling deletes it, whichever spelling is sent.
	s.must(204, "DELETE", cat+"/relations?from="+url.QueryEscape("SERVICE:default/checkout")+"&type=publishes&to=queue:orders", owner, nil)
}

func TestSweep_Patch(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	before := snapshot(t, s, "acme", owner)
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	for _, b := range []any{
		"", "[]", `"x"`, "42", "{", `{"kind":"broker"}`, `{"kind":"Service"}`, `{"name":"renamed"}`, `{"name":null}`, `{"name":""}`,
		`{"namespace":"other"}`, `{"namespace":"Other"}`, `{"labels":{"env":1}}`, `{"labels":[]}`, `{"labels":"x"}`, `{"colour":"red"}`,
		`{"labels":{"bad key":"v"}}`, `{"endpoints":"x"}`, `{"endpoints":[{"url":"nope","protocol":"http"}]}`, `{"url":"amqp://h/"}`,
		`{"owner_team":"ghosts"}`, `{"labels":{"env":{"nested":"x"}}}`, `{"description":"a","description":"b"}`, deep,
		`{"labels":` + deep + `}`, `{"health_check":{"url":"gopher://x","interval_seconds":10}}`,
	} {
		clientError(t, fmt.Sprintf("PATCH %.60v", b), s.do("PATCH", cat+"/services/checkout", owner, b))
	}
	for _, h := range []string{"garbage", `"0"`, `"-1"`, `"99999999999999999999"`, `"1", "2"`, `W/"x"`, `""`, `"1.5"`, `"0x1"`} {
		clientError(t, "If-Match "+h, s.do("PATCH", cat+"/services/checkout", owner, map[string]any{"description": "x"}, "If-Match", h))
		clientError(t, "DELETE If-Match "+h, s.do("DELETE", cat+"/services/billing", owner, nil, "If-Match", h))
	}
	statusIn(t, "stale If-Match", s.do("PATCH", cat+"/services/checkout", owner, map[string]any{"description": "x"}, "If-Match", `"7"`), 412)
	clientError(t, "PATCH as text", s.do("PATCH", cat+"/services/checkout", owner, `{"description":"x"}`, "Content-Type", "text/plain"))
	clientError(t, "PATCH of a ghost", s.do("PATCH", cat+"/services/ghost", owner, map[string]any{"description": "x"}))
	clientError(t, "PATCH a queue through services", s.do("PATCH", cat+"/services/orders", owner, map[string]any{"description": "x"}))
	sameSnapshot(t, "refused patches", before, snapshot(t, s, "acme", owner))

	// Accepted: answered-only fields are ignored, not applied.
	var svc api.EntityBody
	s.must(200, "GET", cat+"/services/checkout", owner, nil).json(t, &svc)
	var out api.EntityBody
	s.must(200, "PATCH", cat+"/services/checkout", owner, map[string]any{"version": 999, "source": "evil", "orphaned": true, "description": "kept"}, "If-Match", fmt.Sprintf(`"%d"`, svc.Version)).json(t, &out)
	if out.Version != svc.Version+1 || out.Source != "" || out.Orphaned || out.Description != "kept" {
		t.Errorf("answered-only fields changed the service: %+v", out)
	}
	// A null label removes it; other labels stay.
	var merged api.EntityBody
	s.must(200, "PATCH", cat+"/services/checkout", owner, map[string]any{"labels": map[string]any{"env": nil, "tier": "web"}}).json(t, &merged)
	if len(merged.Labels) != 1 || merged.Labels["tier"] != "web" {
		t.Errorf("labels after a merge patch: %v", merged.Labels)
	}
}

func TestSweep_OtherTenants(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	s.must(200, "POST", cat+"/catalog/import?source=repo", owner, yamlBody("apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: shop\nspec:\n  owner: payments\n"))
	before := snapshot(t, s, "acme", owner)
	var exportBefore = string(s.must(200, "GET", cat+"/catalog/export", owner, nil).Body)

	eve := s.signup("eve@evil.test", "evil")
	evil := "/api/v1/tenants/evil"
	s.must(201, "POST", evil+"/teams", eve, map[string]string{"slug": "payments", "name": "Payments"})

	// Another tenant's paths, with eve's token: not found, never forbidden.
	for _, r := range []struct{ method, path string }{
		{"GET", "/services"}, {"GET", "/services/checkout"}, {"PATCH", "/services/checkout"}, {"DELETE", "/services/checkout"},
		{"GET", "/brokers/main-rabbit"}, {"GET", "/brokers/main-rabbit/discover"}, {"POST", "/brokers/main-rabbit/discover/import"},
		{"GET", "/relations"}, {"POST", "/relations"}, {"DELETE", "/relations?from=service:checkout&type=publishes&to=queue:orders"},
		{"GET", "/topology"}, {"GET", "/problems"}, {"GET", "/catalog/export"}, {"GET", "/catalog/imports"}, {"POST", "/catalog/import?source=repo"},
		{"POST", "/services"},
	} {
		var body any
		switch {
		case r.method == "PATCH":
			body = map[string]any{"description": "pwned"}
		case r.method == "POST" && strings.HasSuffix(r.path, "relations"):
			body = map[string]string{"from": "service:billing", "type": "calls", "to": "service:checkout"}
		case strings.Contains(r.path, "import?"):
			body = yamlBody("apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: pwned\n")
		case r.method == "POST" && r.path == "/services":
			body = map[string]any{"name": "pwned", "owner_team": "payments"}
		}
		statusIn(t, "eve "+r.method+" acme"+r.path, s.do(r.method, cat+r.path, eve, body), 404)
	}
	// The tenant id in place of the slug.
	statusIn(t, "eve by tenant id", s.do("GET", "/api/v1/tenants/"+tenantID(t, s, "acme").String()+"/services", eve, nil), 404)

	// Eve's own tenant, naming acme's entities.
	statusIn(t, "eve GET checkout", s.do("GET", evil+"/services/checkout", eve, nil), 404)
	statusIn(t, "eve DELETE checkout", s.do("DELETE", evil+"/services/checkout?cascade=true", eve, nil), 404)
	statusIn(t, "eve around acme's entity", s.do("GET", evil+"/topology?around=service:checkout", eve, nil), 404)
	statusIn(t, "eve discovers acme's broker", s.do("GET", evil+"/brokers/main-rabbit/discover", eve, nil), 404)
	statusIn(t, "eve deletes acme's relation", s.do("DELETE", evil+"/relations?from=service:checkout&type=publishes&to=queue:orders", eve, nil), 404)
	s.must(201, "POST", evil+"/services", eve, map[string]any{"name": "eve-svc", "owner_team": "payments"})
	statusIn(t, "eve relates to acme's entity", s.do("POST", evil+"/relations", eve, map[string]string{"from": "service:eve-svc", "type": "publishes", "to": "queue:orders"}), 422)
	statusIn(t, "eve queue on acme's broker", s.do("POST", evil+"/queues", eve, map[string]any{"name": "q", "broker": "main-rabbit", "owner_team": "payments"}), 422)
	statusIn(t, "eve saga calling acme's service", s.do("POST", evil+"/sagas", eve, map[string]any{"name": "s", "owner_team": "payments",
		"steps": []map[string]string{{"name": "a", "service": "checkout", "action": "x"}}}), 422)
	// The same names in eve's tenant are eve's own.
	s.must(201, "POST", evil+"/services", eve, map[string]any{"name": "checkout", "owner_team": "payments"})
	s.must(200, "POST", evil+"/catalog/import?source=repo", eve, yamlBody("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: billing\nspec:\n  owner: payments\n  dependsOn: [component:checkout]\n"))
	s.must(204, "DELETE", evil+"/services/checkout?cascade=true", eve, nil)

	for _, p := range []string{"/services", "/brokers", "/queues", "/relations", "/topology", "/problems", "/catalog/export", "/catalog/imports", "/audit"} {
		body := string(s.must(200, "GET", evil+p, eve, nil).Body)
		for _, leak := range []string{"main-rabbit", "orders", "shop", "owner@acme", "S3CRET"} {
			if strings.Contains(body, leak) {
				t.Errorf("eve's %s shows acme's %q: %.400s", p, leak, body)
			}
		}
	}
	sameSnapshot(t, "eve's requests", before, snapshot(t, s, "acme", owner))
	if got := string(s.must(200, "GET", cat+"/catalog/export", owner, nil).Body); got != exportBefore {
		t.Errorf("eve's import changed acme's export:\n%s\nwas\n%s", got, exportBefore)
	}
	var imports api.List[catalog.ImportResult]
	s.must(200, "GET", cat+"/catalog/imports", owner, nil).json(t, &imports)
	if len(imports.Items) != 1 || imports.Items[0].Actor == "" || strings.Contains(string(s.must(200, "GET", cat+"/catalog/imports", owner, nil).Body), "eve") {
		t.Errorf("acme's imports: %+v", imports.Items)
	}
}

// noSecret fails when r shows any of the passwords.
func noSecret(t *testing.T, what string, r response) {
	t.Helper()
	for _, secret := range []string{"S3CRET", "s3cret"} {
		if strings.Contains(string(r.Body), secret) {
			t.Errorf("%s shows a password (status %d): %.500s", what, r.Status, r.Body)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, secret) {
					t.Errorf("%s shows a password in header %s", what, k)
				}
			}
		}
	}
}

func TestSweep_SecretsNeverComeBack(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	kafka := map[string]any{"name": "events", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": []string{"127.0.0.1:1"},
		"sasl": map[string]string{"mechanism": "PLAIN", "username": "app", "password": "S3CRET-SASL"}}
	noSecret(t, "create kafka", s.must(201, "POST", cat+"/brokers", owner, kafka))

	// Refusals that carry a password.
	for i, b := range []any{
		map[string]any{"name": "main-rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET-1@h:5672/"},
		map[string]any{"name": "Bad_Name", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET-2@h:5672/"},
		map[string]any{"name": "b2", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET-3@h:badport/"},
		map[string]any{"name": "b2", "kind": "rabbitmq", "owner_team": "payments", "url": "http://app:S3CRET-4@h/"},
		map[string]any{"name": "b2", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET-5@h/", "management_url": "ftp://a:S3CRET-6@h/"},
		map[string]any{"name": "b2", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET%ZZ@h/"},
		map[string]any{"name": "b2", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET-7@h/\x7f"},
		map[string]any{"name": "b2", "kind": "rabbitmq", "owner_team": "ghosts", "url": "amqp://app:S3CRET-8@h/"},
		map[string]any{"name": "b2", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": []string{"h:9092"}, "sasl": map[string]string{"mechanism": "NOPE", "username": "u", "password": "S3CRET-9"}},
		map[string]any{"name": "b2", "kind": "kafka", "owner_team": "payments", "url": "amqp://app:S3CRET-10@h/", "bootstrap_servers": []string{"h:9092"}},
		`{"name":"b2","kind":"kafka","owner_team":"payments","bootstrap_servers":["h:9092"],"sasl":{"mechanism":"PLAIN","username":"u","password":"S3CRET-11","x":1}}`,
		`{"name":"b2","kind":"kafka","owner_team":"payments","bootstrap_servers":["h:9092"],"sasl":{"mechanism":"PLAIN","username":"u","password":["S3CRET-12"]}}`,
		`{"name":"b2","kind":"rabbitmq","owner_team":"payments","url":"amqp://app:S3CRET-13@h/",}`,
	} {
		r := s.do("POST", cat+"/brokers", owner, b)
		clientError(t, fmt.Sprintf("broker refusal #%d", i), r)
		noSecret(t, fmt.Sprintf("broker refusal #%d", i), r)
	}
	for i, b := range []any{
		map[string]any{"url": "amqp://app:S3CRET-20@h:bad/"},
		map[string]any{"url": "http://app:S3CRET-21@h/"},
		map[string]any{"management_url": "gopher://a:S3CRET-22@h/"},
		map[string]any{"kind": "kafka", "url": "amqp://app:S3CRET-23@h/"},
	} {
		r := s.do("PATCH", cat+"/brokers/main-rabbit", owner, b)
		clientError(t, fmt.Sprintf("broker patch refusal #%d", i), r)
		noSecret(t, fmt.Sprintf("broker patch refusal #%d", i), r)
	}
	// Idempotent replays answer what was answered.
	b := map[string]any{"name": "replayed", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://app:S3CRET-30@127.0.0.1:1/"}
	noSecret(t, "idempotent create", s.must(201, "POST", cat+"/brokers", owner, b, "Idempotency-Key", "k-1"))
	noSecret(t, "idempotent replay", s.must(201, "POST", cat+"/brokers", owner, b, "Idempotency-Key", "k-1"))
	var idem int
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys WHERE position('S3CRET'::bytea in coalesce(body, ''::bytea)) > 0`).Scan(&idem); err != nil {
		t.Fatal(err)
	} else if idem > 0 {
		t.Errorf("an idempotency record keeps a password")
	}
	// Discovery of an unreachable broker names it, not its password.
	for _, p := range []string{"/brokers/main-rabbit/discover", "/brokers/events/discover", "/brokers/main-rabbit/discover/import"} {
		method := "GET"
		if strings.HasSuffix(p, "import") {
			method = "POST"
		}
		r := s.do(method, cat+p, owner, nil)
		if r.Status != 502 || r.problemCode(t) != "bad_gateway" || !strings.Contains(string(r.Body), "did not answer") {
			t.Errorf("%s: status %d; body %.300s", p, r.Status, r.Body)
		}
		noSecret(t, p, r)
	}
	for _, p := range []string{"/brokers", "/brokers/main-rabbit", "/brokers/events", "/brokers/replayed", "/topology", "/problems", "/relations",
		"/catalog/export", "/catalog/imports", "/audit", "/audit?limit=200"} {
		noSecret(t, "GET "+p, s.must(200, "GET", cat+p, owner, nil))
	}
}

// importDoc is a minimal valid catalog document.
func importDoc(kind, name string) string {
	return fmt.Sprintf("apiVersion: backstage.io/v1alpha1\nkind: %s\nmetadata:\n  name: %s\nspec:\n  owner: payments\n", kind, name)
}

func TestSweep_HostileImports(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	imp := cat + "/catalog/import?source=repo"
	s.must(200, "POST", imp, owner, yamlBody(importDoc("System", "shop")))
	before := snapshot(t, s, "acme", owner)
	importsBefore := string(s.must(200, "GET", cat+"/catalog/imports", owner, nil).Body)

	laughs := "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	prev := "a"
	for i := range 9 {
		n := fmt.Sprintf("b%d", i)
		laughs += fmt.Sprintf("%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	bomb := "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bomb\nspec:\n  owner: payments\n  x:\n" + indent(laughs, "    ")
	bin := make([]byte, 4096)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	good := importDoc("Component", "fresh")
	for _, c := range []struct {
		name string
		body string
	}{
		{"alias bomb", bomb},
		{"deep nesting", "a: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000)},
		{"deep maps", strings.Repeat("{a: ", 20000) + "1" + strings.Repeat("}", 20000)},
		{"binary", string(bin)},
		{"NUL bytes", good + "\x00\x00"},
		{"non-UTF-8", good + "  description: caf\xe9\n"},
		{"UTF-16", "\xff\xfea\x00:\x00 \x00b\x00"},
		{"tabs", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n\tname: tabbed\n"},
		{"duplicate keys", good + "metadata:\n  name: again\n"},
		{"a list", "- a\n- b\n"},
		{"a scalar", "just words\n"},
		{"a number", "42\n"},
		{"a valid and an invalid document", good + "---\n" + "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Bad Name\n"},
		{"a valid document and a list", good + "---\n- x\n"},
		{"a document with no kind", good + "---\napiVersion: backstage.io/v1alpha1\nmetadata:\n  name: nokind\n"},
		{"unclosed quote", good + "---\nkind: \"Component\n"},
		{"a merge key bomb", "x: &x {a: 1}\ny:\n  <<: [*x, *x, *x, *x]\n"},
		{"a queue with a bad name", "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: amq.x\n  annotations:\n    switchboard.io/kind: queue\n    switchboard.io/broker: main-rabbit\nspec:\n  type: queue\n  owner: payments\n"},
		{"a relation to itself", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: selfish\nspec:\n  owner: payments\n  dependsOn: [component:selfish, component:default/selfish]\n"},
		{"an unknown relation annotation value", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: odd\n  annotations:\n    switchboard.io/calls: \"::,,\"\nspec:\n  owner: payments\n"},
	} {
		r := s.do("POST", imp, owner, yamlBody(c.body))
		clientError(t, "import "+c.name, r)
		r = s.do("POST", imp+"&dry_run=true", owner, yamlBody(c.body))
		clientError(t, "dry run "+c.name, r)
	}
	// The wrong Content-Type, query garbage, sizes.
	for _, ct := range []string{"application/json", "", "multipart/form-data; boundary=x", "application/yaml; charset", "image/png"} {
		clientError(t, "import as "+ct, s.do("POST", imp, owner, good, "Content-Type", ct))
	}
	for _, q := range []string{"?source=", "?", "?source=" + strings.Repeat("r", 201), "?source=a%00b", "?source=with%20space", "?source=repo&dry_run=maybe", "?source=%E2%80%AE"} {
		clientError(t, "import "+q, s.do("POST", cat+"/catalog/import"+q, owner, yamlBody(good)))
	}
	big := "# " + strings.Repeat("x", 3<<20) + "\n" + good
	if r := s.do("POST", imp, owner, yamlBody(big)); r.Status != 413 {
		t.Errorf("a 3 MB file: status %d; body %.300s", r.Status, r.Body)
	} else {
		clientError(t, "a 3 MB file", r)
	}
	sameSnapshot(t, "refused imports", before, snapshot(t, s, "acme", owner))

	// Accepted spellings: a BOM and CRLF line ends.
	statusIn(t, "import with a BOM", s.do("POST", cat+"/catalog/import?source=bom", owner, yamlBody("\xEF\xBB\xBF"+importDoc("Component", "bommed"))), 200)
	statusIn(t, "import with CRLF", s.do("POST", cat+"/catalog/import?source=crlf", owner, yamlBody(strings.ReplaceAll(importDoc("Component", "crlfed"), "\n", "\r\n"))), 200)
	for _, name := range []string{"bommed", "crlfed"} {
		statusIn(t, "imported "+name, s.do("GET", cat+"/services/"+name, owner, nil), 200)
	}
	// A refused import is recorded as the source's last result, with its
	// errors, so the team sees them (by design).
	if got := string(s.must(200, "GET", cat+"/catalog/imports", owner, nil).Body); got == importsBefore || !strings.Contains(got, `"source":"repo","applied":false`) {
		t.Errorf("the refused imports are not recorded for their source: %s", got)
	}
}

// The import refuses more than 20,000 documents, quickly and cleanly.
func TestSweep_TwentyThousandAndOneDocuments(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	var b strings.Builder
	for i := range 20001 {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: g%d\n", i)
	}
	if b.Len() > api.MaxImportBytes {
		t.Fatalf("the file is %d bytes, over the size limit: it would not test the document count", b.Len())
	}
	r := s.do("POST", cat+"/catalog/import?source=many&dry_run=true", owner, yamlBody(b.String()))
	clientError(t, "20,001 documents (dry run)", r)
	if !strings.Contains(string(r.Body), "20000") && !strings.Contains(string(r.Body), "20,000") {
		t.Errorf("the refusal does not name the document limit: %.400s", r.Body)
	}
	r = s.do("POST", cat+"/catalog/import?source=many", owner, yamlBody(b.String()))
	clientError(t, "20,001 documents", r)
	var topo catalog.Topology
	s.must(200, "GET", cat+"/topology", owner, nil).json(t, &topo)
	if len(topo.Nodes) != 0 {
		t.Errorf("a refused import left %d nodes", len(topo.Nodes))
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestSweep_Findings holds the cases the catalog gets wrong today: each
// fails until the defect it names is fixed.
func TestSweep_DefectsStayFixed(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)

	t.Run("a NUL byte is a 500", func(t *testing.T) {
		before := snapshot(t, s, "acme", owner)
		for _, p := range []string{"/services/%00", "/services/a%00b", "/queues/orders%00", "/services?owner_team=%00", "/services?q=%00",
			"/problems?owner_team=%00", "/relations?type=%00", "/relations?ref=service:a%00", "/topology?owner_team=%00"} {
			statusIn(t, "GET "+p, s.do("GET", cat+p, owner, nil), 200, 400, 404)
		}
		statusIn(t, "DELETE /services/%00", s.do("DELETE", cat+"/services/%00", owner, nil), 400, 404)
		statusIn(t, "PATCH /queues/a%00", s.do("PATCH", cat+"/queues/a%00", owner, map[string]any{"description": "x"}), 400, 404)
		for _, b := range []map[string]string{
			{"from": "service:checkout\x00", "type": "calls", "to": "service:billing"},
			{"from": "service:checkout", "type": "calls", "to": "service:billing\x00"},
			{"from": "service:checkout", "type": "calls\x00", "to": "service:billing"},
		} {
			statusIn(t, fmt.Sprintf("relation %q", b), s.do("POST", cat+"/relations", owner, b), 400, 422)
		}
		for i, c := range []struct {
			path string
			body any
		}{
			{"/services", map[string]any{"name": "nul1", "owner_team": "payments", "description": "a\x00b"}},
			{"/services", map[string]any{"name": "nul2", "owner_team": "payments", "links": []map[string]string{{"url": "https://a.example", "title": "a\x00b"}}}},
			{"/queues", map[string]any{"name": "nul3", "broker": "main-rabbit", "owner_team": "payments", "bindings": []map[string]string{{"exchange": "a\x00", "routing_key": "k"}}}},
			{"/sagas", map[string]any{"name": "nul4", "owner_team": "payments", "steps": []map[string]string{{"name": "a", "service": "checkout", "action": "x\x00"}}}},
		} {
			statusIn(t, fmt.Sprintf("POST %s NUL #%d", c.path, i), s.do("POST", cat+c.path, owner, c.body), 400)
		}
		statusIn(t, "PATCH a NUL description", s.do("PATCH", cat+"/services/checkout", owner, map[string]any{"description": "a\x00b"}), 400)
		statusIn(t, "import a NUL escape", s.do("POST", cat+"/catalog/import?source=nul", owner,
			yamlBody("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: nul5\n  description: \"a\\0b\"\nspec:\n  owner: payments\n")), 400, 422)
		sameSnapshot(t, "NUL bytes", before, snapshot(t, s, "acme", owner))
	})

	t.Run("a merge patch of null is applied as no change", func(t *testing.T) {
		clientError(t, "PATCH null", s.do("PATCH", cat+"/services/billing", owner, "null"))
	})

	t.Run("a null label value is taken as empty", func(t *testing.T) {
		clientError(t, "labels {env: null}", s.do("POST", cat+"/services", owner, `{"name":"nulllabel","owner_team":"payments","labels":{"env":null}}`))
	})

	t.Run("a patch of a kafka broker loses its SASL password", func(t *testing.T) {
		s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "events", "kind": "kafka", "owner_team": "payments", "bootstrap_servers": []string{"10.0.0.9:9092"},
			"sasl": map[string]string{"mechanism": "PLAIN", "username": "app", "password": "S3CRET-SASL"}})
		s.must(200, "PATCH", cat+"/brokers/events", owner, map[string]any{"description": "the event bus"})
		creds, err := s.App.Catalog.Credentials(t.Context(), tenantID(t, s, "acme"), "events")
		if err != nil || creds.Password != "S3CRET-SASL" {
			t.Errorf("after a description patch the SASL password is %q (%v)", creds.Password, err)
		}
	})

	t.Run("a new AMQP URL loses the management credentials", func(t *testing.T) {
		s.must(200, "PATCH", cat+"/brokers/main-rabbit", owner, map[string]any{"url": "amqp://other:S3CRET-NEXT@127.0.0.1:1/"})
		creds, err := s.App.Catalog.Credentials(t.Context(), tenantID(t, s, "acme"), "main-rabbit")
		if err != nil || creds.Password != "S3CRET-NEXT" || creds.ManagementUsername != "admin" || creds.ManagementPassword != "S3CRET-MGMT" {
			t.Errorf("after a url patch: user %q, management user %q, management password set %v (%v)",
				creds.Username, creds.ManagementUsername, creds.ManagementPassword != "", err)
		}
	})

	t.Run("a broker with queues on it changes type", func(t *testing.T) {
		r := s.do("PATCH", cat+"/brokers/main-rabbit", owner, map[string]any{"kind": "kafka", "url": nil, "vhost": nil, "management_url": nil,
			"bootstrap_servers": []string{"10.0.0.9:9092"}})
		statusIn(t, "rabbitmq to kafka with queues on it", r, 409, 422)
	})

	t.Run("bootstrap servers keep user info", func(t *testing.T) {
		r := s.do("POST", cat+"/brokers", owner, map[string]any{"name": "leaky", "kind": "kafka", "owner_team": "payments",
			"bootstrap_servers": []string{"app:S3CRET-BOOT@10.0.0.9:9092"}})
		noSecret(t, "a bootstrap server with user info", r)
		if r.Status == 201 {
			noSecret(t, "GET the broker", s.must(200, "GET", cat+"/brokers/leaky", owner, nil))
		}
	})

	t.Run("a viewer overwrites the last import of a source", func(t *testing.T) {
		s.must(200, "POST", cat+"/catalog/import?source=team-repo", owner, yamlBody(importDoc("System", "shop")))
		viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
		before := string(s.must(200, "GET", cat+"/catalog/imports", owner, nil).Body)
		r := s.do("POST", cat+"/catalog/import?source=team-repo", viewer, yamlBody("kind: [unclosed\n"))
		statusIn(t, "a viewer's broken import", r, 403, 404)
		if after := string(s.must(200, "GET", cat+"/catalog/imports", owner, nil).Body); after != before {
			t.Errorf("a viewer's request replaced the import record:\n%s\nwas\n%s", after, before)
		}
	})

	t.Run("secrets in a broken catalog file", func(t *testing.T) {
		doc := "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: rabbit2\n  annotations:\n    switchboard.io/kind: broker\n" +
			"    switchboard.io/broker-type: rabbitmq\n    switchboard.io/url: amqp://app:S3CRET-YAML@10.0.0.9:5672/\n  bad: [unclosed\nspec:\n  owner: payments\n"
		r := s.do("POST", cat+"/catalog/import?source=secret", owner, yamlBody(doc))
		clientError(t, "a broken file with a password", r)
		noSecret(t, "a broken file with a password", r)
		noSecret(t, "the import record", s.must(200, "GET", cat+"/catalog/imports", owner, nil))
		doc = strings.Replace(doc, "  bad: [unclosed\n", "", 1)
		r = s.do("POST", cat+"/catalog/import?source=secret", owner, yamlBody(doc))
		clientError(t, "a file with a password", r)
		noSecret(t, "a file with a password", r)
		noSecret(t, "the import record", s.must(200, "GET", cat+"/catalog/imports", owner, nil))
	})
	t.Run("a new management URL takes the stored password to the new host", func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, pw, ok := r.BasicAuth(); ok {
				mu.Lock()
				got = append(got, pw)
				mu.Unlock()
			}
			w.WriteHeader(401)
		}))
		defer srv.Close()
		s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "mgmt", "kind": "rabbitmq", "owner_team": "payments",
			"url": "amqp://app:S3CRET-A@127.0.0.1:1/", "management_url": "http://admin:S3CRET-M@127.0.0.1:1/"})
		// Another host by name (the broker's own user may serve the
		// management API of the broker's own host).
		s.must(200, "PATCH", cat+"/brokers/mgmt", owner, map[string]any{"management_url": strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/"})
		s.do("GET", cat+"/brokers/mgmt/discover", owner, nil)
		mu.Lock()
		defer mu.Unlock()
		for _, pw := range got {
			if strings.Contains(pw, "S3CRET") {
				t.Errorf("the management password went to the new host %s", srv.URL)
			}
		}
	})

	t.Run("a view name with a NUL is a database error", func(t *testing.T) {
		_, err := s.App.Catalog.SaveView(t.Context(), tenantID(t, s, "acme"), "nul\x00", json.RawMessage(`{}`))
		if _, ok := problem.As(err); !ok {
			t.Errorf("a view name with a NUL: %v, want a problem naming the field", err)
		}
	})

	t.Run("an import skips the egress deny-list", func(t *testing.T) {
		s := newTestServer(t, func(c *app.Config) { c.EgressDeny = []string{"169.254.169.254/32"} })
		tok := s.signup("owner@acme.test", "acme")
		s.must(201, "POST", cat+"/teams", tok, map[string]string{"slug": "payments", "name": "Payments"})
		broker := "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: meta\n  annotations:\n    switchboard.io/kind: broker\n" +
			"    switchboard.io/broker-type: rabbitmq\n    switchboard.io/url: amqp://169.254.169.254:5672/\n    switchboard.io/management-url: http://169.254.169.254/\nspec:\n  type: rabbitmq\n  owner: payments\n"
		statusIn(t, "import a broker on a denied host", s.do("POST", cat+"/catalog/import?source=x", tok, yamlBody(broker)), 422)
		svc := "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: metasvc\n  annotations:\n    switchboard.io/health-check-url: http://169.254.169.254/latest/meta-data\nspec:\n  owner: payments\n"
		statusIn(t, "import a health check on a denied host", s.do("POST", cat+"/catalog/import?source=y", tok, yamlBody(svc)), 422)
	})
	t.Run("a cascade leaves no queue on a missing broker", func(t *testing.T) {
		s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "doomed", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://10.0.0.9:5672/"})
		s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "doomed-q", "broker": "doomed", "owner_team": "payments"})
		statusIn(t, "delete a broker with queues", s.do("DELETE", cat+"/brokers/doomed", owner, nil), 409)
		r := s.do("DELETE", cat+"/brokers/doomed?cascade=true", owner, nil)
		if r.Status == 204 {
			var qs api.List[api.EntityBody]
			s.must(200, "GET", cat+"/queues", owner, nil).json(t, &qs)
			for _, q := range qs.Items {
				if q.Broker == "doomed" {
					t.Errorf("queue %q is left on the deleted broker", q.Name)
				}
			}
			statusIn(t, "patch a queue left behind", s.do("PATCH", cat+"/queues/doomed-q", owner, map[string]any{"description": "x"}), 200)
		}
	})
}

// The egress deny-list holds whatever spelling names a denied address.
func TestSweep_EgressDenySpellings(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *app.Config) { c.EgressDeny = []string{"127.0.0.0/8", "169.254.169.254/32"} })
	tok := s.signup("owner@acme.test", "acme")
	s.must(201, "POST", cat+"/teams", tok, map[string]string{"slug": "payments", "name": "Payments"})
	for i, host := range []string{"127.0.0.1", "localhost", "127.1.2.3", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "LOCALHOST", "[0:0:0:0:0:ffff:a9fe:a9fe]"} {
		r := s.do("POST", cat+"/services", tok, map[string]any{"name": fmt.Sprintf("hc%d", i), "owner_team": "payments",
			"health_check": map[string]any{"url": "http://" + host + ":8080/healthz", "interval_seconds": 5}})
		statusIn(t, "health check on "+host, r, 422)
		r = s.do("POST", cat+"/brokers", tok, map[string]any{"name": fmt.Sprintf("br%d", i), "kind": "rabbitmq", "owner_team": "payments",
			"url": "amqp://" + host + ":5672/"})
		statusIn(t, "broker on "+host, r, 422)
	}
}

func TestSweep_RolesImportsAndViews(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	tenant := tenantID(t, s, "acme")

	t.Run("an import over a broker keeps its credentials", func(t *testing.T) {
		doc := "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: main-rabbit\n  description: from the file\n  annotations:\n    switchboard.io/kind: broker\n" +
			"    switchboard.io/broker-type: rabbitmq\n    switchboard.io/url: amqp://127.0.0.1:1/\nspec:\n  type: rabbitmq\n  owner: payments\n"
		s.must(200, "POST", cat+"/catalog/import?source=brokers", owner, yamlBody(doc))
		creds, err := s.App.Catalog.Credentials(t.Context(), tenant, "main-rabbit")
		if err != nil || creds.Password != "S3CRET-URL" {
			t.Errorf("after an import the password is set: %v (%v)", creds.Password != "", err)
		}
	})

	t.Run("viewers change nothing", func(t *testing.T) {
		viewer := s.member(owner, "acme", "v@acme.test", tenancy.Viewer)
		before := snapshot(t, s, "acme", owner)
		statusIn(t, "viewer create", s.do("POST", cat+"/services", viewer, map[string]any{"name": "v", "owner_team": "payments"}), 403)
		statusIn(t, "viewer patch", s.do("PATCH", cat+"/services/checkout", viewer, map[string]any{"description": "v"}), 403)
		statusIn(t, "viewer delete", s.do("DELETE", cat+"/services/billing", viewer, nil), 403)
		statusIn(t, "viewer relate", s.do("POST", cat+"/relations", viewer, map[string]string{"from": "service:billing", "type": "calls", "to": "service:checkout"}), 403)
		statusIn(t, "viewer unrelate", s.do("DELETE", cat+"/relations?from=service:checkout&type=publishes&to=queue:orders", viewer, nil), 403)
		statusIn(t, "viewer import", s.do("POST", cat+"/catalog/import?source=v", viewer, yamlBody(importDoc("Component", "vv"))), 403)
		statusIn(t, "viewer discover import", s.do("POST", cat+"/brokers/main-rabbit/discover/import", viewer, nil), 403, 422, 502)
		sameSnapshot(t, "a viewer", before, snapshot(t, s, "acme", owner))
	})

	t.Run("an editor's import cannot take another team's entity", func(t *testing.T) {
		s.must(201, "POST", cat+"/teams", owner, map[string]string{"slug": "shipping", "name": "Shipping"})
		editor := s.member(owner, "acme", "ed@acme.test", tenancy.Editor)
		s.must(200, "POST", cat+"/teams/payments/members", owner, map[string]string{"email": "ed@acme.test"})
		s.must(201, "POST", cat+"/services", owner, map[string]any{"name": "ship", "owner_team": "shipping"})
		before := snapshot(t, s, "acme", owner)
		r := s.do("POST", cat+"/catalog/import?source=ed", editor, yamlBody(importDoc("Component", "ship")))
		statusIn(t, "editor import over shipping's service", r, 403, 422)
		sameSnapshot(t, "an editor's import", before, snapshot(t, s, "acme", owner))
	})

	t.Run("saved views stay in their tenant", func(t *testing.T) {
		v, err := s.App.Catalog.SaveView(t.Context(), tenant, "mine", json.RawMessage(`{"kinds":["service"]}`))
		if err != nil {
			t.Fatal(err)
		}
		s.signup("eve2@evil.test", "evil2")
		other := tenantID(t, s, "evil2")
		if _, err := s.App.Catalog.View(t.Context(), other, v.ID); err == nil {
			t.Errorf("another tenant reads the view")
		}
		if vs, err := s.App.Catalog.Views(t.Context(), other); err != nil || len(vs) != 0 {
			t.Errorf("another tenant lists %+v (%v)", vs, err)
		}
		for _, st := range []string{`[]`, `"x"`, `{`, `null`, `{"a":1} {"b":2}`} {
			if _, err := s.App.Catalog.SaveView(t.Context(), tenant, "bad", json.RawMessage(st)); err == nil {
				t.Errorf("a view state %s was saved", st)
			}
		}
	})
}

func TestSweep_ExportImportOfOddNames(t *testing.T) {
	t.Parallel()
	s, owner := sweepCatalog(t)
	t.Run("odd queue names survive export and import", func(t *testing.T) {
		for _, name := range []string{"orders/eu", "заказы", "a:b", "my queue", "x#y"} {
			s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": name, "broker": "main-rabbit", "owner_team": "payments"})
		}
		out := s.must(200, "GET", cat+"/catalog/export", owner, nil)
		r := s.do("POST", cat+"/catalog/import?source=roundtrip&dry_run=true", owner, yamlBody(string(out.Body)))
		statusIn(t, "import the export", r, 200)
	})
}
