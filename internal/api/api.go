package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/eventstore"
	"switchboard/internal/idempotency"
	"switchboard/internal/lockd"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
)

// Deps is what the API needs.
type Deps struct {
	Auth    *auth.Service
	Tenancy *tenancy.Store
	RBAC    *rbac.Service
	Audit   *audit.Log
	Idem    *idempotency.Store
	Locks   *lockd.Node // the Raft group's lock, election and KV services
	Events  *eventstore.Store
	// Operators are the emails of the platform's operators, who alone may
	// change the Raft group's members.
	Operators []string
	// PeerURLs maps the Raft group's node ids to their Switchboard base
	// URLs, so a follower can redirect lock-service writes to the leader.
	PeerURLs map[string]string
	Log      *slog.Logger
	// Ready reports whether the server can serve (database reachable, ...).
	Ready func(ctx context.Context) error
	// TrustProxy takes the client address from X-Forwarded-For; only behind
	// a proxy that sets it.
	TrustProxy bool
	// Registry receives the HTTP and Go runtime metrics; a new one when nil.
	Registry *prometheus.Registry
	// BodyTimeout is how long a request body may take to arrive
	// (DefaultBodyTimeout when zero).
	BodyTimeout time.Duration
}

// DefaultBodyTimeout is Deps.BodyTimeout's default.
const DefaultBodyTimeout = 30 * time.Second

// API is the REST API.
type API struct {
	auth    *auth.Service
	tenancy *tenancy.Store
	rbac    *rbac.Service
	audit   *audit.Log
	idem    *idempotency.Store
	locks   *lockd.Node
	events  *eventstore.Store
	// operators are lower-cased emails (Deps.Operators).
	operators []string
	peerURLs  map[string]string
	log       *slog.Logger
	ready     func(ctx context.Context) error
	reg       *prometheus.Registry
	metrics   *httpMetrics
	// onError lets another surface (the browser UI) answer errors on its own
	// routes; it returns true when it wrote the response.
	onError func(c echo.Context, p Problem) bool
	docOnce docCache
}

// NewServer returns an echo server with the common middleware, the REST API
// and the operator endpoints registered. Other surfaces (the UI) add their
// routes to it.
func NewServer(d Deps) (*echo.Echo, *API) {
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
		d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &API{auth: d.Auth, tenancy: d.Tenancy, rbac: d.RBAC, audit: d.Audit, idem: d.Idem, locks: d.Locks, events: d.Events, log: d.Log, ready: d.Ready, reg: d.Registry}
	a.metrics = newHTTPMetrics(d.Registry)
	a.peerURLs = map[string]string{}
	for id, u := range d.PeerURLs {
		a.peerURLs[id] = strings.TrimRight(u, "/")
	}
	for _, op := range d.Operators {
		a.operators = append(a.operators, strings.ToLower(strings.TrimSpace(op)))
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.errorHandler
	if d.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(a.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		a.log.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
		return err
	}}))
	if d.BodyTimeout <= 0 {
		d.BodyTimeout = DefaultBodyTimeout
	}
	e.Use(bodyDeadline(d.BodyTimeout))
	e.Use(middleware.BodyLimit("2M"))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY", ReferrerPolicy: "same-origin",
	}))
	a.register(e)
	return e, a
}

// OnError sets the hook through which another surface renders its own errors.
func (a *API) OnError(f func(c echo.Context, p Problem) bool) { a.onError = f }

func (a *API) register(e *echo.Echo) {
	for _, r := range a.routes() {
		h := r.handler
		switch r.Auth {
		case authIdentity:
			h = a.requireIdentity(h)
		case authTenantStream:
			h = a.requireTenantStream(h)
		case authTenant:
			if r.Method == http.MethodPost && a.idem != nil {
				h = a.idempotent(h)
			}
			h = a.requireTenant(h)
		}
		e.Add(r.Method, r.Path, h)
	}
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})))
}

type statusResponse struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (a *API) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusResponse{Status: "ok"})
}

func (a *API) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if a.ready != nil {
		if err := a.ready(ctx); err != nil {
			a.log.WarnContext(ctx, "not ready", "err", err)
			return c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "unavailable", Error: "a dependency is not ready"})
		}
	}
	return c.JSON(http.StatusOK, statusResponse{Status: "ready"})
}
