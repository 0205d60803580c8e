package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// catalogPerPage is how many entities a catalog table shows at once.
const catalogPerPage = 100

// registerCatalog adds the catalog and topology pages.
func (u *UI) registerCatalog(t *echo.Group) {
	t.GET("/topology", u.topologyPage)
	t.GET("/topology.json", u.topologyJSON)
	t.POST("/topology/relations", u.relate)
	t.POST("/topology/relations/delete", u.unrelate)
	t.POST("/topology/views", u.saveView)
	t.GET("/catalog", u.catalogPage)
	t.POST("/catalog", u.createEntity)
	t.GET("/catalog/import", u.importPage)
	t.POST("/catalog/import", u.importYAML)
	t.GET("/catalog/:kind/:name", u.entityPage)
	t.POST("/catalog/:kind/:name", u.updateEntity)
	t.POST("/catalog/:kind/:name/delete", u.deleteEntity)
	t.POST("/catalog/:kind/:name/dead-lettering", u.setUpDeadLettering)
}

// catalogKind is the kind a catalog page shows: ?kind=, a service by
// default.
func catalogKind(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return catalog.KindService
	}
	return s
}

func (u *UI) catalogPage(c echo.Context) error {
	return u.renderCatalog(c, http.StatusOK, views.EntityForm{Kind: catalogKind(c.QueryParam("kind"))}, nil)
}

// renderCatalog draws a kind's table with its filters, and its create form
// holding form (with errs when a create was refused).
func (u *UI) renderCatalog(c echo.Context, status int, form views.EntityForm, errs views.FormErrors) error {
	p := principal(c)
	ctx := c.Request().Context()
	kind := form.Kind
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, catalog.AuthKind(kind), "")); err != nil {
		return err
	}
	v := views.CatalogView{
		Filter: views.CatalogFilter{Kind: kind, OwnerTeam: c.QueryParam("owner_team"), Labels: c.QueryParam("labels"), Q: c.QueryParam("q")},
		Kinds:  catalogKinds(), Form: form, Errs: errs,
		CanCreate: catalog.IsNative(kind) && u.mayOnSome(ctx, p, rbac.Create, catalog.AuthKind(kind)),
	}
	if v.Form.Kind == catalog.KindBroker && v.Form.BrokerType == "" {
		v.Form.BrokerType = catalog.RabbitMQ
	}
	teams, err := u.teamSlugs(c)
	if err != nil {
		return err
	}
	v.Teams = teams
	f := catalog.Filter{Kinds: []string{kind}, OwnerTeam: strings.TrimSpace(v.Filter.OwnerTeam), Q: strings.TrimSpace(v.Filter.Q)}
	if strings.TrimSpace(v.Filter.Labels) != "" {
		sel, err := catalog.ParseSelector(v.Filter.Labels)
		if err != nil {
			if v.Errs == nil {
				v.Errs = views.FormErrors{}
			}
			v.Errs["filter-labels"] = "Write a label selector such as env=prod,tier!=web."
			return render(c, http.StatusUnprocessableEntity, views.CatalogPage(page(c, "Catalog", views.SectionCatalog), v))
		}
		f.Labels = sel
	}
	ents, next, err := u.d.Catalog.List(ctx, p.Tenant, f, c.QueryParam("cursor"), catalogPerPage, u.rbac.Check(p, rbac.Read))
	if problem.Code(err) == problem.CodeInvalid {
		return problem.Errorf(problem.CodeInvalid, "This page link is broken or stale; start again from the first page.")
	}
	if err != nil {
		return err
	}
	v.NextCursor = next
	for i := range ents {
		v.Rows = append(v.Rows, catalogRow(&ents[i]))
	}
	if kind == catalog.KindQueue || kind == catalog.KindTopic {
		v.Brokers, err = u.brokerNames(c)
		if err != nil {
			return err
		}
	}
	return render(c, status, views.CatalogPage(page(c, "Catalog", views.SectionCatalog), v))
}

