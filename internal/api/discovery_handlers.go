package api

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/catalog"
	"switchboard/internal/discovery"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// DiscoveryResponse is what a broker holds, and how it differs from what
// the catalog declares.
type DiscoveryResponse struct {
	Broker    string              `json:"broker"`
	At        time.Time           `json:"at"`
	Inventory discovery.Inventory `json:"inventory"`
	Drift     []catalog.DriftItem `json:"drift"`
}

// DiscoveryImportResponse lists the entities an import of undeclared
// queues and topics registered.
type DiscoveryImportResponse struct {
	Created []EntityBody `json:"created"`
}

// discover reads broker (which the caller may read) as it is, compares it
// with the queues and topics declared on it, and records the drift.
func (a *API) discover(c echo.Context) (catalog.Entity, DiscoveryResponse, []catalog.Entity, error) {
	ctx, p := c.Request().Context(), principal(c)
	ref := catalog.Ref{Kind: catalog.KindBroker, Namespace: catalog.DefaultNamespace, Name: c.Param("name")}
	b, err := a.catalog.Get(ctx, p.Tenant, ref, a.allow(c, rbac.Read))
	if err != nil {
		return b, DiscoveryResponse{}, nil, err
	}
	creds, err := a.catalog.Credentials(ctx, p.Tenant, b.Name)
	if err != nil {
		return b, DiscoveryResponse{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, discovery.DefaultTimeout)
	defer cancel()
	var inv discovery.Inventory
	switch b.Broker.Type {
	case catalog.RabbitMQ:
		if b.Broker.ManagementURL == "" {
			return b, DiscoveryResponse{}, nil, problem.Errorf(problem.CodeUnprocessable, "broker %q has no management_url: discovery reads RabbitMQ's management API", b.Name)
		}
		user, pass := creds.ManagementUsername, creds.ManagementPassword
		if user == "" {
			user, pass = creds.Username, creds.Password
		}
		inv, err = discovery.RabbitMQ(ctx, discovery.RabbitConfig{Name: b.Name, ManagementURL: b.Broker.ManagementURL, Username: user, Password: pass,
			VHost: b.Broker.VHost, Client: a.outbound})
	case catalog.Kafka:
		kc := discovery.KafkaConfig{Name: b.Name, Seeds: b.Broker.BootstrapServers, Username: creds.Username, Password: creds.Password, Dial: a.dial}
		if b.Broker.SASL != nil {
			kc.SASLMechanism = b.Broker.SASL.Mechanism
		}
		inv, err = discovery.Kafka(ctx, kc)
	}
	if err != nil {
		return b, DiscoveryResponse{}, nil, err
	}
	declared, err := a.declaredOn(c, b.Name)
	if err != nil {
		return b, DiscoveryResponse{}, nil, err
	}
	items := discovery.Drift(b.Name, declared, inv)
	drift := make([]catalog.DriftItem, len(items))
	for i, it := range items {
		drift[i] = catalog.DriftItem{Ref: it.Ref, Kind: it.Kind, Field: it.Field, Declared: it.Declared, Actual: it.Actual, Message: it.Message}
	}
	if err := a.catalog.SetDrift(c.Request().Context(), p.Tenant, b.Name, drift); err != nil {
		return b, DiscoveryResponse{}, nil, err
	}
	return b, DiscoveryResponse{Broker: b.Name, At: time.Now().UTC(), Inventory: inv, Drift: drift}, discovery.Undeclared(b.Name, inv, items), nil
}

// declaredOn lists every queue and topic the catalog declares on broker.
func (a *API) declaredOn(c echo.Context, broker string) ([]catalog.Entity, error) {
	var out []catalog.Entity
	cursor := ""
	for {
		page, next, err := a.catalog.List(c.Request().Context(), principal(c).Tenant, catalog.Filter{Kinds: []string{catalog.KindQueue, catalog.KindTopic}}, cursor, 500,
			func(context.Context, rbac.Object) error { return nil })
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if (e.Queue != nil && e.Queue.Broker == broker) || (e.Topic != nil && e.Topic.Broker == broker) {
				out = append(out, e)
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

func (a *API) discoverBroker(c echo.Context) error {
	_, res, _, err := a.discover(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// importUndeclared registers what the broker holds and the catalog does
// not, owned by the broker's team.
func (a *API) importUndeclared(c echo.Context) error {
	b, _, undeclared, err := a.discover(c)
	if err != nil {
		return err
	}
	if err := a.allow(c, rbac.Update)(c.Request().Context(), b.Object(principal(c).Tenant)); err != nil {
		return err
	}
	out := DiscoveryImportResponse{Created: []EntityBody{}}
	for _, e := range undeclared {
		e.OwnerTeam = b.OwnerTeam
		created, err := a.catalog.Create(c.Request().Context(), principal(c).Tenant, e, nil, a.allow(c, rbac.Create))
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

// dial opens the server's own connections to outside systems.
func (a *API) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if a.dialer != nil {
		return a.dialer(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (a *API) discoveryRoutes() []route {
	t := v1 + "/tenants/:tenant/brokers/:name"
	return []route{
		{Method: http.MethodGet, Path: t + "/discover", Summary: "What the broker holds (RabbitMQ: queues, exchanges, bindings, consumers; Kafka: topics, partitions, consumer groups and lag), and its drift from the catalog", Tag: "catalog", Auth: authTenant, Response: DiscoveryResponse{}, Status: 200, handler: a.discoverBroker},
		{Method: http.MethodPost, Path: t + "/discover/import", Summary: "Register the queues and topics the broker holds and the catalog does not", Tag: "catalog", Auth: authTenant, Response: DiscoveryImportResponse{}, Status: 200, handler: a.importUndeclared},
	}
}
