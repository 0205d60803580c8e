package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/internal/discovery"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// DiscoveryImportResponse lists the entities an import of undeclared
// queues and topics registered.
type DiscoveryImportResponse struct {
	Created []EntityBody `json:"created"`
}

func (a *API) discoverBroker(c echo.Context) error {
	_, res, err := a.discovery.Check(c.Request().Context(), principal(c).Tenant, c.Param("name"), a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// importUndeclared registers what the broker holds and the catalog does
// not, owned by the broker's team, for a caller who may change the broker.
func (a *API) importUndeclared(c echo.Context) error {
	ctx, p := c.Request().Context(), principal(c)
	b, res, err := a.discovery.Check(ctx, p.Tenant, c.Param("name"), a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	if err := a.allow(c, rbac.Update)(ctx, b.Object(p.Tenant)); err != nil {
		return err
	}
	out := DiscoveryImportResponse{Created: []EntityBody{}}
	for _, e := range res.Undeclared {
		created, err := a.catalog.Create(ctx, p.Tenant, e, nil, a.allow(c, rbac.Create))
		if problem.Code(err) == problem.CodeConflict {
			continue
		}
		if err != nil {
			return err
		}
		out.Created = append(out.Created, bodyOf(created))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) discoveryRoutes() []route {
	t := v1 + "/tenants/:tenant/brokers/:name"
	return []route{
		{Method: http.MethodGet, Path: t + "/discover", Summary: "What the broker holds (RabbitMQ: queues, exchanges, bindings, consumers; Kafka: topics, partitions, consumer groups and lag), and its drift from the catalog, which is recorded (and re-checked every few minutes)", Tag: "catalog", Auth: authTenant, Response: discovery.Result{}, Status: 200, handler: a.discoverBroker},
		{Method: http.MethodPost, Path: t + "/discover/import", Summary: "Register the queues and topics the broker holds and the catalog does not", Tag: "catalog", Auth: authTenant, Response: DiscoveryImportResponse{}, Status: 200, handler: a.importUndeclared},
	}
}
