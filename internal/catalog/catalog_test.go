package catalog_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
)

func allowAll(context.Context, access.Object) error { return nil }

func newStore(t *testing.T) (*catalog.Store, uuid.UUID) {
	t.Helper()
	db := dbtest.New(t)
	var tenant uuid.UUID
	if err := db.Pool.QueryRow(t.Context(), `INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(t.Context(), `INSERT INTO teams (tenant_id, slug, name) VALUES ($1, 'payments', 'Payments')`, tenant); err != nil {
		t.Fatal(err)
	}
	return catalog.New(db, nil), tenant
}

func svc(name string) catalog.Entity {
	return catalog.Entity{Kind: catalog.KindService, Name: name, OwnerTeam: "payments"}
}

// An import applies all or nothing, keeps references to what it does not
// hold, and marks what a later import of its source no longer holds as
// orphaned instead of deleting it.
func TestImport_OrphansAndMissingReferences(t *testing.T) {
	s, tenant := newStore(t)
	ctx := t.Context()
	rels := []catalog.Relation{{From: "service:a", Type: catalog.Calls, To: "service:b"}, {From: "service:a", Type: catalog.DependsOn, To: "resource:db"}}
	res, err := s.Import(ctx, tenant, "repo-1", []catalog.Entity{svc("a"), svc("b")}, rels, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 2 || res.Relations != 2 || !slices.Equal(res.Missing, []string{"resource:db"}) {
		t.Fatalf("first import: %+v", res)
	}
	res, err = s.Import(ctx, tenant, "repo-1", []catalog.Entity{svc("a")}, nil, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged != 1 || !slices.Equal(res.Orphaned, []string{"service:b"}) {
		t.Fatalf("second import: %+v", res)
	}
	b, err := s.Get(ctx, tenant, catalog.Ref{Kind: catalog.KindService, Namespace: "default", Name: "b"}, allowAll)
	if err != nil || !b.Orphaned {
		t.Fatalf("service b after it left its source: %+v, %v", b, err)
	}
	// One bad entity: nothing of the file is applied.
	bad := svc("Not_Valid")
	if _, err := s.Import(ctx, tenant, "repo-1", []catalog.Entity{svc("c"), bad}, nil, allowAll); problem.Code(err) != problem.CodeInvalid {
		t.Fatalf("a file with a bad entity: %v", err)
	}
	if _, err := s.Get(ctx, tenant, catalog.Ref{Kind: catalog.KindService, Namespace: "default", Name: "c"}, allowAll); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("service c was applied from a refused file: %v", err)
	}
	// A refusal of one entity refuses the file.
	deny := func(_ context.Context, o access.Object) error {
		if o.Name == "service:c" {
			return problem.Errorf(problem.CodeForbidden, "no")
		}
		return nil
	}
	if _, err := s.Import(ctx, tenant, "repo-1", []catalog.Entity{svc("a"), svc("c")}, nil, deny); problem.Code(err) != problem.CodeForbidden {
		t.Fatalf("a file with a forbidden entity: %v", err)
	}
}

// The topology draws an edge to a reference the catalog does not hold to a
// missing node, and narrows to a neighbourhood.
func TestTopology_MissingNodesAndNeighbourhood(t *testing.T) {
	s, tenant := newStore(t)
	ctx := t.Context()
	rels := []catalog.Relation{{From: "service:a", Type: catalog.Calls, To: "service:b"}, {From: "service:b", Type: catalog.Calls, To: "service:c"},
		{From: "service:c", Type: catalog.DependsOn, To: "resource:db"}}
	if _, err := s.Import(ctx, tenant, "repo", []catalog.Entity{svc("a"), svc("b"), svc("c")}, rels, allowAll); err != nil {
		t.Fatal(err)
	}
	topo, err := s.Topology(ctx, tenant, catalog.TopologyQuery{}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) != 4 || len(topo.Edges) != 3 || topo.Nodes[3].ID != "resource:db" || topo.Nodes[3].Status != "missing" {
		t.Fatalf("topology %+v", topo)
	}
	near, err := s.Topology(ctx, tenant, catalog.TopologyQuery{Around: "service:a", Depth: 1}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range near.Nodes {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"service:a", "service:b"}) || len(near.Edges) != 1 {
		t.Fatalf("around service:a: %v %+v", ids, near.Edges)
	}
	sel, err := catalog.ParseSelector("env=prod")
	if err != nil {
		t.Fatal(err)
	}
	none, err := s.Topology(ctx, tenant, catalog.TopologyQuery{Filter: catalog.Filter{Labels: sel}}, allowAll)
	if err != nil || len(none.Nodes) != 0 || len(none.Edges) != 0 {
		t.Fatalf("env=prod: %+v, %v", none, err)
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{"service:checkout": "service:checkout", "Component:default/x": "component:x",
		"user:guests/guest": "user:guests/guest", "queue:default/a/b": "queue:default/a/b"} {
		got, err := catalog.CanonicalRef(in)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "checkout", ":x", "service:", "ser vice:x", "user:Bad NS/x"} {
		if _, err := catalog.ParseRef(bad); err == nil {
			t.Errorf("%q was read as a reference", bad)
		}
	}
}
