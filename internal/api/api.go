package api

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/catalog"
	"switchboard/internal/discovery"
	"switchboard/internal/dlq"
	"switchboard/internal/eventstore"
	"switchboard/internal/idempotency"
	"switchboard/internal/live"
	"switchboard/internal/lockd"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/internal/tracing"
	"switchboard/internal/web"
)

// Deps is what the API needs.
type Deps struct {
	Auth      *auth.Service
	Tenancy   *tenancy.Store
	RBAC      *rbac.Service
	Audit     *audit.Log
	Idem      *idempotency.Store
	Live      *live.Hub
	Locks     *lockd.Node // the Raft group's lock, election and KV services
	Events    *eventstore.Store
	Catalog   *catalog.Store
	Discovery *discovery.Checker
	// DLQ keeps dead letters and replays; Capture and Runner, when set,
	// report capture states and run started replays at once.
	DLQ     *dlq.Store
	Capture *dlq.Capture
	Runner  *dlq.Runner
	// Traces keeps spans; Ingest bounds how fast they come in.
	Traces *tracing.Store
	Ingest *tracing.Gate
	// PeerURLs maps the Raft group's node ids to their Switchboard base
	// URLs, so a follower can forward lock-service requests to the leader.
	PeerURLs map[string]string
	// NodeID is this node's Raft id (the one of PeerURLs to skip).
	NodeID string
	Log    *slog.Logger
}

// API is the REST API: its handlers, the route table they are mounted from,
// and the OpenAPI document generated from that table.
type API struct {
	auth      *auth.Service
	tenancy   *tenancy.Store
	rbac      *rbac.Service
	audit     *audit.Log
	idem      *idempotency.Store
	live      *live.Hub
	locks     *lockd.Node
	events    *eventstore.Store
	catalog   *catalog.Store
	discovery *discovery.Checker
	dlq       *dlq.Store
	capture   *dlq.Capture
	runner    *dlq.Runner
	traces    *tracing.Store
	ingest    *tracing.Gate
	forward   *leaderForwarder // nil without peer URLs
	log       *slog.Logger
	docOnce   docCache
}

// New returns the API; Mount adds its routes to a server.
func New(d Deps) *API {
	a := &API{auth: d.Auth, tenancy: d.Tenancy, rbac: d.RBAC, audit: d.Audit, idem: d.Idem, live: d.Live, locks: d.Locks, events: d.Events, catalog: d.Catalog, discovery: d.Discovery,
		dlq: d.DLQ, capture: d.Capture, runner: d.Runner, traces: d.Traces, ingest: d.Ingest, log: d.Log}
	if a.log == nil {
		a.log = slog.Default()
	}
	if len(d.PeerURLs) > 0 {
		a.forward = newLeaderForwarder(d.NodeID, d.PeerURLs)
	}
	return a
}

// Mount registers every route of the table on s, behind the authentication
// its level asks for (the server answers HEAD on every GET route).
func (a *API) Mount(s *web.Server) {
	e := s.Echo()
	for _, r := range a.routes() {
		if r.handler == nil {
			continue // served by the web server itself (/healthz, /readyz), listed for the document
		}
		h := r.handler
		switch r.Auth {
		case authIdentity:
			h = s.RequireIdentity(h)
		case authTenantStream:
			h = s.RequireTenantStream(a.live.RequireHandshake(h))
		case authTenant:
			if r.Idempotent && a.idem != nil {
				h = a.idempotent(h)
			}
			h = s.RequireTenant(h)
		}
		if needsLeader(r) {
			h = a.toLeader(h) // before authentication: the leader does it
		}
		e.Add(r.Method, r.Path, h)
	}
}

// principal is the caller within the request's tenant.
func principal(c echo.Context) auth.Principal { return web.PrincipalOf(c) }

// identity is the caller of an identity-level route.
func identity(c echo.Context) auth.Identity { return web.IdentityOf(c) }

// OpenAPIDocument is the API's OpenAPI 3.1 document (JSON), for the UI's
// documentation page.
func (a *API) OpenAPIDocument() ([]byte, error) {
	d := a.docs()
	return d.json, d.err
}
