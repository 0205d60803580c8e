package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"switchboard/internal/api"
	"switchboard/internal/app"
	"switchboard/internal/connectors/rabbitmq/rabbittest"
	"switchboard/internal/dlq"
	"switchboard/internal/tenancy"
	"switchboard/internal/tracing"
)

// apiToken creates an API token of role in acme and returns its secret.
func (s *testServer) apiToken(owner, name string, role tenancy.Role) string {
	s.t.Helper()
	var tok api.CreateTokenResponse
	s.must(201, "POST", cat+"/tokens", owner, map[string]any{"name": name, "role": role}).json(s.t, &tok)
	return tok.Token
}

// tracerProvider is the OpenTelemetry SDK exporting, span by span, over
// OTLP/HTTP protobuf to the server with token, as service.
func tracerProvider(t *testing.T, s *testServer, token, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(s.URL+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// checkout sends one trace of three spans as the checkout service: a server
// span, a producer span and a failing client span under it.
func checkout(t *testing.T, tp *sdktrace.TracerProvider, order string) trace.SpanContext {
	t.Helper()
	tr := tp.Tracer("checkout-test")
	ctx, root := tr.Start(t.Context(), "POST /orders", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.route", "/orders"), attribute.String("order.id", order), attribute.Int("http.response.status_code", 201)))
	_, pub := tr.Start(ctx, "orders publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.String("messaging.destination.name", "orders")))
	time.Sleep(2 * time.Millisecond)
	pub.End()
	_, call := tr.Start(ctx, "GET /stock", trace.WithSpanKind(trace.SpanKindClient))
	call.SetStatus(otelcodes.Error, "stock service down")
	call.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	call.End()
	root.End()
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatalf("export: %v", err)
	}
	return root.SpanContext()
}

// An OTLP/HTTP exporter's spans are stored and read back: the trace by its
// id with parents, events and attributes; searches by service, status,
// attribute (indexed or not) and duration; services and operations; and
// another tenant sees none of it.
func TestTraces_ExportedSpansAreSearchedAndRead(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	token := s.apiToken(owner, "checkout", tenancy.Editor)
	tp := tracerProvider(t, s, token, "checkout")
	sc := checkout(t, tp, "o-1")
	checkout(t, tp, "o-2")
	id := sc.TraceID().String()

	var tr api.TraceResponse
	s.must(200, "GET", cat+"/traces/"+id, owner, nil).json(t, &tr)
	if len(tr.Spans) != 3 {
		t.Fatalf("trace %s has %d spans, want 3", id, len(tr.Spans))
	}
	byName := map[string]tracing.Span{}
	for _, sp := range tr.Spans {
		byName[sp.Name] = sp
	}
	root, call := byName["POST /orders"], byName["GET /stock"]
	if root.SpanID != sc.SpanID().String() || root.ParentSpanID != "" || root.Kind != "server" || root.Service != "checkout" || root.Scope != "checkout-test" {
		t.Fatalf("root span %+v", root)
	}
	var attrs map[string]any
	if err := json.Unmarshal(root.Attributes, &attrs); err != nil || attrs["order.id"] != "o-1" || attrs["http.response.status_code"] != float64(201) {
		t.Fatalf("root attributes %s (%v)", root.Attributes, err)
	}
	if call.ParentSpanID != root.SpanID || call.Status != "error" || call.StatusMessage != "stock service down" || call.Kind != "client" ||
		len(call.Events) != 1 || call.Events[0].Name != "retry" || call.Events[0].Attributes["attempt"] != float64(2) {
		t.Fatalf("client span %+v", call)
	}
	if pub := byName["orders publish"]; pub.DurationNs < int64(2*time.Millisecond) || pub.Kind != "producer" {
		t.Fatalf("producer span %+v", pub)
	}

	search := func(query string) []tracing.Trace {
		t.Helper()
		var page struct {
			Items []tracing.Trace `json:"items"`
		}
		s.must(200, "GET", cat+"/traces?"+query, owner, nil).json(t, &page)
		return page.Items
	}
	if got := search("service=checkout"); len(got) != 2 || got[1].TraceID != id || got[1].Spans != 3 || got[1].Errors != 1 ||
		got[1].RootName != "POST /orders" || got[1].RootService != "checkout" {
		t.Fatalf("search by service: %+v", got)
	}
	if got := search("attr=order.id%3Do-1"); len(got) != 1 || got[0].TraceID != id {
		t.Fatalf("search by an attribute that is not indexed: %+v", got)
	}
	if got := search("attr=http.route%3D/orders&attr=http.response.status_code%3D201"); len(got) != 2 {
		t.Fatalf("search by indexed attributes: %+v", got)
	}
	if got := search("status=error&operation=GET+/stock"); len(got) != 2 {
		t.Fatalf("search for errors: %+v", got)
	}
	if got := search("service=billing"); len(got) != 0 {
		t.Fatalf("search for another service: %+v", got)
	}
	if got := search("min_duration=1h"); len(got) != 0 {
		t.Fatalf("search for long spans: %+v", got)
	}
	if got := search("limit=1"); len(got) != 1 {
		t.Fatalf("a page of one: %+v", got)
	}

	var services struct {
		Items []tracing.Service `json:"items"`
	}
	s.must(200, "GET", cat+"/trace-services", owner, nil).json(t, &services)
	if len(services.Items) != 1 || services.Items[0].Name != "checkout" {
		t.Fatalf("services %+v", services.Items)
	}
	var ops struct {
		Items []tracing.Operation `json:"items"`
	}
	s.must(200, "GET", cat+"/trace-services/checkout/operations", owner, nil).json(t, &ops)
	if len(ops.Items) != 3 {
		t.Fatalf("operations %+v", ops.Items)
	}
	s.must(404, "GET", cat+"/trace-services/billing/operations", owner, nil)

	// Another tenant: nothing.
	other := s.signup("other@globex.test", "globex")
	s.must(404, "GET", "/api/v1/tenants/globex/traces/"+id, other, nil)
	var none struct {
		Items []tracing.Trace `json:"items"`
	}
	s.must(200, "GET", "/api/v1/tenants/globex/traces?service=checkout", other, nil).json(t, &none)
	if len(none.Items) != 0 {
		t.Fatalf("another tenant found %+v", none.Items)
	}
	s.must(404, "GET", cat+"/traces/"+id, other, nil)
}

// otlpRequest builds an OTLP request of one span per name, for checkout.
func otlpRequest(mutate func(ptrace.Span, int), names ...string) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for i, n := range names {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(n)
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{9, byte(i + 1)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		if mutate != nil {
			mutate(sp, i)
		}
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// otlpStatus decodes an OTLP error answer: a google.rpc.Status, as JSON or
// protobuf as its Content-Type says.
func otlpStatus(t *testing.T, r response) string {
	t.Helper()
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	switch ct := r.Header.Get("Content-Type"); ct {
	case "application/json":
		if err := json.Unmarshal(r.Body, &st); err != nil {
			t.Fatalf("status %d: body %q is not an OTLP Status (%v)", r.Status, r.Body, err)
		}
	case "application/x-protobuf":
		for b := r.Body; len(b) > 0; {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				t.Fatalf("status %d: body %q is not an OTLP Status", r.Status, r.Body)
			}
			b = b[n:]
			switch {
			case num == 1 && typ == protowire.VarintType:
				v, m := protowire.ConsumeVarint(b)
				st.Code, b = int(v), b[max(m, 0):]
			case num == 2 && typ == protowire.BytesType:
				v, m := protowire.ConsumeString(b)
				st.Message, b = v, b[max(m, 0):]
			default:
				t.Fatalf("status %d: body %q has field %d", r.Status, r.Body, num)
			}
		}
	default:
		t.Fatalf("status %d: Content-Type %q, want an OTLP Status: %s", r.Status, ct, r.Body)
	}
	if st.Code == 0 || st.Message == "" {
		t.Fatalf("status %d: body %q is not an OTLP Status", r.Status, r.Body)
	}
	return st.Message
}

// Bad ingest gets OTLP's answers: wrong credentials, wrong content,
// bodies too large as sent or decompressed, and spans the store will not
// take reported as partial success while the others are stored.
func TestTraces_BadIngestIsRefusedAsOTLPSays(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	editor := s.apiToken(owner, "checkout", tenancy.Editor)
	viewer := s.apiToken(owner, "dashboards", tenancy.Viewer)
	good, err := otlpRequest(nil, "ok").MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	asJSON := []string{"Content-Type", "application/json"}

	for _, c := range []struct {
		name, token string
		body        any
		headers     []string
		status      int
		says        string
	}{
		{"no token", "", good, asJSON, 401, "API token"},
		{"a sign-in token", owner, good, asJSON, 401, "API token"},
		{"a viewer's token", viewer, good, asJSON, 403, ""},
		{"a revoked-looking token", "sb_nottoken", good, asJSON, 401, ""},
		{"text", editor, "hello", []string{"Content-Type", "text/plain"}, 415, "application/x-protobuf"},
		{"JSON that is not OTLP", editor, `{"resourceSpans": 7}`, asJSON, 400, "not an OTLP"},
		{"protobuf that is not OTLP", editor, []byte{0xff, 0xff, 0xff}, []string{"Content-Type", "application/x-protobuf"}, 400, "not an OTLP"},
		{"gzip that is not", editor, good, append([]string{"Content-Encoding", "gzip"}, asJSON...), 400, "gzip"},
		{"brotli", editor, good, append([]string{"Content-Encoding", "br"}, asJSON...), 415, "gzip"},
		{"too large as sent", editor, bytes.Repeat([]byte{' '}, api.MaxOTLPBody+1), asJSON, 413, "as sent"},
	} {
		r := s.do("POST", "/v1/traces", c.token, c.body, c.headers...)
		if r.Status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Body)
			continue
		}
		if msg := otlpStatus(t, r); !strings.Contains(msg, c.says) {
			t.Errorf("%s: says %q, want it to mention %q", c.name, msg, c.says)
		}
	}

	// A gzip bomb: small as sent, over the bound decompressed.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	if _, err := zw.Write(bytes.Repeat([]byte{' '}, api.MaxOTLPDecompressed+1)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	r := s.do("POST", "/v1/traces", editor, bomb.Bytes(), append([]string{"Content-Encoding", "gzip"}, asJSON...)...)
	if r.Status != 413 || !strings.Contains(otlpStatus(t, r), "decompressed") {
		t.Fatalf("gzip bomb of %d bytes: %d %s", bomb.Len(), r.Status, r.Body)
	}

	// Partial success: the bad spans are named, the good one stored.
	req := otlpRequest(func(sp ptrace.Span, i int) {
		switch i {
		case 1:
			sp.SetTraceID(pcommon.TraceID{})
		case 2:
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(48 * time.Hour)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(49 * time.Hour)))
		case 3:
			for k := range tracing.MaxAttributes + 1 {
				sp.Attributes().PutInt("a"+string(rune('a'+k%26))+strings.Repeat("x", k/26), int64(k))
			}
		case 4:
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().AddDate(0, 0, -30)))
		}
	}, "kept", "no trace id", "from the future", "too many attributes", "from the past")
	body, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw = gzip.NewWriter(&zipped)
	zw.Write(body)
	zw.Close()
	r = s.must(200, "POST", "/v1/traces", editor, zipped.Bytes(), "Content-Type", "application/x-protobuf", "Content-Encoding", "gzip")
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(r.Body); err != nil {
		t.Fatal(err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedSpans() != 4 || !strings.Contains(ps.ErrorMessage(), "no trace id") || !strings.Contains(ps.ErrorMessage(), "ahead of this server's clock") {
		t.Fatalf("partial success: %d %q", ps.RejectedSpans(), ps.ErrorMessage())
	}
	var tr api.TraceResponse
	s.must(200, "GET", cat+"/traces/01020301000000000000000000000000", owner, nil).json(t, &tr)
	if len(tr.Spans) != 1 || tr.Spans[0].Name != "kept" {
		t.Fatalf("stored %+v", tr.Spans)
	}
	for _, q := range []string{"/traces/zz", "/traces/00000000000000000000000000000000", "/traces?status=bad", "/traces?min_duration=soon",
		"/traces?since=yesterday", "/traces?attr=novalue", "/traces?min_duration=2s&max_duration=1s", "/traces?cursor=bogus"} {
		if r := s.do("GET", cat+q, owner, nil); r.Status != 400 || r.problemCode(t) != "invalid" {
			t.Errorf("GET %s: %d %s, want 400", q, r.Status, r.Body)
		}
	}
	s.must(404, "GET", cat+"/traces/0102030400000000000000000000ffff", owner, nil)
}

// The live tail sends spans as they arrive, filtered, to a subscriber.
func TestTraces_LiveTailShowsSpansAsTheyArrive(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	token := s.apiToken(owner, "checkout", tenancy.Editor)
	viewer := s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer)
	ls := defectDial(t, s.URL, cat+"/traces/live?status=error", viewer)
	tp := tracerProvider(t, s, token, "checkout")
	sc := checkout(t, tp, "o-1")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := ls.conn.Read(ctx)
		if err != nil {
			t.Fatalf("no spans: %v", err)
		}
		var m defectEnvelope
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type != "spans" {
			continue
		}
		var tm api.TailMessage
		if err := json.Unmarshal(m.Data, &tm); err != nil {
			t.Fatal(err)
		}
		if len(tm.Spans) != 1 || tm.Spans[0].Name != "GET /stock" || tm.Spans[0].TraceID != sc.TraceID().String() || tm.Spans[0].Status != "error" {
			t.Fatalf("live spans %s, want only the failing client span", m.Data)
		}
		break
	}
	ls.conn.Close(websocket.StatusNormalClosure, "")
	if r := s.do("GET", cat+"/traces/live?status=nope", viewer, nil, "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="); r.Status != http.StatusBadRequest {
		t.Fatalf("a bad filter: %d %s", r.Status, r.Body)
	}
}

