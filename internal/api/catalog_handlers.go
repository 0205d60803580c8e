package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/catalog"
	"switchboard/internal/live"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tracing"
)

// EntityBody is a catalog entity on the wire: the fields every kind has,
// then the fields of each kind (a field of another kind is refused). For a
// broker, kind is the broker's type (rabbitmq or kafka); for every other
// kind it is the entity's kind and may be left out of requests.
type EntityBody struct {
	Kind        string            `json:"kind,omitempty"`
	Name        string            `json:"name,omitempty"` // required when registering
	Namespace   string            `json:"namespace,omitempty"`
	OwnerTeam   string            `json:"owner_team,omitempty"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Links       []catalog.Link    `json:"links,omitempty"`

	// service
	Endpoints   []catalog.Endpoint   `json:"endpoints,omitempty"`
	HealthCheck *catalog.HealthCheck `json:"health_check,omitempty"`
	// broker: url (amqp://user:pass@host:5672/: the user and password are
	// kept apart, sealed, and never shown again), vhost, management_url;
	// or bootstrap_servers, sasl, tls
	URL              string            `json:"url,omitempty"`
	VHost            string            `json:"vhost,omitempty"`
	ManagementURL    string            `json:"management_url,omitempty"`
	BootstrapServers []string          `json:"bootstrap_servers,omitempty"`
	SASL             *SASLBody         `json:"sasl,omitempty"`
	TLS              *catalog.KafkaTLS `json:"tls,omitempty"`
	// queue (and topic: broker)
	Broker             string            `json:"broker,omitempty"`
	Bindings           []catalog.Binding `json:"bindings,omitempty"`
	DeadLetterExchange string            `json:"dead_letter_exchange,omitempty"`
	DeadLetterQueue    string            `json:"dead_letter_queue,omitempty"`
	// topic
	Partitions      int    `json:"partitions,omitempty"`
	DeadLetterTopic string `json:"dead_letter_topic,omitempty"`
	// saga
	Steps []catalog.SagaStep `json:"steps,omitempty"`

	// Answered, ignored in requests.
	HasCredentials *bool           `json:"has_credentials,omitempty"`
	Health         *catalog.Health `json:"health,omitempty"`
	Source         string          `json:"source,omitempty"`
	Orphaned       bool            `json:"orphaned,omitempty"`
	Version        int64           `json:"version,omitempty"`
	CreatedAt      *time.Time      `json:"created_at,omitempty"`
	UpdatedAt      *time.Time      `json:"updated_at,omitempty"`
}

// SASLBody is a Kafka broker's SASL settings; the password is sealed and
// never answered.
type SASLBody struct {
	Mechanism string `json:"mechanism"`
	Username  string `json:"username"`
	Password  string `json:"password,omitempty"`
}

// kindPaths maps each native kind to its collection's path segment.
var kindPaths = map[string]string{
	catalog.KindService: "services", catalog.KindBroker: "brokers", catalog.KindQueue: "queues",
	catalog.KindTopic: "topics", catalog.KindSaga: "sagas",
}

func bodyOf(e catalog.Entity) EntityBody {
	b := EntityBody{Kind: e.Kind, Name: e.Name, Namespace: e.Namespace, OwnerTeam: e.OwnerTeam, Description: e.Description,
		Labels: e.Labels, Links: e.Links, Health: e.Health, Source: e.Source, Orphaned: e.Orphaned, Version: e.Version,
		CreatedAt: &e.CreatedAt, UpdatedAt: &e.UpdatedAt}
	switch {
	case e.Service != nil:
		b.Endpoints, b.HealthCheck = e.Service.Endpoints, e.Service.HealthCheck
	case e.Broker != nil:
		br := e.Broker
		b.Kind, b.URL, b.VHost, b.ManagementURL, b.BootstrapServers, b.TLS = br.Type, br.URL, br.VHost, br.ManagementURL, br.BootstrapServers, br.TLS
		if br.SASL != nil {
			b.SASL = &SASLBody{Mechanism: br.SASL.Mechanism, Username: br.SASL.Username}
		}
		has := br.HasCredentials
		b.HasCredentials = &has
	case e.Queue != nil:
		q := e.Queue
		b.Broker, b.VHost, b.Bindings, b.DeadLetterExchange, b.DeadLetterQueue = q.Broker, q.VHost, q.Bindings, q.DeadLetterExchange, q.DeadLetterQueue
	case e.Topic != nil:
		t := e.Topic
		b.Broker, b.Partitions, b.DeadLetterTopic = t.Broker, t.Partitions, t.DeadLetterTopic
	case e.Saga != nil:
		b.Steps = e.Saga.Steps
	}
	return b
}

// entityOf reads b as an entity of kind, with a broker's credentials
// split off (nil when b carries none).
func entityOf(kind string, b EntityBody) (catalog.Entity, *catalog.BrokerCredentials, error) {
	e := catalog.Entity{Kind: kind, Name: b.Name, Namespace: b.Namespace, OwnerTeam: b.OwnerTeam, Description: b.Description, Labels: b.Labels, Links: b.Links}
	f := problem.Fields{}
	not := func(set bool, field string) { f.Check(!set, field, "is not a field of a "+kind) }
	if kind != catalog.KindBroker {
		f.Check(b.Kind == "" || b.Kind == kind, "kind", "must be "+kind+" (or left out)")
	}
	if kind != catalog.KindService {
		not(len(b.Endpoints) > 0, "endpoints")
		not(b.HealthCheck != nil, "health_check")
	}
	if kind != catalog.KindBroker {
		not(b.URL != "", "url")
		not(b.ManagementURL != "", "management_url")
		not(len(b.BootstrapServers) > 0, "bootstrap_servers")
		not(b.SASL != nil, "sasl")
		not(b.TLS != nil, "tls")
	}
	if kind != catalog.KindQueue && kind != catalog.KindBroker {
		not(b.VHost != "", "vhost")
	}
	if kind != catalog.KindQueue && kind != catalog.KindTopic {
		not(b.Broker != "", "broker")
	}
	if kind != catalog.KindQueue {
		not(len(b.Bindings) > 0, "bindings")
		not(b.DeadLetterExchange != "", "dead_letter_exchange")
		not(b.DeadLetterQueue != "", "dead_letter_queue")
	}
	if kind != catalog.KindTopic {
		not(b.Partitions != 0, "partitions")
		not(b.DeadLetterTopic != "", "dead_letter_topic")
	}
	if kind != catalog.KindSaga {
		not(len(b.Steps) > 0, "steps")
	}
	if err := f.Err(); err != nil {
		return e, nil, err
	}
	var creds *catalog.BrokerCredentials
	switch kind {
	case catalog.KindService:
		e.Service = &catalog.ServiceSpec{Endpoints: b.Endpoints, HealthCheck: b.HealthCheck}
	case catalog.KindBroker:
		br := &catalog.BrokerSpec{Type: b.Kind, VHost: b.VHost, BootstrapServers: b.BootstrapServers, TLS: b.TLS}
		c := catalog.BrokerCredentials{}
		var err error
		if br.URL, c.Username, c.Password, err = splitUserInfo(b.URL); err != nil {
			return e, nil, problem.Invalid(map[string]string{"url": "must be a URL"})
		}
		if br.ManagementURL, c.ManagementUsername, c.ManagementPassword, err = splitUserInfo(b.ManagementURL); err != nil {
			return e, nil, problem.Invalid(map[string]string{"management_url": "must be a URL"})
		}
		if b.SASL != nil {
			br.SASL = &catalog.KafkaSASL{Mechanism: b.SASL.Mechanism, Username: b.SASL.Username}
			if b.SASL.Password != "" { // a read answer sent back has none: the stored one stays
				c.Username, c.Password = b.SASL.Username, b.SASL.Password
			}
		}
		if c != (catalog.BrokerCredentials{}) {
			creds = &c
		}
		e.Broker = br
	case catalog.KindQueue:
		e.Queue = &catalog.QueueSpec{Broker: b.Broker, VHost: b.VHost, Bindings: b.Bindings, DeadLetterExchange: b.DeadLetterExchange, DeadLetterQueue: b.DeadLetterQueue}
	case catalog.KindTopic:
		e.Topic = &catalog.TopicSpec{Broker: b.Broker, Partitions: b.Partitions, DeadLetterTopic: b.DeadLetterTopic}
	case catalog.KindSaga:
		e.Saga = &catalog.SagaSpec{Steps: b.Steps}
	}
	return e, creds, nil
}

// splitUserInfo returns raw without its user info, and the user and
// password it held.
func splitUserInfo(raw string) (clean, user, pass string, err error) {
	if raw == "" {
		return "", "", "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", err
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	return u.String(), user, pass, nil
}

func catalogFilter(c echo.Context) (catalog.Filter, error) {
	f := catalog.Filter{OwnerTeam: c.QueryParam("owner_team"), Q: strings.TrimSpace(c.QueryParam("q"))}
	if s := c.QueryParam("labels"); s != "" {
		sel, err := catalog.ParseSelector(s)
		if err != nil {
			return f, err
		}
		f.Labels = sel
	}
	if len(f.Q) > 200 {
		return f, problem.Invalid(map[string]string{"q": "at most 200 characters"})
	}
	return f, nil
}

func (a *API) entityRef(c echo.Context, kind string) catalog.Ref {
	return catalog.Ref{Kind: kind, Namespace: catalog.DefaultNamespace, Name: c.Param("name")}
}

func (a *API) entityAnswer(c echo.Context, status int, e catalog.Entity) error {
	c.Response().Header().Set("ETag", etag(e.Version))
	return c.JSON(status, bodyOf(e))
}

func (a *API) listEntities(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principal(c)
		if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, kind, "")); err != nil {
			return err
		}
		limit, cursor, err := pageParams(c)
		if err != nil {
			return err
		}
		f, err := catalogFilter(c)
		if err != nil {
			return err
		}
		f.Kinds = []string{kind}
		items, next, err := a.catalog.List(c.Request().Context(), p.Tenant, f, cursor, limit, a.allow(c, rbac.Read))
		if err != nil {
			return err
		}
		out := make([]EntityBody, len(items))
		for i, e := range items {
			out[i] = bodyOf(e)
		}
		return c.JSON(http.StatusOK, list(out, next))
	}
}

func (a *API) createEntity(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in EntityBody
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		e, creds, err := entityOf(kind, in)
		if err != nil {
			return err
		}
		p := principal(c)
		out, err := a.catalog.Create(c.Request().Context(), p.Tenant, e, creds, a.allow(c, rbac.Create))
		if err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+p.TenantSlug+"/"+kindPaths[kind]+"/"+url.PathEscape(out.Name))
		return a.entityAnswer(c, http.StatusCreated, out)
	}
}

func (a *API) getEntity(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		e, err := a.catalog.Get(c.Request().Context(), principal(c).Tenant, a.entityRef(c, kind), a.allow(c, rbac.Read))
		if err != nil {
			return err
		}
		return a.entityAnswer(c, http.StatusOK, e)
	}
}

// patchEntity applies a JSON merge patch (RFC 7396) to the entity as the
// API shows it. Without If-Match, a change made by someone else between
// the read and the write is merged again (a few times) rather than lost.
func (a *API) patchEntity(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		version, err := ifMatchVersion(c)
		if err != nil {
			return err
		}
		var patch map[string]any
		if err := decodeJSON(c, &patch); err != nil {
			return err
		}
		if patch == nil {
			return problem.Errorf(problem.CodeInvalid, "a merge patch must be a JSON object of the fields to change")
		}
		ctx, p, ref := c.Request().Context(), principal(c), a.entityRef(c, kind)
		for attempt := 0; ; attempt++ {
			cur, err := a.catalog.Get(ctx, p.Tenant, ref, a.allow(c, rbac.Read))
			if err != nil {
				return err
			}
			doc, err := json.Marshal(bodyOf(cur))
			if err != nil {
				return err
			}
			var target map[string]any
			if err := json.Unmarshal(doc, &target); err != nil {
				return err
			}
			merged, err := json.Marshal(mergePatch(target, patch))
			if err != nil {
				return err
			}
			var in EntityBody
			if err := DecodeStrict(merged, &in); err != nil {
				return err
			}
			e, creds, err := entityOf(kind, in)
			if err != nil {
				return err
			}
			want := version
			if want == 0 {
				want = cur.Version
			}
			out, err := a.catalog.Update(ctx, p.Tenant, ref, want, e, creds, a.allow(c, rbac.Update))
			if problem.Code(err) == problem.CodePrecondition && version == 0 && attempt < 3 {
				continue
			}
			if err != nil {
				return err
			}
			return a.entityAnswer(c, http.StatusOK, out)
		}
	}
}

// mergePatch applies patch to target as RFC 7396 says: null removes a
// member, an object merges, anything else replaces.
func mergePatch(target any, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}

func (a *API) deleteEntity(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		version, err := ifMatchVersion(c)
		if err != nil {
			return err
		}
		cascade, err := boolParam(c, "cascade")
		if err != nil {
			return err
		}
		if err := a.catalog.Delete(c.Request().Context(), principal(c).Tenant, a.entityRef(c, kind), version, cascade, a.allow(c, rbac.Delete)); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

func boolParam(c echo.Context, name string) (bool, error) {
	s := c.QueryParam(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, problem.Invalid(map[string]string{name: "must be true or false"})
	}
	return v, nil
}

// RelationBody names a relation.
type RelationBody struct {
	From string `json:"from"`
	Type string `json:"type"`
	To   string `json:"to"`
}

func (a *API) createRelation(c echo.Context) error {
	var in RelationBody
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, err := a.catalog.Relate(c.Request().Context(), principal(c).Tenant, catalog.Relation{From: in.From, Type: in.Type, To: in.To}, a.allow(c, rbac.Update))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (a *API) deleteRelation(c echo.Context) error {
	in := RelationBody{From: c.QueryParam("from"), Type: c.QueryParam("type"), To: c.QueryParam("to")}
	if in == (RelationBody{}) {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	if err := a.catalog.Unrelate(c.Request().Context(), principal(c).Tenant, catalog.Relation{From: in.From, Type: in.Type, To: in.To}, a.allow(c, rbac.Update)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) listRelations(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "service", "")); err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := a.catalog.Relations(c.Request().Context(), p.Tenant, catalog.RelationFilter{Ref: c.QueryParam("ref"), Type: c.QueryParam("type")}, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(items, next))
}

func (a *API) topology(c echo.Context) error {
	p := principal(c)
	f, err := catalogFilter(c)
	if err != nil {
		return err
	}
	q := catalog.TopologyQuery{Filter: f, Around: c.QueryParam("around"), Depth: 1}
	if s := c.QueryParam("kind"); s != "" {
		q.Kinds = strings.Split(s, ",")
	}
	if s := c.QueryParam("depth"); s != "" {
		d, err := strconv.Atoi(s)
		if err != nil || d < 1 || d > 10 {
			return problem.Invalid(map[string]string{"depth": "must be a whole number from 1 to 10"})
		}
		q.Depth = d
	}
	var window time.Duration
	if s := c.QueryParam("traced_since"); s != "" {
		var err error
		if window, err = tracing.ParseWindow(s); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	t, err := a.catalog.Topology(ctx, p.Tenant, q, a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	if window > 0 {
		if err := a.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "trace", "")); err != nil {
			return err
		}
		if err := a.traces.LayOver(ctx, p.Tenant, &t, window); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, t)
}

func (a *API) listProblems(c echo.Context) error {
	ps, err := a.catalog.Problems(c.Request().Context(), principal(c).Tenant, c.QueryParam("owner_team"), a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ps, ""))
}

// catalogTopic is the live hub topic of a tenant's catalog changes.
const catalogTopic = "catalog"

// PublishCatalogChange tells the live hub of a committed catalog change.
func (a *API) PublishCatalogChange(tenant uuid.UUID, ch catalog.Change) {
	if a.live == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The sequence number orders a replica's messages; this stream has no
	// resumption, so the commit's time in microseconds serves.
	if err := a.live.Publish(ctx, catalogTopic, tenant, "change", uint64(time.Now().UnixMicro()), ch); err != nil {
		a.log.Warn("catalog: a change could not be published to live streams", "err", err)
	}
}

func (a *API) catalogLive(c echo.Context) error {
	p := principal(c)
	return a.live.Serve(c, live.Stream{Kind: "catalog", Action: rbac.Read, Object: rbac.Of(p, "service", ""),
		Open: func(ctx context.Context, _ live.Resume) (live.Source, error) {
			return a.live.Subscribe(catalogTopic, p.Tenant), nil
		}})
}

func (a *API) catalogRoutes() []route {
	t := v1 + "/tenants/:tenant"
	var rs []route
	for _, kind := range catalog.NativeKinds {
		path, tag := t+"/"+kindPaths[kind], "catalog"
		filters := []queryParam{{"owner_team", "string", "entities this team owns"},
			{"labels", "string", "a label selector: key=value, key!=value, key, !key, comma-separated"},
			{"q", "string", "text in the name or description, in any case"}}
		rs = append(rs,
			route{Method: http.MethodGet, Path: path, Summary: "List " + kindPaths[kind], Tag: tag, Auth: authTenant, Response: List[EntityBody]{}, Status: 200, Paged: true, Query: filters, handler: a.listEntities(kind)},
			route{Method: http.MethodPost, Path: path, Summary: "Register a " + kind, Tag: tag, Auth: authTenant, Request: EntityBody{}, Response: EntityBody{}, Status: 201, Idempotent: true, handler: a.createEntity(kind)},
			route{Method: http.MethodGet, Path: path + "/:name", Summary: "Get a " + kind + " (with its ETag)", Tag: tag, Auth: authTenant, Response: EntityBody{}, Status: 200, handler: a.getEntity(kind)},
			route{Method: http.MethodPatch, Path: path + "/:name", Summary: "Change a " + kind + " with a JSON merge patch (If-Match for optimistic concurrency)", Tag: tag, Auth: authTenant, Request: EntityBody{}, Response: EntityBody{}, Status: 200, IfMatch: true, handler: a.patchEntity(kind)},
			route{Method: http.MethodDelete, Path: path + "/:name", Summary: "Delete a " + kind + "; refused while relations point at it unless cascade", Tag: tag, Auth: authTenant, Status: 204, IfMatch: true,
				Query: []queryParam{{"cascade", "boolean", "also remove the relations that point at it"}}, handler: a.deleteEntity(kind)},
		)
	}
	rs = append(rs,
		route{Method: http.MethodGet, Path: t + "/relations", Summary: "List relations", Tag: "catalog", Auth: authTenant, Response: List[catalog.Relation]{}, Status: 200, Paged: true,
			Query: []queryParam{{"ref", "string", "relations from or to this entity (kind:name)"}, {"type", "string", "relations of this type"}}, handler: a.listRelations},
		route{Method: http.MethodPost, Path: t + "/relations", Summary: "Add a relation between two entities", Tag: "catalog", Auth: authTenant, Request: RelationBody{}, Response: catalog.Relation{}, Status: 201, handler: a.createRelation},
		route{Method: http.MethodDelete, Path: t + "/relations", Summary: "Remove a relation, named in the body or by from, type and to in the query", Tag: "catalog", Auth: authTenant, Request: RelationBody{}, OptionalBody: true, Status: 204,
			Query: []queryParam{{"from", "string", "the relation's source (kind:name)"}, {"type", "string", "its type"}, {"to", "string", "its target (kind:name)"}}, handler: a.deleteRelation},
		route{Method: http.MethodGet, Path: t + "/topology", Summary: "The catalog as a graph, with each node's status and problems", Tag: "catalog", Auth: authTenant, Response: catalog.Topology{}, Status: 200,
			Query: []queryParam{{"owner_team", "string", "nodes this team owns"}, {"labels", "string", "a label selector"}, {"q", "string", "text in the name or description"},
				{"kind", "string", "kinds, comma-separated"}, {"around", "string", "only what lies near this entity (kind:name)"}, {"depth", "integer", "how many edges from around (1-10, default 1)"},
				{"traced_since", "string", "lay over the graph what spans showed in this window (1h, 30m; at most 168h): declared edges marked seen (traced) or silent, edges seen only in spans added with declared false, services with what they served"}}, handler: a.topology},
		route{Method: http.MethodGet, Path: t + "/problems", Summary: "Problems found on the graph", Tag: "catalog", Auth: authTenant, Response: List[catalog.Problem]{}, Status: 200,
			Query: []queryParam{{"owner_team", "string", "problems of this team's entities"}}, handler: a.listProblems},
		route{Method: http.MethodGet, Path: t + "/catalog/live", Summary: "Catalog changes as they commit (WebSocket)", Tag: "catalog", Auth: authTenantStream, Response: catalog.Change{}, Status: 101, handler: a.catalogLive},
	)
	rs = append(rs, a.importRoutes()...)
	return append(rs, a.discoveryRoutes()...)
}
