package api_test

import (
	"encoding/json"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"switchboard/internal/api"
	"switchboard/internal/tracing"
)

// runTraceConformance drives every tracing route: spans ingested over
// OTLP/HTTP JSON (with a rejected one), read by id, searched, listed by
// service and operation, tailed live, and the settings changed.
func runTraceConformance(t *testing.T, c *conformance, ada, acme string) {
	t.Helper()
	var tok api.CreateTokenResponse
	c.expect(201, "POST", acme+"/tokens", ada, map[string]string{"name": "otlp", "role": "editor"}).json(t, &tok)
	live := c.stream(acme+"/traces/live?service=checkout", ada)
	body, err := otlpRequest(func(sp ptrace.Span, i int) {
		if i == 1 {
			sp.Attributes().PutStr("http.route", "/orders")
			sp.SetParentSpanID(sp.SpanID())
			sp.SetSpanID([8]byte{7})
		}
	}, "root", "child").MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	c.expect(200, "POST", "/v1/traces", tok.Token, json.RawMessage(body), "Content-Type", "application/json")
	live.next()
	var found api.List[tracing.Trace]
	c.expect(200, "GET", acme+"/traces?service=checkout&attr=http.route%3D/orders&since=2020-01-01T00:00:00Z&limit=5", ada, nil).json(t, &found)
	if len(found.Items) != 1 {
		t.Fatalf("search found %+v", found.Items)
	}
	c.sendBad("GET", acme+"/traces?status=maybe", ada, nil)
	c.expect(200, "GET", acme+"/traces/"+found.Items[0].TraceID, ada, nil)
	c.sendBad("GET", acme+"/traces/not-hex", ada, nil)
	c.expect(404, "GET", acme+"/traces/0000000000000000000000000000abcd", ada, nil)
	c.expect(200, "GET", acme+"/trace-services", ada, nil)
	c.expect(200, "GET", acme+"/trace-services/checkout/operations", ada, nil)
	c.expect(404, "GET", acme+"/trace-services/nobody/operations", ada, nil)
	c.expect(200, "GET", acme+"/trace-stats?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z", ada, nil)
	c.expect(200, "GET", acme+"/trace-stats", ada, nil)
	c.sendBad("GET", acme+"/trace-stats?since=2020-01-01T00:00:00Z", ada, nil)
	c.expect(200, "GET", acme+"/topology?traced_since=1h", ada, nil)
	c.sendBad("GET", acme+"/topology?traced_since=ever", ada, nil)
	c.expect(200, "GET", acme+"/tracing", ada, nil)
	c.expect(200, "PUT", acme+"/tracing", ada, map[string]int{"retention_days": 14})
	c.sendBad("PUT", acme+"/tracing", ada, map[string]int{"retention_days": 0})
}
