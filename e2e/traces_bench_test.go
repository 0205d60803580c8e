package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"switchboard/e2e/client"
)

// tailBatch is how many spans each of the benchmark's exports carries, and
// tailEvery how often one is sent: 800 spans a second.
const (
	tailBatch = 16
	tailEvery = 20 * time.Millisecond
)

// BenchmarkTraceTailToBrowser times spans from their export to their row in
// the live tail of a browser (headless Chromium on this machine): each
// iteration POSTs an OTLP/HTTP protobuf batch whose spans are named after
// the moment it was sent, and an observer in the page records, as each
// row is added, how long ago that was. Reported: p50 and p99 in ms over
// every span shown, and how many the page was told it skipped.
func BenchmarkTraceTailToBrowser(b *testing.B) {
	s := startServerTB(b)
	ctx := b.Context()
	api := signupAndLoginTB(b, ctx, s, "ada@example.com", "acme")
	tok, err := api.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "bench", Role: "editor"})
	if err != nil {
		b.Fatalf("create the ingest token: %v", err)
	}
	tab := newTabTB(b)
	stepTB(b, tab, "log in", chromedp.Navigate(s.URL+"/t/acme/traces/live"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("trace-tail")))
	waitTB(b, tab, "the tail to connect", chromedp.Poll[bool](`document.getElementById('trace-tail').dataset.state === 'live'`))
	runTB(b, tab, "observe the rows", chromedp.Evaluate[bool](`window.__lat = [];
		new MutationObserver(function (ms) {
			var now = Date.now();
			ms.forEach(function (m) { m.addedNodes.forEach(function (n) {
				if (!n.dataset || !n.dataset.trace) { return; }
				var name = n.children[2].textContent;
				window.__lat.push(now - Number(name.slice(name.lastIndexOf(' ') + 1)));
			}); });
		}).observe(document.querySelector('#trace-tail tbody'), {childList: true}); true`))

	hc := &http.Client{Timeout: 10 * time.Second}
	b.Cleanup(hc.CloseIdleConnections)
	sent := 0
	tick := time.NewTicker(tailEvery)
	defer tick.Stop()
	for b.Loop() {
		<-tick.C
		body, err := ptraceotlp.NewExportRequestFromTraces(tailSpans(time.Now())).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
		res, err := hc.Do(req)
		if err != nil {
			b.Fatalf("export: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("export: %d", res.StatusCode)
		}
		sent += tailBatch
	}
	b.StopTimer()
	// Every span is either shown or counted as skipped by the page.
	all := `(function () { var s = document.querySelector('[data-testid="tail-skipped"]').textContent;
		return window.__lat.length + (parseInt(s, 10) || 0) >= ` + strconv.Itoa(sent) + `; })()`
	waitTB(b, tab, "every span shown or skipped", chromedp.Poll[bool](all))
	lat := runTB(b, tab, "read the latencies", chromedp.Evaluate[[]float64](`window.__lat`))
	if len(lat) == 0 {
		b.Fatalf("no span reached the page")
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(float64(sent-len(lat)), "skipped-spans")
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "spans/s")
}

// runTB runs one action that returns a value, for a benchmark.
func runTB[T any](b *testing.B, tab context.Context, what string, action chromedp.Action[T]) T {
	b.Helper()
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
	return v
}

// tailSpans is one export of the benchmark: tailBatch spans of one trace,
// each named "bench <unix ms of now>".
func tailSpans(now time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench")
	ss := rs.ScopeSpans().AppendEmpty()
	var trace pcommon.TraceID
	_, _ = rand.Read(trace[:])
	name := "bench " + strconv.FormatInt(now.UnixMilli(), 10)
	for i := range tailBatch {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(name)
		sp.SetTraceID(trace)
		var id pcommon.SpanID
		_, _ = rand.Read(id[:])
		sp.SetSpanID(id)
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	return td
}