// brokerNames lists the brokers the caller may read, for the queue and
// topic forms.
func (u *UI) brokerNames(c echo.Context) ([]string, error) {
	p := principal(c)
	ents, _, err := u.d.Catalog.List(c.Request().Context(), p.Tenant, catalog.Filter{Kinds: []string{catalog.KindBroker}}, "", 500, u.rbac.Check(p, rbac.Read))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ents))
	for i := range ents {
		out[i] = ents[i].Name
	}
	return out, nil
}

func catalogRow(e *catalog.Entity) views.CatalogRow {
	r := views.CatalogRow{Ref: e.Ref().String(), Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, OwnerTeam: e.OwnerTeam,
		Description: e.Description, Labels: labelText(e.Labels, ", "), Orphaned: e.Orphaned, Source: e.Source}
	switch {
	case e.Service != nil:
		var eps []string
		for _, ep := range e.Service.Endpoints {
			eps = append(eps, ep.Protocol+" "+ep.URL)
		}
		r.Summary = strings.Join(eps, ", ")
	case e.Broker != nil:
		r.Summary = e.Broker.Type + " " + e.Broker.URL + strings.Join(e.Broker.BootstrapServers, ",")
	case e.Queue != nil:
		r.Summary = "on " + e.Queue.Broker + " vhost " + e.Queue.VHost
		if e.Queue.DeadLetterQueue != "" {
			r.Summary += ", dead letters to " + e.Queue.DeadLetterQueue
		}
	case e.Topic != nil:
		r.Summary = fmt.Sprintf("on %s, %d partitions", e.Topic.Broker, e.Topic.Partitions)
		if e.Topic.DeadLetterTopic != "" {
			r.Summary += ", dead letters to " + e.Topic.DeadLetterTopic
		}
	case e.Saga != nil:
		r.Summary = fmt.Sprintf("%d steps", len(e.Saga.Steps))
	}
	return r
}

// labelText writes labels as k=v, sorted by key.
func labelText(labels map[string]string, sep string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, sep)
}

// createEntity adds an entity of the form's kind.
func (u *UI) createEntity(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	form := entityFormOf(c)
	if !catalog.IsNative(form.Kind) {
		return problem.Errorf(problem.CodeInvalid, "entities of kind %q come in through an import, not this form", form.Kind)
	}
	if !u.mayOnSome(ctx, p, rbac.Create, catalog.AuthKind(form.Kind)) {
		return problem.Errorf(problem.CodeForbidden, "a %s may not register a %s for any team", p.Role, form.Kind)
	}
	e, creds, errs := entityOf(form)
	if len(errs) == 0 {
		created, err := u.d.Catalog.Create(ctx, p.Tenant, e, creds, u.rbac.Check(p, rbac.Create))
		if err == nil {
			return u.redirectWithFlash(c, views.EntityPath(p.TenantSlug, created.Kind, created.Namespace, created.Name), created.Kind+" "+created.Name+" is in the catalog.")
		}
		if errs, err = entityFormErrors(err); err != nil {
			return err
		}
	}
	form.URL = "" // a URL may hold credentials: never sent back
	return u.renderCatalog(c, http.StatusUnprocessableEntity, form, errs)
}

// entityFormOf reads the create or edit form.
func entityFormOf(c echo.Context) views.EntityForm {
	v := func(k string) string { return strings.TrimSpace(c.FormValue(k)) }
	f := views.EntityForm{Kind: catalogKind(v("kind")), Name: v("name"), OwnerTeam: v("owner_team"), Description: v("description"),
		Labels: v("labels"), Links: v("links"), Endpoints: v("endpoints"), HealthURL: v("health_url"), HealthInterval: v("health_interval"),
		BrokerType: v("broker_type"), URL: v("url"), VHost: v("vhost"), ManagementURL: v("management_url"), BootstrapServers: v("bootstrap_servers"),
		Broker: v("broker"), DeadLetterExchange: v("dead_letter_exchange"), DeadLetterQueue: v("dead_letter_queue"), Bindings: v("bindings"),
		Partitions: v("partitions"), DeadLetterTopic: v("dead_letter_topic"), Steps: v("steps")}
	f.Version, _ = strconv.ParseInt(v("version"), 10, 64)
	return f
}

