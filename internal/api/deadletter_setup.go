package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/catalog"
	"switchboard/internal/dlq"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// DeadLetteringRequest is what POST .../queues/{name}/dead-lettering takes.
type DeadLetteringRequest struct {
	// RetryDelayMs is how long the retry queue holds a message before it
	// goes back to the queue (1 s to 24 h; default 30 s).
	RetryDelayMs int64 `json:"retry_delay_ms,omitempty"`
}

// DeadLetteringResponse is what was declared on the broker and the queue
// as the catalog now holds it.
type DeadLetteringResponse struct {
	dlq.DeadLettering
	Entity EntityBody `json:"entity"`
}

func (a *API) deadLetterSetupRoutes() []route {
	return []route{{Method: http.MethodPost, Path: v1 + "/tenants/:tenant/queues/:name/dead-lettering",
		Summary: "Set up dead-lettering for a RabbitMQ queue: declare its dead-letter exchange and queue (quorum where the broker has them) and a retry queue that gives messages back after a delay; an existing queue is dead-lettered by a policy (the broker needs a management_url); the catalog then names the dead-letter queue, and capture starts",
		Tag:     "dlq", Auth: authTenant, Request: DeadLetteringRequest{}, OptionalBody: true, Response: DeadLetteringResponse{}, Status: 200, handler: a.setUpDeadLettering}}
}

// setUpDeadLettering is decided on the loaded queue: the caller must be
// allowed to update it (its team, its labels).
func (a *API) setUpDeadLettering(c echo.Context) error {
	if a.capture == nil || a.capture.Brokers == nil {
		return problem.Errorf(problem.CodeUnavailable, "dead-letter capture is not running on this server")
	}
	var in DeadLetteringRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	delay := dlq.DefaultRetryDelay
	if in.RetryDelayMs != 0 {
		delay = time.Duration(min(in.RetryDelayMs, int64(dlq.MaxRetryDelay/time.Millisecond)+1)) * time.Millisecond
	}
	ctx, p := c.Request().Context(), principal(c)
	ref := a.entityRef(c, catalog.KindQueue)
	q, err := a.catalog.Get(ctx, p.Tenant, ref, a.allow(c, rbac.Update))
	if err != nil {
		return err
	}
	set, err := a.capture.Brokers.SetUpDeadLettering(ctx, p.Tenant, q, delay,
		dlq.SetUpRights{Read: a.allow(c, rbac.Read), Create: a.allow(c, rbac.Create), Update: a.allow(c, rbac.Update)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, DeadLetteringResponse{DeadLettering: set, Entity: bodyOf(set.Entity)})
}