// The topology with traces laid over it: a declared call seen in spans
// carries its figures, a declared one no span showed is silent, calls and
// publishes only spans show are added undeclared (with a node for a
// service the catalog lacks), services carry what they served; the same
// figures per service, operation and edge come from trace-stats. Declaring
// the undeclared edge turns it into a declared, seen one.
func TestTraces_ServiceMapOverTheTopology(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	token := s.apiToken(owner, "otel", tenancy.Editor)
	for _, name := range []string{"checkout", "stock", "billing"} {
		s.must(201, "POST", cat+"/services", owner, map[string]any{"name": name, "owner_team": "payments"})
	}
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://10.0.0.9:5672/"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": "orders", "broker": "rabbit", "owner_team": "payments"})
	for _, to := range []string{"service:stock", "service:billing"} {
		s.must(201, "POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "calls", "to": to})
	}
	checkoutTP, stockTP, paymentsTP := tracerProvider(t, s, token, "checkout"), tracerProvider(t, s, token, "stock"), tracerProvider(t, s, token, "payments")
	tr := checkoutTP.Tracer("test")
	for i := range 3 {
		ctx, root := tr.Start(t.Context(), "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
		cctx, call := tr.Start(ctx, "GET /stock", trace.WithSpanKind(trace.SpanKindClient))
		_, served := stockTP.Tracer("test").Start(cctx, "GET /stock", trace.WithSpanKind(trace.SpanKindServer))
		if i == 0 {
			served.SetStatus(otelcodes.Error, "out of stock")
		}
		served.End()
		call.End()
		pctx, pay := tr.Start(ctx, "POST /pay", trace.WithSpanKind(trace.SpanKindClient))
		_, charged := paymentsTP.Tracer("test").Start(pctx, "POST /pay", trace.WithSpanKind(trace.SpanKindServer))
		charged.End()
		pay.End()
		_, pub := tr.Start(ctx, "orders publish", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "rabbitmq"), attribute.String("messaging.destination.name", "orders")))
		pub.End()
		root.End()
	}
	for _, tp := range []*sdktrace.TracerProvider{checkoutTP, stockTP, paymentsTP} {
		if err := tp.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	type edge struct {
		From, To, Type string
		Declared       *bool
		Silent         bool
		Traced         *tracing.RED
	}
	var topo struct {
		Nodes []struct {
			ID, Status string
			Traced     *tracing.RED
		}
		Edges []edge
	}
	read := func() map[string]edge {
		s.must(200, "GET", cat+"/topology?traced_since=1h", owner, nil).json(t, &topo)
		out := map[string]edge{}
		for _, e := range topo.Edges {
			out[e.From+" "+e.Type+" "+e.To] = e
		}
		return out
	}
	edges := read()
	stock := edges["service:checkout calls service:stock"]
	if stock.Declared == nil || !*stock.Declared || stock.Silent || stock.Traced == nil || stock.Traced.Count != 3 || stock.Traced.Errors != 1 {
		t.Fatalf("the declared call seen in spans: %+v (%+v)", stock, stock.Traced)
	}
	if billing := edges["service:checkout calls service:billing"]; billing.Declared == nil || !*billing.Declared || !billing.Silent || billing.Traced != nil {
		t.Fatalf("the declared call no span showed: %+v", billing)
	}
	pay := edges["service:checkout calls service:payments"]
	if pay.Declared == nil || *pay.Declared || pay.Traced == nil || pay.Traced.Count != 3 {
		t.Fatalf("the undeclared call: %+v", pay)
	}
	if pub := edges["service:checkout publishes queue:orders"]; pub.Declared == nil || *pub.Declared || pub.Traced == nil || pub.Traced.Count != 3 {
		t.Fatalf("the undeclared publish: %+v", pub)
	}
	nodes := map[string]string{}
	for _, n := range topo.Nodes {
		nodes[n.ID] = n.Status
		if n.ID == "service:stock" && (n.Traced == nil || n.Traced.Count != 3 || n.Traced.Errors != 1 || n.Traced.Rate <= 0) {
			t.Fatalf("what stock served: %+v", n.Traced)
		}
	}
	if nodes["service:payments"] != "missing" {
		t.Fatalf("the service only spans name: %q", nodes["service:payments"])
	}
	// Without traced_since the graph is the catalog's alone.
	var plain struct{ Edges []edge }
	s.must(200, "GET", cat+"/topology", owner, nil).json(t, &plain)
	for _, e := range plain.Edges {
		if e.Declared != nil || e.Traced != nil {
			t.Fatalf("a plain topology carries traces: %+v", e)
		}
	}

	var st tracing.Stats
	s.must(200, "GET", cat+"/trace-stats", owner, nil).json(t, &st)
	ops := map[string]tracing.OperationRED{}
	for _, o := range st.Operations {
		ops[o.Service+" "+o.Kind+" "+o.Name] = o
	}
	if o := ops["stock server GET /stock"]; o.Count != 3 || o.Errors != 1 || o.P99Ms < o.P50Ms {
		t.Fatalf("stock's operation: %+v", o)
	}
	if len(st.Edges) != 3 || len(st.Services) != 3 {
		t.Fatalf("stats edges %+v services %+v", st.Edges, st.Services)
	}

	// One action declares what spans showed.
	s.must(201, "POST", cat+"/relations", owner, map[string]string{"from": "service:checkout", "type": "publishes", "to": "queue:orders"})
	if pub := read()["service:checkout publishes queue:orders"]; pub.Declared == nil || !*pub.Declared || pub.Silent || pub.Traced == nil {
		t.Fatalf("the publish once declared: %+v", pub)
	}
	for _, q := range []string{"/topology?traced_since=forever", "/topology?traced_since=200h", "/topology?traced_since=-1h", "/trace-stats?since=2026-01-01T00:00:00Z"} {
		if r := s.do("GET", cat+q, owner, nil); r.Status != 400 {
			t.Errorf("GET %s: %d %s, want 400", q, r.Status, r.Body)
		}
	}
}

// OTLP over gRPC, on its own listener: the SDK's gRPC exporter's spans are
// stored as over HTTP; a viewer's token is refused (PermissionDenied),
// a missing one Unauthenticated.
func TestTraces_OTLPOverGRPC(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *app.Config) { c.OTLPGRPCAddr = "127.0.0.1:0" })
	owner := s.signup("owner@acme.test", "acme")
	editor, viewer := s.apiToken(owner, "grpc", tenancy.Editor), s.apiToken(owner, "read", tenancy.Viewer)
	export := func(token string) (trace.SpanContext, error) {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(s.App.OTLPGRPCAddr()), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithCompressor("gzip"), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})}
		if token != "" {
			opts = append(opts, otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + token}))
		}
		exp, err := otlptracegrpc.New(t.Context(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(context.Background())
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("grpc-svc"))))
		_, sp := tp.Tracer("t").Start(t.Context(), "over grpc")
		sp.End()
		stub := tracetest.SpanStubFromReadOnlySpan(sp.(sdktrace.ReadOnlySpan))
		return sp.SpanContext(), exp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{stub.Snapshot()})
	}
	sc, err := export(editor)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	var tr api.TraceResponse
	s.must(200, "GET", cat+"/traces/"+sc.TraceID().String(), owner, nil).json(t, &tr)
	if len(tr.Spans) != 1 || tr.Spans[0].Name != "over grpc" || tr.Spans[0].Service != "grpc-svc" {
		t.Fatalf("stored %+v", tr.Spans)
	}
	for token, want := range map[string]codes.Code{viewer: codes.PermissionDenied, "": codes.Unauthenticated, "sb_bogus": codes.Unauthenticated} {
		if _, err := export(token); status.Code(err) != want {
			t.Errorf("token %q: %v, want %s", token, err, want)
		}
	}
}