// lines splits text into its non-empty trimmed lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// entityOf turns a form into an entity and, for a broker whose URL holds a
// user and password, its credentials (taken out of the URL).
func entityOf(f views.EntityForm) (catalog.Entity, *catalog.BrokerCredentials, views.FormErrors) {
	errs := views.FormErrors{}
	e := catalog.Entity{Kind: f.Kind, Namespace: catalog.DefaultNamespace, Name: f.Name, OwnerTeam: f.OwnerTeam, Description: f.Description,
		Labels: map[string]string{}, Links: []catalog.Link{}}
	for _, l := range lines(strings.ReplaceAll(f.Labels, ",", "\n")) {
		k, val, ok := strings.Cut(l, "=")
		if !ok {
			errs["labels"] = "Write each label as key=value, such as env=prod."
			break
		}
		e.Labels[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	for _, l := range lines(f.Links) {
		fields := strings.Fields(l)
		link := catalog.Link{URL: fields[len(fields)-1]}
		if len(fields) > 1 {
			link.Title = strings.Join(fields[:len(fields)-1], " ")
		}
		e.Links = append(e.Links, link)
	}
	var creds *catalog.BrokerCredentials
	switch f.Kind {
	case catalog.KindService:
		s := &catalog.ServiceSpec{Endpoints: []catalog.Endpoint{}}
		for _, l := range lines(f.Endpoints) {
			fields := strings.Fields(l)
			ep := catalog.Endpoint{URL: fields[len(fields)-1], Protocol: "http"}
			if len(fields) > 1 {
				ep.Protocol = strings.ToLower(fields[0])
			}
			s.Endpoints = append(s.Endpoints, ep)
		}
		if f.HealthURL != "" {
			n, err := strconv.Atoi(f.HealthInterval)
			if f.HealthInterval == "" {
				n, err = 30, nil
			}
			if err != nil {
				errs["health_interval"] = "Give a number of seconds, 5 to 3600."
			}
			s.HealthCheck = &catalog.HealthCheck{URL: f.HealthURL, IntervalSeconds: n}
		}
		e.Service = s
	case catalog.KindBroker:
		b := &catalog.BrokerSpec{Type: f.BrokerType, VHost: f.VHost, ManagementURL: f.ManagementURL}
		if b.Type == "" {
			b.Type = catalog.RabbitMQ
		}
		if f.URL != "" {
			u, err := url.Parse(f.URL)
			if err != nil {
				errs["url"] = "This is not a URL; write it as amqp://host:5672/ (a user and password in it are kept encrypted)."
				break
			}
			if u.User != nil {
				pw, _ := u.User.Password()
				creds = &catalog.BrokerCredentials{Username: u.User.Username(), Password: pw}
				u.User = nil
			}
			b.URL = u.String()
		}
		for _, s := range strings.Split(f.BootstrapServers, ",") {
			if s = strings.TrimSpace(s); s != "" {
				b.BootstrapServers = append(b.BootstrapServers, s)
			}
		}
		e.Broker = b
	case catalog.KindQueue:
		q := &catalog.QueueSpec{Broker: f.Broker, VHost: f.VHost, DeadLetterExchange: f.DeadLetterExchange, DeadLetterQueue: f.DeadLetterQueue, Bindings: []catalog.Binding{}}
		for _, l := range lines(f.Bindings) {
			fields := strings.Fields(l)
			b := catalog.Binding{Exchange: fields[0]}
			if len(fields) > 1 {
				b.RoutingKey = strings.Join(fields[1:], " ")
			}
			q.Bindings = append(q.Bindings, b)
		}
		e.Queue = q
	case catalog.KindTopic:
		t := &catalog.TopicSpec{Broker: f.Broker, DeadLetterTopic: f.DeadLetterTopic, Partitions: 1}
		if f.Partitions != "" {
			n, err := strconv.Atoi(f.Partitions)
			if err != nil {
				errs["partitions"] = "Give a whole number of partitions."
			}
			t.Partitions = n
		}
		e.Topic = t
	case catalog.KindSaga:
		s := &catalog.SagaSpec{Steps: []catalog.SagaStep{}}
		for _, l := range lines(f.Steps) {
			fields := strings.Fields(l)
			if len(fields) < 3 {
				errs["steps"] = "Write each step as: name service action [compensation]."
				break
			}
			st := catalog.SagaStep{Name: fields[0], Service: fields[1], Action: fields[2]}
			if len(fields) > 3 {
				st.Compensation = strings.Join(fields[3:], " ")
			}
			s.Steps = append(s.Steps, st)
		}
		e.Saga = s
	}
	return e, creds, errs
}

// entityFormErrors turns a refused create or update into the form's
// messages; the domain names fields as the API does (endpoints[0].url),
// the form has one box per list.
func entityFormErrors(err error) (views.FormErrors, error) {
	pe, ok := problem.As(err)
	if !ok || pe.Code == problem.CodeInternal {
		return nil, err
	}
	errs := views.FormErrors{}
	for k, msg := range pe.Fields {
		field := formField(k)
		if k != field {
			msg = k + ": " + msg
		}
		if old := errs[field]; old != "" {
			msg = old + "; " + msg
		}
		errs[field] = msg
	}
	if len(pe.Fields) == 0 {
		errs[""] = pe.Message
	}
	return errs, nil
}

// formField is the form's field for a domain field name.
func formField(k string) string {
	switch k {
	case "health_check.url":
		return "health_url"
	case "health_check.interval_seconds":
		return "health_interval"
	case "kind":
		return "broker_type"
	}
	for _, prefix := range []string{"labels", "links", "endpoints", "bindings", "bootstrap_servers", "steps", "sasl"} {
		if strings.HasPrefix(k, prefix+".") || strings.HasPrefix(k, prefix+"[") {
			if prefix == "sasl" {
				return "bootstrap_servers"
			}
			return prefix
		}
	}
	return k
}

// entityRef reads the entity an entity route names: :kind, :name and
// ?ns= (the namespace, default when absent).
func entityRef(c echo.Context) (catalog.Ref, error) {
	ns := c.QueryParam("ns")
	if ns == "" {
		ns = catalog.DefaultNamespace
	}
	s := strings.ToLower(c.Param("kind")) + ":" + ns + "/" + c.Param("name")
	r, err := catalog.ParseRef(s)
	if err != nil {
		return r, problem.NotFound("entity", c.Param("kind")+":"+c.Param("name"))
	}
	return r, nil
}

func (u *UI) entityPage(c echo.Context) error {
	return u.renderEntity(c, http.StatusOK, nil, nil, "")
}

// renderEntity draws an entity's page: details, relations in and out,
// problems, history, and (for who may) the edit and delete forms; form
// and errs hold a refused edit, blocking a refused delete's reason.
func (u *UI) renderEntity(c echo.Context, status int, form *views.EntityForm, errs views.FormErrors, blocking string) error {
	p := principal(c)
	ctx := c.Request().Context()
	ref, err := entityRef(c)
	if err != nil {
		return err
	}
	e, err := u.d.Catalog.Get(ctx, p.Tenant, ref, u.rbac.Check(p, rbac.Read))
	if err != nil {
		return err
	}
	key := ref.String()
	obj := e.Object(p.Tenant)
	v := views.EntityView{Ref: key, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, OwnerTeam: e.OwnerTeam, Description: e.Description,
		Source: e.Source, Orphaned: e.Orphaned, Native: catalog.IsNative(e.Kind), Errs: errs, Blocking: blocking,
		CanUpdate: u.rbac.Authorize(ctx, p, rbac.Update, obj) == nil, CanDelete: u.rbac.Authorize(ctx, p, rbac.Delete, obj) == nil}
	keys := make([]string, 0, len(e.Labels))
	for k := range e.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Labels = append(v.Labels, [2]string{k, e.Labels[k]})
	}
	for _, l := range e.Links {
		title := l.Title
		if title == "" {
			title = l.URL
		}
		v.Links = append(v.Links, [2]string{title, l.URL})
	}
	if e.Health != nil {
		v.Health = e.Health.Status
		if e.Health.Error != "" {
			v.Health += ": " + e.Health.Error
		}
	}
	v.Details = entityDetails(&e)
	if e.Queue != nil {
		v.DeadLetterQueue = e.Queue.DeadLetterQueue
		v.CanSetUpDeadLettering = v.CanUpdate && u.d.Capture != nil && u.d.Capture.Brokers != nil
	}
	if form != nil {
		v.Form = *form
	} else {
		v.Form = formOfEntity(&e)
	}
	// The entity's neighbourhood gives its relations, those its spec
	// implies included, and its problems as the graph finds them.
	t, err := u.d.Catalog.Topology(ctx, p.Tenant, catalog.TopologyQuery{Around: key, Depth: 1}, u.rbac.Check(p, rbac.Read))
	if err != nil {
		return err
	}
	missing := map[string]bool{}
	for _, n := range t.Nodes {
		if n.Status == "missing" {
			missing[n.ID] = true
		}
		if n.ID == key {
			for _, pr := range n.Problems {
				v.Problems = append(v.Problems, views.ProblemRow{Code: pr.Code, Message: pr.Message})
			}
		}
	}
	for _, ed := range t.Edges {
		row := views.RelationRow{From: ed.From, Type: ed.Type, To: ed.To, Derived: ed.Derived}
		switch key {
		case ed.From:
			row.Missing = missing[ed.To]
			v.Out = append(v.Out, row)
		case ed.To:
			row.Missing = missing[ed.From]
			v.In = append(v.In, row)
		}
	}
	if v.CanUpdate {
		if v.Teams, err = u.teamSlugs(c); err != nil {
			return err
		}
		if e.Kind == catalog.KindQueue || e.Kind == catalog.KindTopic {
			if v.Brokers, err = u.brokerNames(c); err != nil {
				return err
			}
		}
	}
	if v.History, v.HistoryHidden, err = u.entityHistory(c, e.Kind, key); err != nil {
		return err
	}
	return render(c, status, views.EntityPage(page(c, e.Kind+" "+e.Name, views.SectionCatalog), v))
}

// historyScan bounds how many audit entries of the kind an entity page
// reads to find the entity's own.
const historyScan = 500

// entityHistory lists the audit entries about the entity key (newest
// first), or says the role may not read the audit log.
func (u *UI) entityHistory(c echo.Context, kind, key string) ([]views.HistoryRow, bool, error) {
	p := principal(c)
	ctx := c.Request().Context()
	if u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "audit", "")) != nil {
		return nil, true, nil
	}
	var out []views.HistoryRow
	cursor := ""
	for read := 0; read < historyScan; {
		entries, next, err := u.d.Audit.Search(ctx, p.Tenant, audit.Filter{Action: kind + "."}, cursor, 100)
		if err != nil {
			return nil, false, err
		}
		read += len(entries)
		for _, en := range entries {
			if en.ObjectID == key {
				out = append(out, views.HistoryRow{At: en.At.UTC().Format("2006-01-02 15:04:05 UTC"), Actor: en.Actor, Action: en.Action})
			}
		}
		if next == "" || len(entries) == 0 {
			break
		}
		cursor = next
	}
	return out, false, nil
}

