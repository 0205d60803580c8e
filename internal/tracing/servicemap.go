package tracing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/catalog"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// RED is rate, errors and duration over a window.
type RED = catalog.Traffic

// OperationRED is one service's operation (span name and kind) over a
// window.
type OperationRED struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	RED
}

// TracedEdge is a relation seen in spans: a client span of one service
// whose child is a server span of another (calls), or a producer or
// consumer span naming its messaging.destination.name (publishes,
// consumes). From and To are catalog references.
type TracedEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Type string `json:"type"`
	RED
}

// ServiceRED is what a service served (its server and consumer spans)
// over a window.
type ServiceRED struct {
	Service string `json:"service"`
	RED
}

// Stats are the RED figures of a window: per service, per operation and
// per edge.
type Stats struct {
	Since      time.Time      `json:"since"`
	Until      time.Time      `json:"until"`
	Services   []ServiceRED   `json:"services"`
	Operations []OperationRED `json:"operations"`
	Edges      []TracedEdge   `json:"edges"`
}

// MaxWindow is the longest window figures are computed over.
const MaxWindow = 7 * 24 * time.Hour

// Stats computes the RED figures of tenant's spans that started in
// [since, until), in one snapshot.
func (s *Store) Stats(ctx context.Context, tenant uuid.UUID, since, until time.Time) (Stats, error) {
	if !since.Before(until) {
		return Stats{}, problem.Invalid(map[string]string{"since": "must be before until"})
	}
	if until.Sub(since) > MaxWindow {
		return Stats{}, problem.Invalid(map[string]string{"since": fmt.Sprintf("the window is at most %s", MaxWindow)})
	}
	st := Stats{Since: since, Until: until, Services: []ServiceRED{}, Operations: []OperationRED{}, Edges: []TracedEdge{}}
	secs := until.Sub(since).Seconds()
	red := func(r *RED, p50, p99 float64) {
		r.Rate, r.P50Ms, r.P99Ms = float64(r.Count)/secs, p50/1e6, p99/1e6
	}
	args := []any{tenant, since, until}
	err := s.db.ReadTenantAll(ctx, tenant,
		database.Query{SQL: `SELECT service, count(*), count(*) FILTER (WHERE status_code = 2),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ns), percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns)
			FROM spans WHERE tenant_id = $1 AND start_time >= $2 AND start_time < $3 AND kind IN (2, 5)
			GROUP BY service ORDER BY service`, Args: args,
			Scan: func(rows pgx.Rows) error {
				var o ServiceRED
				var p50, p99 float64
				if err := rows.Scan(&o.Service, &o.Count, &o.Errors, &p50, &p99); err != nil {
					return err
				}
				red(&o.RED, p50, p99)
				st.Services = append(st.Services, o)
				return nil
			}},
		database.Query{SQL: `SELECT service, name, kind, count(*), count(*) FILTER (WHERE status_code = 2),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ns), percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns)
			FROM spans WHERE tenant_id = $1 AND start_time >= $2 AND start_time < $3
			GROUP BY service, name, kind ORDER BY service, name, kind`, Args: args,
			Scan: func(rows pgx.Rows) error {
				var o OperationRED
				var kind int16
				var p50, p99 float64
				if err := rows.Scan(&o.Service, &o.Name, &kind, &o.Count, &o.Errors, &p50, &p99); err != nil {
					return err
				}
				o.Kind = kindName(kind)
				red(&o.RED, p50, p99)
				st.Operations = append(st.Operations, o)
				return nil
			}},
		// A call: a client span and its child server span in another
		// service; the server span's figures are the call's.
		database.Query{SQL: `SELECT c.service, s.service, count(*), count(*) FILTER (WHERE s.status_code = 2),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY s.duration_ns), percentile_cont(0.99) WITHIN GROUP (ORDER BY s.duration_ns)
			FROM spans c JOIN spans s ON s.tenant_id = c.tenant_id AND s.trace_id = c.trace_id AND s.parent_span_id = c.span_id
			WHERE c.tenant_id = $1 AND c.start_time >= $2 AND c.start_time < $3 AND c.kind = 3 AND s.kind = 2 AND s.service <> c.service
			GROUP BY 1, 2 ORDER BY 1, 2`, Args: args,
			Scan: func(rows pgx.Rows) error {
				var e TracedEdge
				var from, to string
				var p50, p99 float64
				if err := rows.Scan(&from, &to, &e.Count, &e.Errors, &p50, &p99); err != nil {
					return err
				}
				e.From, e.To, e.Type = serviceRef(from), serviceRef(to), catalog.Calls
				red(&e.RED, p50, p99)
				st.Edges = append(st.Edges, e)
				return nil
			}},
		// Messaging: a producer publishes to its destination, a consumer
		// consumes from it; Kafka's destinations are topics, others queues.
		database.Query{SQL: `SELECT service, kind, attributes ->> 'messaging.destination.name', coalesce(attributes ->> 'messaging.system', ''),
				count(*), count(*) FILTER (WHERE status_code = 2),
				percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ns), percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns)
			FROM spans WHERE tenant_id = $1 AND start_time >= $2 AND start_time < $3 AND kind IN (4, 5) AND attributes ? 'messaging.destination.name'
			GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, Args: args,
			Scan: func(rows pgx.Rows) error {
				var e TracedEdge
				var service, dest, system string
				var kind int16
				var p50, p99 float64
				if err := rows.Scan(&service, &kind, &dest, &system, &e.Count, &e.Errors, &p50, &p99); err != nil {
					return err
				}
				e.From, e.To, e.Type = serviceRef(service), destinationRef(system, dest), catalog.Publishes
				if kind == 5 {
					e.Type = catalog.Consumes
				}
				red(&e.RED, p50, p99)
				st.Edges = append(st.Edges, e)
				return nil
			}},
	)
	if err != nil {
		return Stats{}, fmt.Errorf("compute trace figures: %w", err)
	}
	return st, nil
}

func serviceRef(name string) string {
	return catalog.Ref{Kind: catalog.KindService, Name: name}.String()
}

func destinationRef(system, name string) string {
	kind := catalog.KindQueue
	if system == "kafka" {
		kind = catalog.KindTopic
	}
	return catalog.Ref{Kind: kind, Name: name}.String()
}

// MergeTopology lays what spans showed in st over t, the catalog's graph:
// each service node gets what it served;
// each declared edge of a type spans show (calls, publishes, consumes) is
// marked seen (with its figures) or silent; each seen edge the catalog
// lacks is added, undeclared, with a node for an end the graph lacks. A
// queue named in spans that the catalog holds as a topic is that topic.
func MergeTopology(t *catalog.Topology, st Stats) {
	edges := st.Edges
	served := map[string]RED{}
	for _, sv := range st.Services {
		served[serviceRef(sv.Service)] = sv.RED
	}
	nodes := map[string]bool{}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		nodes[n.ID] = true
		if r, ok := served[n.ID]; ok {
			n.Traced = &r
		}
	}
	type key struct{ from, to, typ string }
	seen := map[key]*TracedEdge{}
	for i := range edges {
		e := &edges[i]
		if e.Type != catalog.Calls && !nodes[e.To] {
			if r, err := catalog.ParseRef(e.To); err == nil {
				other := catalog.Ref{Kind: catalog.KindTopic, Namespace: r.Namespace, Name: r.Name}
				if r.Kind == catalog.KindTopic {
					other.Kind = catalog.KindQueue
				}
				if nodes[other.String()] {
					e.To = other.String()
				}
			}
		}
		seen[key{e.From, e.To, e.Type}] = e
	}
	traceable := map[string]bool{catalog.Calls: true, catalog.Publishes: true, catalog.Consumes: true}
	declared := map[key]bool{}
	yes := true
	for i := range t.Edges {
		e := &t.Edges[i]
		if !traceable[e.Type] {
			continue
		}
		k := key{e.From, e.To, e.Type}
		declared[k] = true
		e.Declared = &yes
		if s, ok := seen[k]; ok {
			r := s.RED
			e.Traced = &r
		} else {
			e.Silent = true
		}
	}
	no := false
	for _, e := range edges {
		k := key{e.From, e.To, e.Type}
		if declared[k] {
			continue
		}
		r := e.RED
		t.Edges = append(t.Edges, catalog.Edge{From: e.From, To: e.To, Type: e.Type, Declared: &no, Traced: &r})
		for _, ref := range []string{e.From, e.To} {
			if !nodes[ref] {
				nodes[ref] = true
				n := catalog.Node{ID: ref, Status: "missing", Labels: map[string]string{}, Problems: []catalog.Problem{}}
				if r, ok := served[ref]; ok {
					n.Traced = &r
				}
				if r, err := catalog.ParseRef(ref); err == nil {
					n.Kind, n.Name, n.Namespace = r.Kind, r.Name, r.Namespace
				}
				t.Nodes = append(t.Nodes, n)
			}
		}
	}
}

// ParseWindow reads a topology's traced_since: a duration such as 1h or
// 30m, at most MaxWindow.
func ParseWindow(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > MaxWindow {
		return 0, problem.Invalid(map[string]string{"traced_since": "must be a duration such as 1h or 30m, at most 168h"})
	}
	return d, nil
}

// LayOver lays what tenant's spans showed in the window back from now
// over t (MergeTopology).
func (s *Store) LayOver(ctx context.Context, tenant uuid.UUID, t *catalog.Topology, window time.Duration) error {
	now := s.now()
	st, err := s.Stats(ctx, tenant, now.Add(-window), now)
	if err != nil {
		return err
	}
	MergeTopology(t, st)
	return nil
}
