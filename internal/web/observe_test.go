package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"switchboard/internal/audit"
)

// recordingServer is a server whose access log is JSON, as in production,
// written to w.
func recordingServer(w io.Writer) *Server {
	return New(Config{Log: slog.New(LogHandler(slog.NewJSONHandler(w, nil))), Registry: prometheus.NewRegistry()}, nil)
}

// Recording a request (access log line and metrics) allocates nothing once
// its route has been seen: the hot path pays no garbage for being observed.
func TestRecord_AllocatesNothing(t *testing.T) {
	var buf bytes.Buffer
	s := recordingServer(&buf)
	ctx := audit.WithActor(context.Background(), audit.Actor{RequestID: "0123456789abcdef"})
	s.record(ctx, "GET", "/api/v1/tenants/acme/teams/core", "/api/v1/tenants/:tenant/teams/:team", 200, time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("access log %q: %v", buf.String(), err)
	}
	if line["msg"] != "request" || line["method"] != "GET" || line["path"] != "/api/v1/tenants/acme/teams/core" ||
		line["status"] != 200.0 || line["duration_us"] != 1000.0 || line["request_id"] != "0123456789abcdef" {
		t.Fatalf("access log line %v", line)
	}
	if n := counterValue(s.metrics.requests.WithLabelValues("GET", "/api/v1/tenants/:tenant/teams/:team", "200")); n != 1 {
		t.Fatalf("request counter %v, want 1", n)
	}

	allocs := testing.AllocsPerRun(1000, func() {
		buf.Reset()
		s.record(ctx, "GET", "/api/v1/tenants/acme/teams/core", "/api/v1/tenants/:tenant/teams/:team", 200, time.Millisecond)
	})
	// Under the race detector the log handler's pooled buffer is sometimes
	// dropped and made again; anything more is an allocation per request.
	if allowed := map[bool]float64{false: 0, true: 1}[raceEnabled]; allocs > allowed {
		t.Fatalf("recording a request allocates %v times (allowed %v)", allocs, allowed)
	}
}

// A method a client made up is counted under OTHER: it cannot mint series.
func TestRecord_BoundsTheMethodLabel(t *testing.T) {
	s := recordingServer(io.Discard)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("BREW", "/healthz", nil))
	if n := counterValue(s.metrics.requests.WithLabelValues("OTHER", "/healthz", "405")); n != 1 {
		t.Fatalf("BREW /healthz is not counted as OTHER (%v)", n)
	}
}

// BenchmarkRecord: the access log line (JSON) and the metrics of one request.
func BenchmarkRecord(b *testing.B) {
	s := recordingServer(io.Discard)
	ctx := audit.WithActor(context.Background(), audit.Actor{RequestID: "0123456789abcdef"})
	b.ReportAllocs()
	for b.Loop() {
		s.record(ctx, "GET", "/api/v1/tenants/acme/teams/core", "/api/v1/tenants/:tenant/teams/:team", 200, time.Millisecond)
	}
}

// BenchmarkObserve: a request through the outermost middleware to a handler
// that answers 204: naming the request costs its id, one context and the
// request's copy; recording it costs nothing more.
func BenchmarkObserve(b *testing.B) {
	s := recordingServer(io.Discard)
	s.Echo().GET("/ping", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	req := httptest.NewRequest(http.MethodGet, "/ping", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.Handler().ServeHTTP(w, req)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