// entityDetails are the kind's own settings, as the page lists them.
// Broker credentials are never among them: only whether some are stored.
func entityDetails(e *catalog.Entity) []views.Detail {
	var d []views.Detail
	add := func(label, value string) {
		if value != "" {
			d = append(d, views.Detail{Label: label, Value: value})
		}
	}
	switch {
	case e.Service != nil:
		for _, ep := range e.Service.Endpoints {
			add("Endpoint", ep.Protocol+" "+ep.URL)
		}
		if hc := e.Service.HealthCheck; hc != nil {
			add("Health check", fmt.Sprintf("GET %s every %d s", hc.URL, hc.IntervalSeconds))
		}
	case e.Broker != nil:
		b := e.Broker
		add("Type", b.Type)
		add("URL", b.URL)
		add("Virtual host", b.VHost)
		add("Management URL", b.ManagementURL)
		add("Bootstrap servers", strings.Join(b.BootstrapServers, ", "))
		if b.SASL != nil {
			add("SASL", b.SASL.Mechanism+" as "+b.SASL.Username)
		}
		if b.HasCredentials {
			add("Credentials", "stored encrypted (never shown)")
		} else {
			add("Credentials", "none")
		}
	case e.Queue != nil:
		q := e.Queue
		add("Broker", q.Broker)
		add("Virtual host", q.VHost)
		for _, b := range q.Bindings {
			add("Binding", b.Exchange+" → "+b.RoutingKey)
		}
		add("Dead-letter exchange", q.DeadLetterExchange)
		add("Dead-letter queue", q.DeadLetterQueue)
	case e.Topic != nil:
		add("Broker", e.Topic.Broker)
		add("Partitions", strconv.Itoa(e.Topic.Partitions))
		add("Dead-letter topic", e.Topic.DeadLetterTopic)
	case e.Saga != nil:
		for i, st := range e.Saga.Steps {
			s := fmt.Sprintf("%d. %s: %s calls %s", i+1, st.Name, st.Service, st.Action)
			if st.Compensation != "" {
				s += ", compensated by " + st.Compensation
			}
			add("Step", s)
		}
	}
	return d
}

