package catalog

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// AnnotateTopology sets fn to add, to every topology answered, what other
// parts of the server know of its nodes (a DLQ's count of dead letters).
// Set it before serving.
func (s *Store) AnnotateTopology(fn func(ctx context.Context, tenant uuid.UUID, t *Topology) error) {
	s.annotate = fn
}

// Topology is the catalog as a graph.
type Topology struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one entity of the graph, or a placeholder for a reference the
// catalog does not hold (Status "missing").
type Node struct {
	ID        string            `json:"id"` // the entity's reference
	Kind      string            `json:"kind"`
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	OwnerTeam string            `json:"owner_team,omitempty"`
	Labels    map[string]string `json:"labels"`
	// Type is a broker's type (rabbitmq, kafka).
	Type string `json:"type,omitempty"`
	// Status is ok, warning (it has problems), down (its health check
	// fails), missing (referred to, not in the catalog) or orphaned.
	Status   string    `json:"status"`
	Problems []Problem `json:"problems"`
	// DeadLetters, on a dead-letter queue or topic, is how many captured
	// messages it holds still dead.
	DeadLetters *int64 `json:"dead_letters,omitempty"`
	// Traced, on a service with traces laid over the graph, is the rate,
	// errors and duration of the requests and messages it served (its
	// server and consumer spans) in the window.
	Traced *Traffic `json:"traced,omitempty"`
}

// Edge is a relation, or one the specs imply (Derived): a queue's or
// topic's dead-letter destination, a saga's steps.
type Edge struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Type    string `json:"type"`
	Derived bool   `json:"derived,omitempty"`
	// With traces laid over the graph (topology?traced_since=): Declared
	// says whether the catalog holds the edge (false: only spans show it),
	// Silent marks a declared edge no span showed in the window, and
	// Traced is what spans showed of it.
	Declared *bool    `json:"declared,omitempty"`
	Silent   bool     `json:"silent,omitempty"`
	Traced   *Traffic `json:"traced,omitempty"`
}

