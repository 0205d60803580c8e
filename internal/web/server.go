package web

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchboard/internal/auth"
	"switchboard/internal/problem"
)

// Config is what the server needs besides the authenticator.
type Config struct {
	// BaseURL is the public URL every replica shares: its origin is the only
	// one browsers may post from or open streams from, and https turns on
	// HSTS.
	BaseURL string
	// TrustProxy takes the client address from X-Forwarded-For; only behind
	// a proxy that sets it.
	TrustProxy bool
	// BodyTimeout is how long a request body may take to arrive
	// (DefaultBodyTimeout when zero).
	BodyTimeout time.Duration
	// MetricsToken, when set, lets GET /metrics on this listener answer a
	// request bearing it; when empty /metrics is not served here (serve
	// MetricsHandler on a listener of its own instead).
	MetricsToken string
	// Registry receives the HTTP metrics and is what /metrics exposes; a
	// new one with the Go runtime collectors when nil.
	Registry *prometheus.Registry
	// Ready reports whether the server can serve (database reachable, Raft
	// group led); /readyz answers 503 while it fails.
	Ready func(ctx context.Context) error
	Log   *slog.Logger
}

// DefaultBodyTimeout is Config.BodyTimeout's default.
const DefaultBodyTimeout = 30 * time.Second

// MaxRequestBytes bounds every request body, whatever its type.
const MaxRequestBytes = 2 << 20

// Server is the one echo server both faces mount on.
type Server struct {
	e         *echo.Echo
	auth      *auth.Service
	log       *slog.Logger
	reg       *prometheus.Registry
	metrics   *httpMetrics
	ready     func(ctx context.Context) error
	origin    string // scheme://host[:port] of BaseURL
	https     bool
	metricsTk string
	renderers []ErrorRenderer
	tracing   requestTracing
}

// Face is a set of routes mounted on the server: the REST API, the UI.
type Face interface {
	Mount(s *Server)
}

// New returns the server with its middleware and operator routes
// (/healthz, /readyz, /metrics); faces add the rest with Mount.
func New(cfg Config, authn *auth.Service) *Server {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	s := &Server{auth: authn, log: cfg.Log, reg: cfg.Registry, ready: cfg.Ready, metricsTk: cfg.MetricsToken}
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Host != "" {
		s.origin = strings.ToLower(u.Scheme + "://" + u.Host)
		s.https = u.Scheme == "https"
	}
	s.metrics = newHTTPMetrics(cfg.Registry)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Pre(headAsGet)
	e.HTTPErrorHandler = s.errorHandler
	e.JSONSerializer = jsonSerializer{}
	if cfg.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(restoreHead)
	e.Use(s.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		s.log.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
		return err
	}}))
	e.Use(s.securityHeaders)
	e.Use(bodyDeadline(cfg.BodyTimeout))
	// OTLP ingest bounds its body itself, as sent and decompressed, and
	// answers in OTLP's own error format.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: "2M",
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path == OTLPTracesPath }}))
	e.Use(decodeParams)
	s.e = e

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsRoute)
	return s
}

// OTLPTracesPath is where OTLP/HTTP exporters send traces.
const OTLPTracesPath = "/v1/traces"

// Echo is the router faces add their routes to.
func (s *Server) Echo() *echo.Echo { return s.e }

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// Log is the server's logger.
func (s *Server) Log() *slog.Logger { return s.log }

// Registry is the metrics registry /metrics exposes.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Origin is the one browser origin the server accepts (scheme://host:port).
func (s *Server) Origin() string { return s.origin }

// Secure reports whether the public URL is https (cookies are Secure).
func (s *Server) Secure() bool { return s.https }

// Mount adds each face's routes.
func (s *Server) Mount(faces ...Face) {
	for _, f := range faces {
		f.Mount(s)
	}
}

// OnError adds a renderer that may answer errors on its own routes before
// the default problem+json.
func (s *Server) OnError(r ErrorRenderer) { s.renderers = append(s.renderers, r) }

// StatusResponse is the answer of /healthz and /readyz.
type StatusResponse struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, StatusResponse{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "err", err)
			return c.JSON(http.StatusServiceUnavailable, StatusResponse{Status: "unavailable", Error: "a dependency is not ready"})
		}
	}
	return c.JSON(http.StatusOK, StatusResponse{Status: "ready"})
}

// MetricsHandler serves the registry, for a listener of its own.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})
}

// metricsRoute serves /metrics on the main listener only to a caller with
// the metrics token: the figures (routes, rates, tenants' activity) are for
// operators.
func (s *Server) metricsRoute(c echo.Context) error {
	if s.metricsTk == "" {
		return problem.Errorf(problem.CodeNotFound, "metrics are served on the metrics listener (SWITCHBOARD_METRICS_ADDR), or here with SWITCHBOARD_METRICS_TOKEN")
	}
	if subtle.ConstantTimeCompare([]byte(bearer(c)), []byte(s.metricsTk)) != 1 {
		return problem.Errorf(problem.CodeUnauthenticated, "send the metrics token as Authorization: Bearer <token>")
	}
	s.MetricsHandler().ServeHTTP(c.Response(), c.Request())
	return nil
}