// formOfEntity fills the edit form from e. A broker's URL is shown
// without credentials (the stored URL holds none).
func formOfEntity(e *catalog.Entity) views.EntityForm {
	f := views.EntityForm{Kind: e.Kind, Name: e.Name, OwnerTeam: e.OwnerTeam, Description: e.Description, Labels: labelText(e.Labels, "\n"), Version: e.Version}
	var links []string
	for _, l := range e.Links {
		links = append(links, strings.TrimSpace(l.Title+" "+l.URL))
	}
	f.Links = strings.Join(links, "\n")
	switch {
	case e.Service != nil:
		var eps []string
		for _, ep := range e.Service.Endpoints {
			eps = append(eps, ep.Protocol+" "+ep.URL)
		}
		f.Endpoints = strings.Join(eps, "\n")
		if hc := e.Service.HealthCheck; hc != nil {
			f.HealthURL, f.HealthInterval = hc.URL, strconv.Itoa(hc.IntervalSeconds)
		}
	case e.Broker != nil:
		f.BrokerType, f.URL, f.VHost, f.ManagementURL = e.Broker.Type, e.Broker.URL, e.Broker.VHost, e.Broker.ManagementURL
		f.BootstrapServers = strings.Join(e.Broker.BootstrapServers, ", ")
		f.HasCredentials = e.Broker.HasCredentials
	case e.Queue != nil:
		f.Broker, f.VHost, f.DeadLetterExchange, f.DeadLetterQueue = e.Queue.Broker, e.Queue.VHost, e.Queue.DeadLetterExchange, e.Queue.DeadLetterQueue
		var bs []string
		for _, b := range e.Queue.Bindings {
			bs = append(bs, strings.TrimSpace(b.Exchange+" "+b.RoutingKey))
		}
		f.Bindings = strings.Join(bs, "\n")
	case e.Topic != nil:
		f.Broker, f.Partitions, f.DeadLetterTopic = e.Topic.Broker, strconv.Itoa(e.Topic.Partitions), e.Topic.DeadLetterTopic
	case e.Saga != nil:
		var ss []string
		for _, st := range e.Saga.Steps {
			ss = append(ss, strings.TrimSpace(st.Name+" "+st.Service+" "+st.Action+" "+st.Compensation))
		}
		f.Steps = strings.Join(ss, "\n")
	}
	return f
}

