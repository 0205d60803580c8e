package web

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"switchboard/internal/audit"
)

// RequestID returns the id of the request ctx belongs to, or "". It travels
// in the request's audit actor, so one context value carries both.
func RequestID(ctx context.Context) string {
	if a := audit.RequestActor(ctx); a != nil {
		return a.RequestID
	}
	return ""
}

// LogHandler wraps h so every record logged with a request's context carries
// its request_id.
func LogHandler(h slog.Handler) slog.Handler { return ctxHandler{h} }

type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(as)}
}
func (h ctxHandler) WithGroup(name string) slog.Handler { return ctxHandler{h.Handler.WithGroup(name)} }

// newRequestID is 16 hex digits. Request ids correlate logs, problems and
// audit entries; they guard nothing, so a fast generator serves.
func newRequestID() string {
	var r [8]byte
	binary.BigEndian.PutUint64(r[:], rand.Uint64())
	return hex.EncodeToString(r[:])
}

// validRequestID accepts a caller's id only if it is short and plain, so it
// cannot inject into logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// httpMetrics are the request counters and latency histogram. Each
// (method, route, status) keeps its series once looked up, so recording a
// request allocates nothing.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu     sync.RWMutex // guards series
	series map[seriesKey]requestSeries
}

type seriesKey struct {
	method, route string
	status        int
}

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		series: map[seriesKey]requestSeries{},
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe counts one request and its latency.
func (m *httpMetrics) observe(method, route string, status int, elapsed time.Duration) {
	k := seriesKey{metricMethod(method), route, status}
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if !ok {
		m.mu.Lock()
		if s, ok = m.series[k]; !ok {
			s = requestSeries{m.requests.WithLabelValues(k.method, route, strconv.Itoa(status)), m.duration.WithLabelValues(k.method, route)}
			m.series[k] = s
		}
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

// metricMethod bounds the method label: a client may send any token as a
// method, and each would be a new series.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// observe is the outermost middleware. It names the request (its id, in
// the response and in every log record and audit entry of the request, and
// the audit actor authentication fills in) and records it (access log,
// metrics) without allocating: the naming costs the id, one context and the
// request's copy; the record, nothing.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header()[echo.HeaderXRequestID] = []string{id}
		ctx := audit.WithActor(req.Context(), audit.Actor{Name: "anonymous", RemoteAddr: c.RealIP(), RequestID: id})
		ctx, span := s.startSpan(c, ctx)
		c.SetRequest(req.WithContext(ctx))

		if err := next(c); err != nil {
			c.Error(err) // writes the problem response so the status below is final
		}
		if span != nil {
			endSpan(span, c.Response().Status)
		}
		s.record(ctx, req.Method, req.URL.Path, c.Path(), c.Response().Status, time.Since(start))
		return nil
	}
}

// record writes the access log line and the metrics of one request. It
// allocates nothing (BenchmarkRecord): at most five attributes, the request
// id among them, fit in a log record without a spill.
func (s *Server) record(ctx context.Context, method, path, route string, status int, elapsed time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(method, route, status, elapsed)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if (status < 400 && strings.HasPrefix(route, "/static/")) || !s.log.Enabled(ctx, level) {
		return
	}
	s.log.LogAttrs(ctx, level, "request", slog.String("method", method), slog.String("path", path),
		slog.Int("status", status), slog.Int64("duration_us", elapsed.Microseconds())) // integers: the JSON handler formats floats through a marshaller that allocates
}
