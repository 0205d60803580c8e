package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/eventstore"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// CreateSubscriptionRequest creates a named subscription whose checkpoint
// the server keeps.
type CreateSubscriptionRequest struct {
	// Category restricts the subscription to one category; "" (or absent)
	// reads the whole log.
	Category string `json:"category"`
	// FromPosition is the first position to deliver (default 0: the whole
	// log).
	FromPosition int64 `json:"from_position"`
	// MemberTTLMs is how long a consumer-group member stays in the group
	// without fetching or acknowledging (default 30000).
	MemberTTLMs int64 `json:"member_ttl_ms,omitempty"`
}

// AckRequest moves a subscription's checkpoint (or a group member's)
// forward to position, the through of the batch handled.
type AckRequest struct {
	Position *int64 `json:"position"`
	// Member is the consumer-group member acknowledging; absent for a
	// single consumer.
	Member string `json:"member,omitempty"`
	// Generation is the generation of the batch acknowledged; required with
	// member. An older generation is refused with 409: fetch again.
	Generation *int64 `json:"generation,omitempty"`
}

// subscriptionRoutes are the routes of named subscriptions and consumer groups.
func (a *API) subscriptionRoutes() []route {
	t := v1 + "/tenants/:tenant"
	return []route{
		{Method: http.MethodPut, Path: t + "/subscriptions/:name", Summary: "Create a named subscription (201), or confirm an identical one (200); other settings are 409. The name \"live\" is reserved", Tag: "subscriptions", Auth: authTenant, Request: CreateSubscriptionRequest{}, Response: eventstore.NamedSubscription{}, Status: 201, handler: a.createSubscription},
		{Method: http.MethodGet, Path: t + "/subscriptions", Summary: "List named subscriptions with their checkpoints", Tag: "subscriptions", Auth: authTenant, Response: List[eventstore.NamedSubscription]{}, Status: 200, Paged: true, handler: a.listSubscriptions},
		{Method: http.MethodGet, Path: t + "/subscriptions/:name", Summary: "A named subscription, its checkpoint and its consumer-group members", Tag: "subscriptions", Auth: authTenant, Response: eventstore.NamedSubscription{}, Status: 200, handler: a.getSubscription},
		{Method: http.MethodDelete, Path: t + "/subscriptions/:name", Summary: "Delete a named subscription and its checkpoints", Tag: "subscriptions", Auth: authTenant, Status: 204, handler: a.deleteSubscription},
		{Method: http.MethodGet, Path: t + "/subscriptions/:name/events", Summary: "The next events after the checkpoint (limit); with member, join or heartbeat that consumer-group member and get only its streams. Acknowledge the batch's through", Tag: "subscriptions", Auth: authTenant, Response: eventstore.Batch{}, Status: 200, Query: []queryParam{{"limit", "integer", "at most this many events"}, {"member", "string", "the consumer-group member fetching: it joins or heartbeats and gets only its streams"}}, handler: a.fetchSubscription},
		{Method: http.MethodPost, Path: t + "/subscriptions/:name/ack", Summary: "Move the checkpoint (or a member's, with member and generation) forward to position; never backwards, never past the end of the log", Tag: "subscriptions", Auth: authTenant, Request: AckRequest{}, Response: eventstore.AckResult{}, Status: 200, handler: a.ackSubscription},
	}
}

// authorizeSubscription checks act on the tenant's streams (a subscription
// reads the log) and returns the :name of the request.
func (a *API) authorizeSubscription(c echo.Context, act string) (string, error) {
	if a.events == nil {
		return "", problem.Errorf(problem.CodeUnavailable, "the event store is not running on this server")
	}
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, act, rbac.Of(p, "stream", "")); err != nil {
		return "", err
	}
	return c.Param("name"), nil
}

func (a *API) createSubscription(c echo.Context) error {
	name, err := a.authorizeSubscription(c, rbac.Use)
	if err != nil {
		return err
	}
	var in CreateSubscriptionRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	// GET .../subscriptions/live is the WebSocket route, so a subscription
	// of that name could not be read.
	if name == "live" {
		return problem.Invalid(map[string]string{"name": `"live" is reserved (GET .../subscriptions/live is the WebSocket subscription)`})
	}
	f := problem.Fields{}
	f.Check(in.MemberTTLMs >= 0, "member_ttl_ms", "must not be negative")
	f.Check(in.MemberTTLMs <= int64(24*time.Hour/time.Millisecond), "member_ttl_ms", "must be at most 86400000")
	if err := f.Err(); err != nil {
		return err
	}
	sub, created, err := a.events.CreateSubscription(c.Request().Context(), principal(c).Tenant, name, eventstore.SubscriptionSpec{
		Category: in.Category, FromPosition: in.FromPosition, MemberTTL: time.Duration(in.MemberTTLMs) * time.Millisecond})
	if err != nil {
		return err
	}
	if !created {
		return c.JSON(http.StatusOK, sub)
	}
	return c.JSON(http.StatusCreated, sub)
}

func (a *API) listSubscriptions(c echo.Context) error {
	if _, err := a.authorizeSubscription(c, rbac.Read); err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	subs, next, err := a.events.ListSubscriptions(c.Request().Context(), principal(c).Tenant, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(subs, next))
}

func (a *API) getSubscription(c echo.Context) error {
	name, err := a.authorizeSubscription(c, rbac.Read)
	if err != nil {
		return err
	}
	sub, err := a.events.GetSubscription(c.Request().Context(), principal(c).Tenant, name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sub)
}

func (a *API) deleteSubscription(c echo.Context) error {
	name, err := a.authorizeSubscription(c, rbac.Use)
	if err != nil {
		return err
	}
	if err := a.events.DeleteSubscription(c.Request().Context(), principal(c).Tenant, name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) fetchSubscription(c echo.Context) error {
	// Joining a consumer group changes every member's assignment, so a
	// fetch with a member needs Use; a plain fetch only reads.
	member := c.QueryParam("member")
	act := rbac.Read
	if member != "" {
		act = rbac.Use
	}
	name, err := a.authorizeSubscription(c, act)
	if err != nil {
		return err
	}
	limit, _, err := pageParams(c)
	if err != nil {
		return err
	}
	b, err := a.events.Fetch(c.Request().Context(), principal(c).Tenant, name, member, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (a *API) ackSubscription(c echo.Context) error {
	name, err := a.authorizeSubscription(c, rbac.Use)
	if err != nil {
		return err
	}
	var in AckRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	f := problem.Fields{}
	f.Check(in.Position != nil, "position", "is required")
	f.Check(in.Member == "" || in.Generation != nil, "generation", "is required with member: the generation of the batch acknowledged")
	if err := f.Err(); err != nil {
		return err
	}
	var gen int64
	if in.Generation != nil {
		gen = *in.Generation
	}
	res, err := a.events.Ack(c.Request().Context(), principal(c).Tenant, name, in.Member, gen, *in.Position)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