// updateEntity saves the edit form, at the version the form was read at.
// A broker form with an empty URL keeps the stored URL and credentials;
// a URL with a user and password replaces them.
func (u *UI) updateEntity(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	ref, err := entityRef(c)
	if err != nil {
		return err
	}
	cur, err := u.d.Catalog.Get(ctx, p.Tenant, ref, u.rbac.Check(p, rbac.Read))
	if err != nil {
		return err
	}
	if !catalog.IsNative(cur.Kind) {
		return problem.Errorf(problem.CodeInvalid, "entities of kind %q are changed by importing their file again", cur.Kind)
	}
	form := entityFormOf(c)
	form.Kind, form.Name = cur.Kind, cur.Name
	next, creds, errs := entityOf(form)
	next.Namespace = cur.Namespace
	if cur.Broker != nil && form.URL == "" {
		next.Broker.URL = cur.Broker.URL
	}
	if len(errs) == 0 {
		_, err = u.d.Catalog.Update(ctx, p.Tenant, ref, form.Version, next, creds, u.rbac.Check(p, rbac.Update))
		if err == nil {
			return u.redirectWithFlash(c, views.EntityPath(p.TenantSlug, cur.Kind, cur.Namespace, cur.Name), cur.Kind+" "+cur.Name+" is saved.")
		}
		if problem.Code(err) == problem.CodePrecondition {
			errs = views.FormErrors{"": "Someone changed it after you opened this page; reload to see their change, then edit again."}
		} else if errs, err = entityFormErrors(err); err != nil {
			return err
		}
	}
	form.URL = "" // a URL may hold credentials: never sent back
	form.HasCredentials = cur.Broker != nil && cur.Broker.HasCredentials
	return u.renderEntity(c, http.StatusUnprocessableEntity, &form, errs, "")
}

