package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"switchboard/e2e/client"
)

// exporter is the OpenTelemetry SDK exporting over OTLP/HTTP to s with
// token, as service, each span as it ends.
func exporter(t *testing.T, s *server, token, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(s.URL+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}))
	mustOK(t, "the OTLP exporter", err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// TestTraces_LiveTailTraceAndUndeclaredEdgeInTheBrowser opens the live
// tail, has two services export a trace (checkout calls stock, which
// fails), sees the spans arrive without a reload with the error marked,
// opens the trace from its row, reads a span's details and folds the
// root's subtree, then finds the call on the topology as an undeclared
// edge and declares it from the page.
func TestTraces_LiveTailTraceAndUndeclaredEdgeInTheBrowser(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "shop", Name: "Shop"})
	mustOK(t, "create the team", err)
	base := "/api/v1/tenants/acme"
	for _, name := range []string{"checkout", "stock"} {
		catalogCall(t, ctx, s, api, http.MethodPost, base+"/services", map[string]any{"name": name, "owner_team": "shop"})
	}
	tok, err := api.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "exporter", Role: "editor"})
	mustOK(t, "create the ingest token", err)

	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/t/acme/traces/live", chromedp.WaitVisible(chromedp.CSS(`[data-testid="trace-tail"]`)))
	b.waitFor(t, "the live tail to connect", `document.getElementById('trace-tail').dataset.state === 'live'`)
	value(t, b, "mark the page", chromedp.Evaluate[bool](`window.__notReloaded = true`))

	// checkout's server span calls stock (a client span), whose server
	// span fails: a client/server pair across two services.
	checkout, stock := exporter(t, s, tok.Secret, "checkout"), exporter(t, s, tok.Secret, "stock")
	cctx, root := checkout.Tracer("e2e").Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
	callCtx, call := checkout.Tracer("e2e").Start(cctx, "GET /stock/42", trace.WithSpanKind(trace.SpanKindClient))
	_, served := stock.Tracer("e2e").Start(callCtx, "GET /stock/{id}", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.route", "/stock/{id}")))
	served.SetStatus(otelcodes.Error, "out of stock")
	time.Sleep(3 * time.Millisecond)
	served.End()
	call.End()
	root.End()
	id := root.SpanContext().TraceID().String()

	rows := `document.querySelectorAll('#trace-tail tbody tr[data-trace="` + id + `"]')`
	b.waitFor(t, "the trace's three spans in the tail", rows+`.length === 3`)
	if !value(t, b, "check the page was not reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the spans came through a reload, not live")
	}
	errRow := `document.querySelector('#trace-tail tr.tail-error[data-span="` + served.SpanContext().SpanID().String() + `"]')`
	b.waitFor(t, "the failed span highlighted", errRow)
	b.screenshot(t, "traces-live-tail")

	// A filter chip narrows the tail to errors; removing it widens it again.
	b.do(t, "filter the tail to errors",
		chromedp.SetValue(chromedp.CSS(`#tail-filter select[name="status"]`), "error"),
		chromedp.Click(chromedp.CSS(`#tail-filter button[type="submit"]`)))
	b.waitFor(t, "the status chip", `document.querySelector('[data-testid="tail-chips"] li[data-filter="status"]')`)
	b.waitFor(t, "the filtered tail to connect", `document.getElementById('trace-tail').dataset.state === 'live'`)

	// Open the trace from the failed span's row.
	b.do(t, "open the trace from its row", chromedp.Click(chromedp.CSS(`#trace-tail tr.tail-error a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="waterfall"]`)))
	if n := value(t, b, "count the waterfall's rows", chromedp.Evaluate[int](`document.querySelectorAll('#waterfall tr[data-span]').length`)); n != 3 {
		b.fail(t, "the waterfall has %d rows, want 3", n)
	}
	b.waitFor(t, "the failed span selected and its details shown",
		`document.querySelector('[data-testid="span-details"]') && document.querySelector('[data-testid="span-details"]').textContent.includes('out of stock')`)
	// Another span's details, fetched without a reload.
	value(t, b, "mark the trace page", chromedp.Evaluate[bool](`window.__notReloaded = true`))
	rootID := root.SpanContext().SpanID().String()
	b.do(t, "open the root span's details", chromedp.Click(chromedp.CSS(`tr[data-span="`+rootID+`"] a[data-action="open"]`)))
	b.waitFor(t, "the root span's details", `document.querySelector('[data-testid="span-details"]').dataset.span === '`+rootID+`'`)
	if !value(t, b, "check the trace page was not reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the details came through a reload")
	}
	if !strings.Contains(b.location(t), "span="+rootID) {
		b.fail(t, "the address %s does not name the selected span", b.location(t))
	}
	b.do(t, "fold the root's subtree", chromedp.Click(chromedp.CSS(`tr[data-span="`+rootID+`"] [data-action="fold"]`)))
	b.waitFor(t, "its two descendants hidden", `document.querySelectorAll('#waterfall tr[data-span][hidden]').length === 2`)
	b.do(t, "unfold it", chromedp.Click(chromedp.CSS(`tr[data-span="`+rootID+`"] [data-action="fold"]`)))
	b.waitFor(t, "its descendants shown again", `document.querySelectorAll('#waterfall tr[data-span][hidden]').length === 0`)
	b.screenshot(t, "traces-waterfall")

	// The topology with traffic from traces: the call is an undeclared
	// edge; declaring it from the page puts it in the catalog.
	b.do(t, "open the topology with traffic", chromedp.Navigate(s.URL+"/t/acme/topology?traced_since=1h"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="topology-canvas"]`)))
	undeclared := `u|service:checkout|calls|service:stock`
	// Scrolled before anything is measured: the graph reads where its
	// canvas is once a scroll has settled.
	value(t, b, "scroll the graph into view", chromedp.Evaluate[bool](`document.getElementById('topology-canvas').scrollIntoView({block: 'start'}), true`))
	b.waitFor(t, "the graph laid out", `document.body.dataset.graphReady === '2'`)
	b.waitFor(t, "the topology's live stream to connect", `document.querySelector('[data-testid="topology"]').getAttribute('data-live') === 'live'`)
	b.waitFor(t, "the undeclared edge", `window.SwitchboardTopology && window.SwitchboardTopology.edgePoint(`+jsString(undeclared)+`)`)
	type point struct{ X, Y float64 }
	pt := value(t, b, "find the edge", chromedp.Evaluate[point](`window.SwitchboardTopology.edgePoint(`+jsString(undeclared)+`)`))
	// The pointer moves onto the edge before it clicks, as a hand does
	// (the graph takes a press without a move before it as no tap).
	b.do(t, "select the edge", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pt.X, pt.Y), chromedp.Sleep(100*time.Millisecond), chromedp.MouseClickXY(pt.X, pt.Y))
	b.waitFor(t, "the edge's flag", `document.querySelector('[data-testid="topology-edge-flag"]').textContent.includes('not in the catalog')`)
	if tr := value(t, b, "read the edge's traffic", chromedp.Text(chromedp.CSS(`[data-testid="topology-edge-traffic"]`))); !strings.Contains(tr, "1 in the window") {
		b.fail(t, "the edge's traffic reads %q", tr)
	}
	b.screenshot(t, "topology-undeclared")
	b.do(t, "declare it", chromedp.Click(chromedp.CSS(`[data-testid="topology-declare"]`)))
	b.waitFor(t, "the edge declared", `window.SwitchboardTopology.edgePoint('r|service:checkout|calls|service:stock') && !window.SwitchboardTopology.edgePoint(`+jsString(undeclared)+`)`)

	var topo struct {
		Edges []struct {
			From, To, Type string
			Declared       *bool
		}
	}
	getJSON(t, ctx, s, api, base+"/topology?traced_since=1h", &topo)
	found := false
	for _, e := range topo.Edges {
		if e.From == "service:checkout" && e.Type == "calls" && e.To == "service:stock" {
			found = e.Declared != nil && *e.Declared
		}
	}
	if !found {
		raw, _ := json.Marshal(topo)
		t.Fatalf("after declaring, the API's topology has no declared checkout calls stock: %s", raw)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
