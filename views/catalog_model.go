package views

import (
	"net/url"
	"strings"
)

// TopologyFilter is what the topology page narrows the graph by; the same
// query parameters as the REST API's topology route.
type TopologyFilter struct {
	OwnerTeam string
	Labels    string // a label selector such as env=prod,tier!=web
	Kind      string // one kind, or several separated by commas
	Q         string
	Around    string // an entity reference such as service:checkout
	Depth     string
	// TracedSince lays traffic from spans over the graph, over this window
	// back from now ("": none).
	TracedSince string
}

// TrafficWindows are the topology's traffic choices.
var TrafficWindows = []Option{{Value: "", Label: "Off"}, {Value: "15m", Label: "Last 15 minutes"}, {Value: "1h", Label: "Last hour"},
	{Value: "6h", Label: "Last 6 hours"}, {Value: "24h", Label: "Last day"}}

// Query is the filter as a query string (without "?"), in a fixed order.
func (f TopologyFilter) Query() string {
	q := url.Values{}
	for _, kv := range [][2]string{{"owner_team", f.OwnerTeam}, {"labels", f.Labels}, {"kind", f.Kind}, {"q", f.Q}, {"around", f.Around}, {"depth", f.Depth}, {"traced_since", f.TracedSince}} {
		if v := strings.TrimSpace(kv[1]); v != "" {
			q.Set(kv[0], v)
		}
	}
	return q.Encode()
}

// SavedView is a saved topology view as the page lists it.
type SavedView struct {
	ID, Name, CreatedBy string
}

// TopologyView is what TopologyPage shows. The graph itself is fetched by
// static/topology.js from the page's JSON route.
type TopologyView struct {
	Filter TopologyFilter
	Teams  []string
	Kinds  []string
	// RelationTypes are the types a drawn relation may have.
	RelationTypes []string
	// CanEdit offers drawing and deleting relations.
	CanEdit bool
	// ViewID and ViewState are the saved view the page opened with
	// (?view=id): its state (filters and positions, JSON) is applied by
	// the script.
	ViewID, ViewName, ViewState string
	Views                       []SavedView
}

// CatalogFilter narrows a catalog table.
type CatalogFilter struct {
	Kind, OwnerTeam, Labels, Q string
}

// CatalogRow is one entity of a catalog table.
type CatalogRow struct {
	Ref, Kind, Namespace, Name, OwnerTeam, Description string
	Labels                                             string // k=v, comma-separated
	// Summary is the kind's main setting (a broker's URL, a queue's broker).
	Summary  string
	Orphaned bool
	Source   string
}

// EntityForm is what a create or edit form holds, as text fields.
type EntityForm struct {
	Kind, Name, OwnerTeam, Description string
	Labels                             string // one k=v per line or comma-separated
	Links                              string // one URL per line, "title url" allowed
	// service
	Endpoints      string // one "protocol url" per line
	HealthURL      string
	HealthInterval string
	// broker
	BrokerType       string // rabbitmq or kafka
	URL              string // the AMQP URL; credentials in it are taken apart and never shown again
	VHost            string
	ManagementURL    string
	BootstrapServers string // comma-separated host:port
	HasCredentials   bool
	// queue and topic
	Broker             string
	DeadLetterExchange string
	DeadLetterQueue    string
	Bindings           string // one "exchange routing-key" per line
	Partitions         string
	DeadLetterTopic    string
	// saga
	Steps   string // one "name service action [compensation]" per line
	Version int64
}

// CatalogView is what CatalogPage shows: one kind's table, its filters and
// its create form.
type CatalogView struct {
	Filter     CatalogFilter
	Kinds      []string
	Teams      []string
	Brokers    []string // names of brokers, for queue and topic forms
	Rows       []CatalogRow
	NextCursor string
	CanCreate  bool
	Form       EntityForm
	Errs       FormErrors
}

// RelationRow is one relation on an entity page.
type RelationRow struct {
	From, Type, To string
	Source         string
	Missing        bool
	Derived        bool
}

// ProblemRow is one problem of an entity.
type ProblemRow struct {
	Code, Message string
}

// HistoryRow is one audit entry about an entity.
type HistoryRow struct {
	At     string
	Actor  string
	Action string
}

// Detail is one labelled value of an entity's details.
type Detail struct {
	Label, Value string
}

// EntityView is what EntityPage shows.
type EntityView struct {
	Ref, Kind, Namespace, Name, OwnerTeam, Description string
	Labels                                             [][2]string
	Links                                              [][2]string // title, URL
	Details                                            []Detail
	Source                                             string
	Orphaned                                           bool
	Health                                             string
	Out, In                                            []RelationRow
	Problems                                           []ProblemRow
	History                                            []HistoryRow
	// HistoryHidden says the role may not read the audit log.
	HistoryHidden bool
	CanUpdate     bool
	CanDelete     bool
	Native        bool
	Teams         []string
	Brokers       []string
	Form          EntityForm
	Errs          FormErrors
	// Blocking lists the relations that keep a delete from going through.
	Blocking string
	// DeadLetterQueue is a queue's dead-letter queue ("": none);
	// CanSetUpDeadLettering offers the set-up (a queue the viewer may
	// change, on a server that captures dead letters).
	DeadLetterQueue       string
	CanSetUpDeadLettering bool
}

// ImportErrorRow is one error of an import, at its document (the 0-based
// index, as the API gives it) and line (1-based).
type ImportErrorRow struct {
	Document, Line int
	Field, Message string
}

// ImportRow is the last import of a source.
type ImportRow struct {
	Source, At, Actor                              string
	Applied                                        bool
	Created, Updated, Orphaned, Missing, Unchanged int
	Relations                                      int
	Errors                                         []ImportErrorRow
	OrphanedRefs                                   []string
}

// ImportView is what ImportPage shows.
type ImportView struct {
	Source, YAML string
	CanImport    bool
	Available    bool // the server has a YAML importer
	Result       *ImportRow
	Errs         FormErrors
	Imports      []ImportRow
}

// CatalogPath is the browser path of a kind's catalog table.
func CatalogPath(tenant, kind string) string {
	p := TenantPath(tenant, SectionCatalog)
	if kind != "" {
		p += "?kind=" + url.QueryEscape(kind)
	}
	return p
}

// EntityPath is the browser path of an entity's page:
// /t/{tenant}/catalog/{kind}/{name}, with ?ns= outside the default
// namespace.
func EntityPath(tenant, kind, namespace, name string) string {
	p := TenantPath(tenant, SectionCatalog) + "/" + url.PathEscape(kind) + "/" + url.PathEscape(name)
	if namespace != "" && namespace != "default" {
		p += "?ns=" + url.QueryEscape(namespace)
	}
	return p
}

// RefPath is EntityPath of a reference "kind:name" or
// "kind:namespace/name"; "" when ref is not one.
func RefPath(tenant, ref string) string {
	kind, rest, ok := strings.Cut(ref, ":")
	if !ok || kind == "" || rest == "" {
		return ""
	}
	ns, name := "default", rest
	if a, b, ok := strings.Cut(rest, "/"); ok {
		ns, name = a, b
	}
	return EntityPath(tenant, strings.ToLower(kind), ns, name)
}