// deleteEntity removes an entity once its form's confirmation box is
// ticked; with cascade the relations pointing at it go too.
func (u *UI) deleteEntity(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	ref, err := entityRef(c)
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "yes" {
		return u.renderEntity(c, http.StatusUnprocessableEntity, nil, views.FormErrors{"confirm": "Tick the box to confirm the deletion."}, "")
	}
	version, _ := strconv.ParseInt(c.FormValue("version"), 10, 64)
	err = u.d.Catalog.Delete(ctx, p.Tenant, ref, version, c.FormValue("cascade") == "yes", u.rbac.Check(p, rbac.Delete))
	if err == nil {
		return u.redirectWithFlash(c, views.CatalogPath(p.TenantSlug, ref.Kind), ref.String()+" is deleted.")
	}
	switch problem.Code(err) {
	case problem.CodeConflict:
		pe, _ := problem.As(err)
		return u.renderEntity(c, http.StatusConflict, nil, nil, pe.Message)
	case problem.CodePrecondition:
		return u.renderEntity(c, http.StatusConflict, nil, nil, "Someone changed it after you opened this page; look at it again before deleting.")
	}
	return err
}

// mayOnSome reports whether p may act on an entity of kind owned by one of
// its teams (or by none): the coarse check before a form, whose entity's
// own owner and labels the domain then decides on.
func (u *UI) mayOnSome(ctx context.Context, p auth.Principal, act, kind string) bool {
	for _, team := range append([]string{""}, p.Teams...) {
		obj := rbac.Of(p, kind, "")
		obj.Team = team
		if u.rbac.Authorize(ctx, p, act, obj) == nil {
			return true
		}
	}
	return false
}