// A replay is one trace with what it caused: the server records the job
// and each batch it publishes, the replayed message carries the batch's
// traceparent (its own kept aside, and linked), and the span a consumer
// makes of the replayed message lands in the same trace as a child of the
// batch.
func TestTraces_AReplayAndWhatItCausedAreOneTrace(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	token := s.apiToken(owner, "consumer", tenancy.Editor)
	work, dead, ch := rabbittest.DeadLettering(t, "api-", nil)
	s.must(201, "POST", cat+"/brokers", owner, map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://guest:guest@127.0.0.1:5672/"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": dead, "broker": "rabbit", "owner_team": "payments"})
	s.must(201, "POST", cat+"/queues", owner, map[string]any{"name": work, "broker": "rabbit", "owner_team": "payments", "dead_letter_queue": dead})
	const original = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	deadLetter(t, ch, work, amqp.Publishing{MessageId: "order-9", Body: []byte(`{"order":9}`), Headers: amqp.Table{"traceparent": original}})
	d := cat + "/dlq/queue:" + dead
	var msgs api.List[dlq.Message]
	waitFor(t, "the dead letter captured", func() bool {
		s.must(200, "GET", d+"/messages", owner, nil).json(t, &msgs)
		return len(msgs.Items) == 1
	})
	if msgs.Items[0].Traceparent != original {
		t.Fatalf("captured traceparent %q", msgs.Items[0].Traceparent)
	}
	var started api.ReplayResponse
	s.must(202, "POST", d+"/replays", owner, map[string]any{"message_ids": []int64{msgs.Items[0].ID}}).json(t, &started)

	// The consumer: takes the replayed message and records its handling
	// as a child of the context the message carries.
	var got amqp.Delivery
	waitFor(t, "the replayed message", func() bool {
		m, ok, err := ch.Get(work, true)
		if err != nil {
			t.Fatal(err)
		}
		got = m
		return ok
	})
	if got.Headers[dlq.HeaderOriginalTraceparent] != original {
		t.Fatalf("the message's own traceparent was not kept: %v", got.Headers)
	}
	carrier := propagation.MapCarrier{"traceparent": fmt.Sprint(got.Headers["traceparent"])}
	ctx := propagation.TraceContext{}.Extract(t.Context(), carrier)
	tp := tracerProvider(t, s, token, "orders-worker")
	_, consume := tp.Tracer("worker").Start(ctx, "orders process", trace.WithSpanKind(trace.SpanKindConsumer))
	consume.End()
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}

	traceID := strings.ReplaceAll(started.Replay.ID.String(), "-", "")
	var tr api.TraceResponse
	waitFor(t, "the replay's trace: the job, its batch and the consumer", func() bool {
		r := s.do("GET", cat+"/traces/"+traceID, owner, nil)
		if r.Status != 200 {
			return false
		}
		tr = api.TraceResponse{} // a span without a parent leaves out parent_span_id
		r.json(t, &tr)
		return len(tr.Spans) == 3
	})
	byKind := map[string]tracing.Span{}
	for _, sp := range tr.Spans {
		byKind[sp.Kind] = sp
	}
	job, batch, consumer := byKind["internal"], byKind["producer"], byKind["consumer"]
	if job.ParentSpanID != "" || job.Service != "switchboard" || !strings.Contains(job.Name, dead) {
		t.Fatalf("the job's span %+v", job)
	}
	if batch.ParentSpanID != job.SpanID || batch.Name != "replay to "+work || len(batch.Links) != 1 || batch.Links[0].TraceID != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("the batch's span %+v", batch)
	}
	if consumer.ParentSpanID != batch.SpanID || consumer.Service != "orders-worker" {
		t.Fatalf("the consumer's span %+v", consumer)
	}
	var attrs map[string]any
	if err := json.Unmarshal(batch.Attributes, &attrs); err != nil || attrs["switchboard.replay_id"] != started.Replay.ID.String() || attrs["switchboard.tenant_id"] != nil {
		t.Fatalf("the batch's attributes %s (%v)", batch.Attributes, err)
	}
	// The capture that took the message off the DLQ is a span of its own,
	// linked to the trace the message came from.
	var captures api.List[tracing.Trace]
	waitFor(t, "the capture's span", func() bool {
		s.must(200, "GET", cat+"/traces?operation="+url.QueryEscape("capture from queue:"+dead), owner, nil).json(t, &captures)
		return len(captures.Items) == 1
	})
	var capture api.TraceResponse
	s.must(200, "GET", cat+"/traces/"+captures.Items[0].TraceID, owner, nil).json(t, &capture)
	if sp := capture.Spans[0]; sp.Kind != "consumer" || len(sp.Links) != 1 || sp.Links[0].TraceID != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("the capture's span %+v", sp)
	}
}

