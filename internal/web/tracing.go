package web

import (
	"context"
	"math/rand/v2"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// requestTracing records a server span for a sample of requests.
type requestTracing struct {
	tracer trace.Tracer
	ratio  float64
	attrs  []attribute.KeyValue
}

var traceContext = propagation.TraceContext{}

// TraceRequests records a server span with t for ratio of the requests
// (0 to 1) and for every request whose traceparent says its caller
// records it, each span with attrs. A request not recorded costs a random
// number. Call it before serving.
func (s *Server) TraceRequests(t trace.Tracer, ratio float64, attrs ...attribute.KeyValue) {
	s.tracing = requestTracing{tracer: t, ratio: ratio, attrs: attrs}
}

// startSpan starts the request's span if it is recorded.
func (s *Server) startSpan(c echo.Context, ctx context.Context) (context.Context, trace.Span) {
	rt := s.tracing
	route := c.Path()
	if rt.tracer == nil || route == "" || route == OTLPTracesPath || route == "/metrics" || route == "/healthz" || route == "/readyz" ||
		strings.HasPrefix(route, "/static/") {
		return ctx, nil
	}
	req := c.Request()
	sampled := false
	if req.Header.Get("traceparent") != "" {
		pctx := traceContext.Extract(ctx, propagation.HeaderCarrier(req.Header))
		if sc := trace.SpanContextFromContext(pctx); sc.IsValid() && sc.IsSampled() {
			ctx, sampled = pctx, true
		}
	}
	if !sampled && (rt.ratio <= 0 || rand.Float64() >= rt.ratio) {
		return ctx, nil
	}
	return rt.tracer.Start(ctx, req.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(rt.attrs...),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("http.route", route),
			attribute.String("url.path", req.URL.Path), attribute.String("client.address", c.RealIP())))
}

// endSpan ends a request's span with its answer.
func endSpan(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