// Traffic is rate, errors and duration of an edge (or an operation) over a
// window, as spans show it.
type Traffic struct {
	Count  int64 `json:"count"`
	Errors int64 `json:"errors"`
	// Rate is Count a second over the window.
	Rate  float64 `json:"rate"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// Problem is something wrong with an entity, found on the graph.
type Problem struct {
	Ref       string `json:"ref,omitempty"`
	OwnerTeam string `json:"owner_team,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// Problem codes.
const (
	ProblemNoConsumer    = "no_consumer"
	ProblemUnusedDLQ     = "unused_dlq"
	ProblemNoDLQ         = "no_dlq"
	ProblemNoProducer    = "no_producer"
	ProblemNoOwner       = "no_owner"
	ProblemHealthFailing = "health_failing"
	ProblemDrift         = "drift"
	ProblemOrphaned      = "orphaned"
)

// TopologyQuery narrows the graph: Filter picks nodes; Around (a
// reference) keeps only what lies within Depth edges of it.
type TopologyQuery struct {
	Filter
	Around string
	Depth  int
}

// graphEntity is what the graph needs of an entity.
type graphEntity struct {
	Entity
	drift []DriftItem
}

// DriftItem is one difference between what the catalog declares and what
// a broker holds, as the last discovery found it.
type DriftItem struct {
	Ref      string `json:"ref"`
	Kind     string `json:"kind"` // missing, undeclared, different
	Field    string `json:"field,omitempty"`
	Declared string `json:"declared,omitempty"`
	Actual   string `json:"actual,omitempty"`
	Message  string `json:"message"`
}

// graph is a tenant's whole catalog, read at once.
type graph struct {
	entities map[string]*graphEntity
	order    []string // references, sorted
	edges    []Edge
	teams    map[string]bool
}

// graphSQL reads what the graph needs of each entity, the spec's few
// fields included, without decoding whole specs.
const graphSQL = `SELECT kind, namespace, name, owner_team, labels, orphaned, source, health->>'status', drift,
	coalesce(spec->>'type', ''), coalesce(spec->>'dead_letter_queue', ''), coalesce(spec->>'dead_letter_exchange', ''),
	coalesce(spec->>'dead_letter_topic', ''),
	CASE WHEN kind = 'saga' THEN ARRAY(SELECT st->>'service' FROM jsonb_array_elements(spec->'steps') st) END
	FROM catalog_entities WHERE tenant_id = $1`

func (s *Store) readGraph(ctx context.Context, tenant uuid.UUID) (*graph, error) {
	g := &graph{entities: make(map[string]*graphEntity, 1024), edges: make([]Edge, 0, 4096), teams: map[string]bool{}}
	err := s.db.ReadTenantAll(ctx, tenant,
		database.Query{SQL: graphSQL, Args: []any{tenant}, Scan: func(rows pgx.Rows) error {
			ge := &graphEntity{}
			var drift []byte
			var health *string
			var typ, dlq, dlx, dlt string
			var steps []string
			if err := rows.Scan(&ge.Kind, &ge.Namespace, &ge.Name, &ge.OwnerTeam, &ge.Labels, &ge.Orphaned, &ge.Source, &health, &drift,
				&typ, &dlq, &dlx, &dlt, &steps); err != nil {
				return err
			}
			switch ge.Kind {
			case KindBroker:
				ge.Broker = &BrokerSpec{Type: typ}
			case KindQueue:
				ge.Queue = &QueueSpec{DeadLetterQueue: dlq, DeadLetterExchange: dlx}
			case KindTopic:
				ge.Topic = &TopicSpec{DeadLetterTopic: dlt}
			case KindSaga:
				ge.Saga = &SagaSpec{Steps: make([]SagaStep, len(steps))}
				for i, svc := range steps {
					ge.Saga.Steps[i].Service = svc
				}
			}
			if health != nil {
				ge.Health = &Health{Status: *health}
			}
			if len(drift) > 0 {
				_ = json.Unmarshal(drift, &ge.drift) // written by this package; a bad value only hides drift
			}
			ref := ge.Ref().String()
			g.entities[ref] = ge
			g.order = append(g.order, ref)
			return nil
		}},
		database.Query{SQL: `SELECT from_ref, type, to_ref FROM catalog_relations WHERE tenant_id = $1`, Args: []any{tenant}, Scan: func(rows pgx.Rows) error {
			var e Edge
			err := rows.Scan(&e.From, &e.Type, &e.To)
			g.edges = append(g.edges, e)
			return err
		}},
		database.Query{SQL: `SELECT slug FROM teams WHERE tenant_id = $1`, Args: []any{tenant}, Scan: func(rows pgx.Rows) error {
			var slug string
			err := rows.Scan(&slug)
			g.teams[slug] = true
			return err
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	// Sorted here, by bytes: the answer's order is stable, and cheaper than
	// a collation-aware sort in the database.
	sort.Strings(g.order)
	slices.SortFunc(g.edges, func(a, b Edge) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.Type, b.Type), strings.Compare(a.To, b.To))
	})
	g.edges = append(g.edges, g.derived()...)
	return g, nil
}

// derived are the edges the specs imply.
func (g *graph) derived() []Edge {
	var out []Edge
	for _, ref := range g.order {
		e := g.entities[ref]
		switch {
		case e.Queue != nil && e.Queue.DeadLetterQueue != "":
			out = append(out, Edge{From: ref, To: Ref{Kind: KindQueue, Name: e.Queue.DeadLetterQueue}.String(), Type: DeadLettersTo, Derived: true})
		case e.Topic != nil && e.Topic.DeadLetterTopic != "":
			out = append(out, Edge{From: ref, To: Ref{Kind: KindTopic, Name: e.Topic.DeadLetterTopic}.String(), Type: DeadLettersTo, Derived: true})
		case e.Saga != nil:
			seen := map[string]bool{}
			for _, st := range e.Saga.Steps {
				from := Ref{Kind: KindService, Name: st.Service}.String()
				if !seen[from] {
					seen[from] = true
					out = append(out, Edge{From: from, To: ref, Type: StepOf, Derived: true})
				}
			}
		}
	}
	return out
}

// isDLQ says a queue or topic serves as a dead-letter destination: by
// name (.dlq, -dlq, _dlq, .dlt, -dlt, ...), by the label role=dlq, or
// because something dead-letters to it.
func (g *graph) isDLQ(ref string, e *graphEntity, into map[string]bool) bool {
	if into[ref] || e.Labels["role"] == "dlq" {
		return true
	}
	n := strings.ToLower(e.Name)
	for _, suf := range []string{"dlq", "dlt", "dead-letter", "deadletter"} {
		if strings.HasSuffix(n, "."+suf) || strings.HasSuffix(n, "-"+suf) || strings.HasSuffix(n, "_"+suf) {
			return true
		}
	}
	return false
}

// problems finds every entity's problems.
func (g *graph) problems() map[string][]Problem {
	in := map[string]map[string]bool{}  // type → targets
	out := map[string]map[string]bool{} // type → sources
	for _, e := range g.edges {
		if in[e.Type] == nil {
			in[e.Type], out[e.Type] = map[string]bool{}, map[string]bool{}
		}
		in[e.Type][e.To] = true
		out[e.Type][e.From] = true
	}
	dlIn := in[DeadLettersTo]
	ps := map[string][]Problem{}
	add := func(ref string, e *graphEntity, code, msg string) {
		ps[ref] = append(ps[ref], Problem{Ref: ref, OwnerTeam: e.OwnerTeam, Code: code, Message: msg})
	}
	for _, ref := range g.order {
		e := g.entities[ref]
		if IsNative(e.Kind) && (e.OwnerTeam == "" || !g.teams[e.OwnerTeam]) {
			if e.OwnerTeam == "" {
				add(ref, e, ProblemNoOwner, "no team owns it")
			} else {
				add(ref, e, ProblemNoOwner, fmt.Sprintf("its owner, team %q, is not in this tenant", e.OwnerTeam))
			}
		}
		if e.Orphaned {
			add(ref, e, ProblemOrphaned, fmt.Sprintf("the last import of source %q no longer holds it", e.Source))
		}
		switch e.Kind {
		case KindQueue:
			dlq := g.isDLQ(ref, e, dlIn)
			if dlq && !dlIn[ref] {
				add(ref, e, ProblemUnusedDLQ, "it looks like a dead-letter queue, but nothing dead-letters to it")
			}
			if !dlq && !in[Consumes][ref] {
				add(ref, e, ProblemNoConsumer, "no registered service consumes it")
			}
			if !dlq && e.Queue.DeadLetterQueue == "" && e.Queue.DeadLetterExchange == "" && !out[DeadLettersTo][ref] {
				add(ref, e, ProblemNoDLQ, "messages it rejects are lost: it has no dead-letter queue")
			}
		case KindTopic:
			dlq := g.isDLQ(ref, e, dlIn)
			if dlq && !dlIn[ref] {
				add(ref, e, ProblemUnusedDLQ, "it looks like a dead-letter topic, but nothing dead-letters to it")
			}
			if !dlq && !in[Publishes][ref] {
				add(ref, e, ProblemNoProducer, "no registered service publishes to it")
			}
		case KindService:
			if e.Health != nil && e.Health.Status == "down" {
				add(ref, e, ProblemHealthFailing, "its health check fails")
			}
		}
		for _, d := range e.drift {
			add(ref, e, ProblemDrift, d.Message)
		}
	}
	return ps
}

// Topology returns tenant's graph narrowed by q, with the nodes allow lets
// the caller read. No edge between two returned nodes is left out, and an
// edge to a reference the catalog does not hold ends at a "missing" node.
func (s *Store) Topology(ctx context.Context, tenant uuid.UUID, q TopologyQuery, allow access.Check) (Topology, error) {
	g, err := s.readGraph(ctx, tenant)
	if err != nil {
		return Topology{}, err
	}
	ps := g.problems()
	keep := map[string]bool{}
	for _, ref := range g.order {
		e := g.entities[ref]
		if q.Matches(&e.Entity) && allow(ctx, e.Object(tenant)) == nil {
			keep[ref] = true
		}
	}
	if q.Around != "" {
		center, err := CanonicalRef(q.Around)
		if err != nil {
			return Topology{}, problem.Invalid(map[string]string{"around": "must be an entity reference such as service:checkout"})
		}
		if !keep[center] {
			return Topology{}, problem.NotFound("entity", center)
		}
		keep = g.within(center, max(q.Depth, 1), keep)
	}
	t := Topology{Nodes: []Node{}, Edges: []Edge{}}
	missing := map[string]bool{}
	for _, e := range g.edges {
		_, fromKnown := g.entities[e.From]
		_, toKnown := g.entities[e.To]
		switch {
		case keep[e.From] && keep[e.To]:
		case keep[e.From] && !toKnown:
			missing[e.To] = true
		case keep[e.To] && !fromKnown:
			missing[e.From] = true
		default:
			continue
		}
		t.Edges = append(t.Edges, e)
	}
	for _, ref := range g.order {
		if !keep[ref] {
			continue
		}
		e := g.entities[ref]
		n := Node{ID: ref, Kind: e.Kind, Name: e.Name, Namespace: e.Namespace, OwnerTeam: e.OwnerTeam, Labels: e.Labels, Status: "ok", Problems: ps[ref]}
		if n.Problems == nil {
			n.Problems = []Problem{}
		}
		if e.Broker != nil {
			n.Type = e.Broker.Type
		}
		switch {
		case e.Health != nil && e.Health.Status == "down":
			n.Status = "down"
		case e.Orphaned:
			n.Status = "orphaned"
		case len(n.Problems) > 0:
			n.Status = "warning"
		}
		t.Nodes = append(t.Nodes, n)
	}
	refs := make([]string, 0, len(missing))
	for ref := range missing {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		r, err := ParseRef(ref)
		if err != nil {
			r = Ref{Kind: "unknown", Namespace: DefaultNamespace, Name: ref}
		}
		t.Nodes = append(t.Nodes, Node{ID: ref, Kind: r.Kind, Name: r.Name, Namespace: r.Namespace, Labels: map[string]string{}, Status: "missing",
			Problems: []Problem{{Ref: ref, Code: "missing", Message: "referred to, but not in the catalog"}}})
	}
	if s.annotate != nil {
		if err := s.annotate(ctx, tenant, &t); err != nil {
			return Topology{}, err
		}
	}
	return t, nil
}

// within keeps the nodes of keep at most depth edges (either way) from
// center.
func (g *graph) within(center string, depth int, keep map[string]bool) map[string]bool {
	adj := map[string][]string{}
	for _, e := range g.edges {
		adj[e.From] = append(adj[e.From], e.To)
		adj[e.To] = append(adj[e.To], e.From)
	}
	out := map[string]bool{center: true}
	frontier := []string{center}
	for d := 0; d < depth && len(frontier) > 0; d++ {
		var next []string
		for _, ref := range frontier {
			for _, n := range adj[ref] {
				if !out[n] && keep[n] {
					out[n] = true
					next = append(next, n)
				}
			}
		}
		frontier = next
	}
	return out
}

// Problems lists the problems of tenant's entities that allow lets the
// caller read, optionally of one owning team, ordered by reference.
func (s *Store) Problems(ctx context.Context, tenant uuid.UUID, team string, allow access.Check) ([]Problem, error) {
	g, err := s.readGraph(ctx, tenant)
	if err != nil {
		return nil, err
	}
	ps := g.problems()
	out := []Problem{}
	for _, ref := range g.order {
		e := g.entities[ref]
		if (team != "" && e.OwnerTeam != team) || len(ps[ref]) == 0 || allow(ctx, e.Object(tenant)) != nil {
			continue
		}
		out = append(out, ps[ref]...)
	}
	return out, nil
}
