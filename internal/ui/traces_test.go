package ui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// exportCheckout sends, as the checkout service over OTLP/HTTP with token,
// one trace: a server span with a producer span (whose context it returns
// as a traceparent, as the message it sent would carry) and a failing
// client span with an event under it.
func exportCheckout(t *testing.T, url, token string) (root trace.SpanContext, producer, client string, traceparent string) {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(url+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("checkout"))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer("ui-test")
	ctx, r := tr.Start(t.Context(), "POST /orders", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("order.id", "o-7")))
	pctx, pub := tr.Start(ctx, "orders publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.String("messaging.destination.name", "orders")))
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(pctx, carrier)
	time.Sleep(2 * time.Millisecond)
	pub.End()
	_, call := tr.Start(ctx, "GET /stock", trace.WithSpanKind(trace.SpanKindClient))
	call.SetStatus(otelcodes.Error, "stock service down")
	call.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	time.Sleep(3 * time.Millisecond)
	call.End()
	r.End()
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatalf("export: %v", err)
	}
	return r.SpanContext(), pub.SpanContext().SpanID().String(), call.SpanContext().SpanID().String(), carrier["traceparent"]
}

// The tracing pages: the search finds a trace by its spans and explains a
// bad filter; the trace's waterfall lays spans out parent first with the
// critical path and errors marked; a span's details (on the page and as the
// script's fragment) show attributes and events; the dead letter the trace
// produced is linked both ways; another organisation finds nothing.
func TestTracePages_SearchWaterfallDetailsAndDeadLetters(t *testing.T) {
	e := newDLQEnv(t)
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(api(t, e.srv, e.owner, http.MethodPost, "/api/v1/tenants/acme/tokens", map[string]any{"name": "exporter", "role": "editor"}, http.StatusCreated), &tok); err != nil {
		t.Fatal(err)
	}
	root, producer, client, traceparent := exportCheckout(t, e.srv.URL, tok.Token)
	id := root.TraceID().String()
	e.deadLetter(amqp.Publishing{MessageId: "traced-1", ContentType: "application/json", Body: []byte(`{"order":7}`),
		Headers: amqp.Table{"traceparent": traceparent}})

	// The search.
	p := e.ada.get("/t/acme/traces", http.StatusOK)
	wantIn(t, "the search", p.html, `data-testid="trace-`+id+`"`, `href="/t/acme/traces/`+id+`"`, `<option value="checkout">`, "checkout: POST /orders")
	wantIn(t, "errors only", e.ada.get("/t/acme/traces?status=error&window=15m", http.StatusOK).html, `data-testid="trace-`+id+`"`)
	wantIn(t, "an attribute", e.ada.get("/t/acme/traces?attr=order.id%3Do-7", http.StatusOK).html, `data-testid="trace-`+id+`"`)
	wantIn(t, "another service", e.ada.get("/t/acme/traces?service=nobody", http.StatusOK).html, "No trace matches")
	wantIn(t, "a bad duration", e.ada.get("/t/acme/traces?min_duration=soon", http.StatusUnprocessableEntity).html, "min_duration", "250ms")
	wantIn(t, "a window not offered", e.ada.get("/t/acme/traces?window=99h", http.StatusUnprocessableEntity).html, "window")

	// The waterfall: root first, its children under it by start, the
	// failing client call marked, the root on the critical path.
	p = e.ada.get("/t/acme/traces/"+id, http.StatusOK)
	rows := spanRowRE.FindAllStringSubmatch(p.raw, -1)
	if len(rows) != 3 || rows[0][2] != root.SpanID().String() || rows[1][2] != producer || rows[2][2] != client {
		t.Fatalf("waterfall rows %v, want root, producer, client", rows)
	}
	if !strings.Contains(rows[0][1], "wf-critical") || !strings.Contains(rows[2][1], "wf-error") || !strings.Contains(rows[2][1], "wf-critical") {
		t.Errorf("row classes %q, %q: want the root critical, the client call an error on the critical path", rows[0][1], rows[2][1])
	}
	wantIn(t, "the trace page", p.html, `data-testid="trace-dead-letters"`, `data-testid="span-dead-letter-`+producer+`"`, "in "+e.ref(),
		`<rect x="0.000%"`, `data-depth="1"`, `aria-label="Fold the 2 spans under POST /orders"`)
	wantIn(t, "the trace's summary", between(t, p.raw, `data-testid="trace-summary"`, "</p>"), "<time datetime=", "services checkout")
	wantNotIn(t, "the trace page", p.html, "@Time")

	// A span's details, on the page and as the fragment.
	p = e.ada.get("/t/acme/traces/"+id+"?span="+client, http.StatusOK)
	details := between(t, p.html, `data-testid="span-details"`, "</aside>")
	wantIn(t, "the client span's details", details, "GET /stock", "error", "stock service down", "retry", "attempt=2", "service.name", "checkout")
	frag := e.ada.get("/t/acme/traces/"+id+"/spans/"+producer, http.StatusOK)
	wantIn(t, "the producer span's fragment", frag.html, "orders publish", "messaging.destination.name", "Dead letters it sent")
	if strings.Contains(frag.html, "<html") {
		t.Errorf("the fragment is a whole page")
	}
	e.ada.get("/t/acme/traces/"+id+"/spans/0123456789abcdef", http.StatusNotFound)
	e.ada.get("/t/acme/traces/0af7651916cd43dd8448eb211c80319c", http.StatusNotFound)
	e.ada.get("/t/acme/traces/not-a-trace", http.StatusNotFound)

	// From the trace to the dead letter, and back.
	link := deadLetterLinkRE.FindStringSubmatch(p.raw)
	if link == nil {
		t.Fatalf("no link to the dead letter on the trace page")
	}
	dp := e.ada.get(strings.ReplaceAll(link[1], "&amp;", "&"), http.StatusOK)
	if ids := rowIDs(dp.raw); len(ids) != 1 {
		t.Fatalf("the dead letter's link lists %d messages, want 1", len(ids))
	}
	wantIn(t, "the dead letter's drawer", dp.html, `href="/t/acme/traces/`+id+`?span=`+producer+`"`, "Open the trace")

	// The topology's JSON with traffic: the trace's publish is an
	// undeclared edge; a window that is not one is a 400, as in the API.
	wantIn(t, "the topology with traffic", e.ada.get("/t/acme/topology.json?traced_since=1h", http.StatusOK).raw,
		`"from":"service:checkout","to":"queue:orders","type":"publishes","declared":false`)
	wantIn(t, "a bad window", e.ada.get("/t/acme/topology.json?traced_since=forever", http.StatusBadRequest).raw, "traced_since")

	// The live tail's page is the frame its script fills.
	wantIn(t, "the live tail", e.ada.get("/t/acme/traces/live", http.StatusOK).html, `data-ws="/api/v1/tenants/acme/traces/live"`, `src="/static/traces.js"`)

	// Another organisation sees none of it.
	signup(t, e.srv, "bob@example.com", "other")
	bob := newBrowser(t, e.srv, "bob@example.com")
	bob.get("/t/other/traces/"+id, http.StatusNotFound)
	bob.get("/t/acme/traces/"+id, http.StatusNotFound)
	wantNotIn(t, "another organisation's search", bob.get("/t/other/traces?window=168h", http.StatusOK).html, id)
}

var (
	spanRowRE        = regexp.MustCompile(`<tr class="([^"]*)" data-span="([0-9a-f]{16})"`)
	deadLetterLinkRE = regexp.MustCompile(`<a href="([^"]*)" data-testid="trace-dead-letter-\d+"`)
)
