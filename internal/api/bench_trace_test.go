package api_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"switchboard/internal/tenancy"
)

// benchSpans is an OTLP request of n spans as a service's SDK sends them:
// traces of eight spans (a server span, clients, a producer), each with the
// attributes HTTP, RPC and messaging instrumentation set, some with an
// event.
func benchSpans(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", fmt.Sprintf("svc-%d", seed%6))
	res.PutStr("service.version", "1.4.2")
	res.PutStr("host.name", "node-7")
	res.PutStr("telemetry.sdk.language", "go")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("net/http")
	now := time.Now()
	var trace pcommon.TraceID
	var root pcommon.SpanID
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		var sid pcommon.SpanID
		for j := range sid {
			sid[j] = byte(r.Uint32())
		}
		if i%8 == 0 {
			for j := range trace {
				trace[j] = byte(r.Uint32())
			}
			root = sid
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetName("POST /orders")
			sp.Attributes().PutStr("http.route", "/orders")
			sp.Attributes().PutStr("http.request.method", "POST")
			sp.Attributes().PutInt("http.response.status_code", 201)
			sp.Attributes().PutStr("url.path", fmt.Sprintf("/orders/%d", r.IntN(1e6)))
			sp.Attributes().PutStr("user_agent.original", "checkout-web/3.1")
		} else {
			sp.SetParentSpanID(root)
			if i%8 == 7 {
				sp.SetKind(ptrace.SpanKindProducer)
				sp.SetName("orders publish")
				sp.Attributes().PutStr("messaging.system", "rabbitmq")
				sp.Attributes().PutStr("messaging.destination.name", "orders")
				sp.Attributes().PutStr("messaging.message.id", fmt.Sprintf("m-%d", r.IntN(1e9)))
			} else {
				sp.SetKind(ptrace.SpanKindClient)
				sp.SetName("SELECT orders")
				sp.Attributes().PutStr("db.system", "postgresql")
				sp.Attributes().PutStr("db.namespace", "orders")
				sp.Attributes().PutStr("db.query.text", "SELECT id, status FROM orders WHERE id = $1")
				sp.Attributes().PutStr("server.address", "10.0.0.4")
			}
		}
		sp.SetTraceID(trace)
		sp.SetSpanID(sid)
		start := now.Add(-time.Duration(r.IntN(1000)) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(1+r.IntN(50_000)) * time.Microsecond)))
		if r.IntN(20) == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("deadline exceeded")
			ev := sp.Events().AppendEmpty()
			ev.SetName("exception")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(start))
			ev.Attributes().PutStr("exception.type", "context.DeadlineExceeded")
			ev.Attributes().PutStr("exception.message", "context deadline exceeded")
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkTraceIngest: eight exporters send OTLP/HTTP protobuf requests
// of 512 spans each, as fast as the server takes them; b.N requests in
// all. spans/s is the sustained rate, p99 one request's round trip.
func BenchmarkTraceIngest(b *testing.B) {
	const exporters, batch = 8, 512
	s := newTestServer(b)
	owner := s.signup("bench@example.com", "bench")
	var tok struct {
		Token string `json:"token"`
	}
	s.must(201, "POST", "/api/v1/tenants/bench/tokens", owner, map[string]any{"name": "otlp", "role": tenancy.Editor}).json(b, &tok)
	bodies := make([][]byte, 32)
	for i := range bodies {
		bodies[i] = benchSpans(batch, uint64(i+1))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: exporters}}
	defer client.CloseIdleConnections()
	send := func(body []byte) (int, error) {
		req, _ := http.NewRequest("POST", s.URL+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	for i := range exporters { // warm up: partitions, connections
		if code, err := send(bodies[i]); err != nil || code != 200 {
			b.Fatalf("warm-up: %d %v", code, err)
		}
	}
	var next, retried atomic.Int64
	lat := make([][]time.Duration, exporters)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range exporters {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body := bodies[int(i)%len(bodies)]
				t0 := time.Now()
				for {
					code, err := send(body)
					if err != nil {
						b.Error(err)
						return
					}
					if code == 200 {
						break
					}
					if code != 429 && code != 503 {
						b.Errorf("status %d", code)
						return
					}
					retried.Add(1)
					time.Sleep(50 * time.Millisecond) // an exporter's backoff, short
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(retried.Load()), "retries")
	reportPercentiles(b, all)
}

// loadSpans stores n spans for tenant bench straight in PostgreSQL, as the
// ingest would have: traces of eight spans from twenty services, started
// over the last week, one in twenty failing, with indexed attributes.
func loadSpans(b *testing.B, s *testServer, n int) {
	ctx := b.Context()
	// The partitions: the ingest makes them as spans arrive; here, ahead.
	for d := -1; d <= 8; d++ {
		day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, d)
		if _, err := s.DB.Pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS spans_%s PARTITION OF spans FOR VALUES FROM ('%s') TO ('%s')`,
			day.Format("20060102"), day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly))); err != nil {
			b.Fatal(err)
		}
	}
	const chunk = 500_000
	for from := 0; from < n; from += chunk {
		if _, err := s.DB.Pool.Exec(ctx, `INSERT INTO spans (tenant_id, expires_on, trace_id, span_id, parent_span_id, service, name, kind, start_time,
				duration_ns, status_code, status_message, attributes, resource, attr_index)
			SELECT t.id, (st + interval '7 days')::date, decode(lpad(to_hex(g / 8), 32, '0'), 'hex'), int8send(g),
				CASE WHEN g % 8 = 0 THEN NULL ELSE int8send(g - g % 8) END,
				'svc-' || (g / 8) % 20, CASE WHEN g % 8 = 0 THEN 'POST /orders' ELSE 'op-' || g % 50 END, CASE WHEN g % 8 = 0 THEN 2 ELSE 3 END, st,
				(g * 7919) % 50000000, CASE WHEN g % 20 = 0 THEN 2 ELSE 0 END, '',
				jsonb_build_object('http.route', '/orders', 'order.id', 'o-' || g / 8, 'db.system', 'postgresql'), '{"service.name":"x"}',
				ARRAY['http.route=/orders', 'db.system=postgresql']
			FROM tenants t, generate_series($1::bigint, $2::bigint) g,
				LATERAL (SELECT now() - ((g * 604800.0 / $3) || ' seconds')::interval AS st) x
			WHERE t.slug = 'bench'`, from, min(from+chunk, n)-1, n); err != nil {
			b.Fatal(err)
		}
		b.Logf("%d of %d spans stored", min(from+chunk, n), n)
	}
	if _, err := s.DB.Pool.Exec(ctx, `ANALYZE spans`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTraceRead: with 10 million spans stored (a week of them), a
// trace read by its id, and searches over one day (by service, errors of
// a service, an indexed attribute, a duration); p50 and p99 of each.
func BenchmarkTraceRead(b *testing.B) {
	const n = 10_000_000
	s := newTestServer(b)
	tok := s.signup("bench@example.com", "bench")
	loadSpans(b, s, n)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	get := func(path string) time.Duration {
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/tenants/bench"+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		d := time.Since(t0)
		if res.StatusCode != 200 {
			b.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		return d
	}
	since := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	searches := []string{
		"/traces?since=" + since + "&service=svc-7",
		"/traces?since=" + since + "&service=svc-3&status=error",
		"/traces?since=" + since + "&attr=db.system%3Dpostgresql",
		"/traces?since=" + since + "&min_duration=49ms",
		"/traces?since=" + since + "&operation=op-17",
	}
	r := rand.New(rand.NewPCG(1, 2))
	var byID, search []time.Duration
	// b.Loop runs this function once, so the spans are stored once.
	for i := 0; b.Loop(); i++ {
		byID = append(byID, get(fmt.Sprintf("/traces/%032x", r.IntN(n/8))))
		search = append(search, get(searches[i%len(searches)]))
	}
	p := func(l []time.Duration, q float64) float64 {
		sorted := append([]time.Duration(nil), l...)
		slices.Sort(sorted)
		return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(byID, 0.5), "trace-p50-ms")
	b.ReportMetric(p(byID, 0.99), "trace-p99-ms")
	b.ReportMetric(p(search, 0.5), "search-p50-ms")
	b.ReportMetric(p(search, 0.99), "search-p99-ms")
}