// The server records spans of its requests (a share of them, and every one
// whose caller's traceparent asks for it) in the system tenant, which the
// platform's operators read and no one else sees or can take the name of.
func TestTraces_TheServerTracesItsRequestsForItsOperators(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, withOperators("op@example.com"), func(c *app.Config) { c.TraceSample = 0 })
	owner := s.signup("owner@acme.test", "acme")
	op := s.signup("op@example.com", "")
	const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
	s.must(200, "GET", cat+"/teams", owner, nil, "traceparent", "00-"+caller+"-00f067aa0ba902b7-01")
	s.must(200, "GET", cat+"/teams", owner, nil) // not sampled, no traceparent
	sys := "/api/v1/tenants/switchboard-system"
	var tr api.TraceResponse
	waitFor(t, "the request's spans in the system tenant", func() bool {
		r := s.do("GET", sys+"/traces/"+caller, op, nil)
		tr = api.TraceResponse{}
		if r.Status == 200 {
			r.json(t, &tr)
		}
		return len(tr.Spans) >= 2
	})
	req, db := tr.Spans[0], tr.Spans[1]
	if req.Name != "GET /api/v1/tenants/:tenant/teams" || req.Kind != "server" || req.ParentSpanID != "00f067aa0ba902b7" || req.Service != "switchboard" {
		t.Fatalf("the request's span %+v", req)
	}
	var attrs map[string]any
	if err := json.Unmarshal(db.Attributes, &attrs); err != nil || db.Kind != "client" || db.ParentSpanID != req.SpanID ||
		attrs["db.system"] != "postgresql" || !strings.Contains(fmt.Sprint(attrs["db.query.text"]), "teams") {
		t.Fatalf("the database call's span %+v %s", db, db.Attributes)
	}
	// A lock taken: the Raft operation is a span under the request's.
	const locker = "5bf92f3577b34da6a3ce929d0e0e4736"
	s.must(200, "POST", cat+"/locks/migrator", owner, map[string]any{"owner": "pod-a", "ttl_ms": 10000}, "traceparent", "00-"+locker+"-00f067aa0ba902b7-01")
	waitFor(t, "the lock's span", func() bool {
		r := s.do("GET", sys+"/traces/"+locker, op, nil)
		tr = api.TraceResponse{}
		if r.Status == 200 {
			r.json(t, &tr)
		}
		for _, sp := range tr.Spans {
			if sp.Name == "lock acquire" && sp.ParentSpanID == tr.Spans[0].SpanID {
				return true
			}
		}
		return false
	})
	var found api.List[tracing.Trace]
	s.must(200, "GET", sys+"/traces?service=switchboard", op, nil).json(t, &found)
	if len(found.Items) != 2 {
		t.Fatalf("the system tenant holds %d traces, want the one asked for: %+v", len(found.Items), found.Items)
	}
	wantProblem(t, s.do("GET", sys+"/traces", owner, nil), 404, "not_found")
	wantProblem(t, s.do("POST", "/api/v1/tenants", owner, map[string]any{"slug": "switchboard-system", "name": "Mine"}), 409, "conflict")
	wantProblem(t, s.do("PUT", sys+"/tracing", op, map[string]int{"retention_days": 1}), 403, "forbidden")
}

// Over its rate, a gRPC exporter is told ResourceExhausted with RetryInfo
// (OTLP's exporters retry it only then, after the delay it gives).
func TestTraces_OTLPOverGRPCOverTheRateCarriesRetryInfo(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *app.Config) { c.OTLPGRPCAddr = "127.0.0.1:0"; c.SpansPerSecond = 2 })
	owner := s.signup("owner@acme.test", "acme")
	editor := s.apiToken(owner, "grpc", tenancy.Editor)
	conn, err := grpc.NewClient(s.App.OTLPGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+editor)
	var trailer metadata.MD
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, otlpRequest(nil, "a", "b", "c", "d", "e"), grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("5 spans at 2 a second: %v, want ResourceExhausted", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay < time.Second || trailer.Get("retry-after") == nil {
		t.Fatalf("details %v, trailer %v: want RetryInfo of at least 1 s and retry-after", st.Details(), trailer)
	}
}
