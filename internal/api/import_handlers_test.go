package api_test

import (
	"os"
	"strings"
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/catalog"
)

const yamlCT = "application/yaml"

// A Backstage catalog comes in whole, goes back out with what Switchboard
// does not model, and comes in again unchanged.
func TestImport_BackstageRoundTrip(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	var file []byte
	for _, name := range []string{"org.yaml", "systems.yaml"} {
		b, err := os.ReadFile("../catalog/backstage/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		file = append(append(file, b...), "\n---\n"...)
	}
	var res catalog.ImportResult
	s.must(200, "POST", cat+"/catalog/import?source=github.com/acme/catalog", owner, string(file), "Content-Type", yamlCT).json(t, &res)
	if !res.Applied || len(res.Created) < 20 || res.Relations == 0 {
		t.Fatalf("imported %+v", res)
	}
	export := s.must(200, "GET", cat+"/catalog/export", owner, nil)
	if ct := export.Header.Get("Content-Type"); !strings.HasPrefix(ct, yamlCT) {
		t.Fatalf("export Content-Type %q", ct)
	}
	total := len(res.Created)
	// The export holds every entity: imported again, nothing is new and
	// nothing is orphaned. Defaults the first import filled in (a queue's
	// vhost) are written out, so from the second export on the file is a
	// fixed point, byte for byte.
	s.must(200, "POST", cat+"/catalog/import?source=github.com/acme/catalog", owner, string(export.Body), "Content-Type", yamlCT).json(t, &res)
	if len(res.Created) != 0 || len(res.Orphaned) != 0 || res.Unchanged+len(res.Updated) != total {
		t.Fatalf("re-importing the export changed the catalog: %+v", res)
	}
	second := s.must(200, "GET", cat+"/catalog/export", owner, nil)
	s.must(200, "POST", cat+"/catalog/import?source=github.com/acme/catalog", owner, string(second.Body), "Content-Type", yamlCT).json(t, &res)
	if res.Unchanged != total {
		t.Fatalf("a second round trip changed entities: %+v", res)
	}
	third := s.must(200, "GET", cat+"/catalog/export", owner, nil)
	if string(third.Body) != string(second.Body) {
		t.Fatalf("export after a round trip differs:\n%s\n---- was ----\n%s", third.Body, second.Body)
	}
	// Two users named guest in two namespaces are two entities.
	var page api.List[catalog.Relation]
	s.must(200, "GET", cat+"/relations?type=member_of", owner, nil).json(t, &page)
	if len(page.Items) == 0 {
		t.Fatal("no member_of relations from the users")
	}
}

// Every error of a file is answered at its document and line, nothing is
// applied, and the source's last import shows the errors.
func TestImport_ErrorsAtTheirLines(t *testing.T) {
	t.Parallel()
	s, owner := catalogServer(t)
	file := `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good
spec:
  type: service
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: Bad Name
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: dup
  name: dup
`
	p := wantProblem(t, s.do("POST", cat+"/catalog/import?source=repo", owner, file, "Content-Type", yamlCT), 422, "unprocessable")
	var lines []string
	for k := range p.Errors {
		lines = append(lines, k)
	}
	joined := strings.Join(lines, "|")
	if !strings.Contains(joined, "document 1, line 12") || !strings.Contains(joined, "document 2") {
		t.Fatalf("errors %v", p.Errors)
	}
	wantProblem(t, s.do("GET", cat+"/services/good", owner, nil), 404, "not_found")
	var imports api.List[catalog.ImportResult]
	s.must(200, "GET", cat+"/catalog/imports", owner, nil).json(t, &imports)
	if len(imports.Items) != 1 || imports.Items[0].Applied || len(imports.Items[0].Errors) < 2 {
		t.Fatalf("imports %+v", imports.Items)
	}
	bomb := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	wantProblem(t, s.do("POST", cat+"/catalog/import?source=repo", owner, bomb, "Content-Type", yamlCT), 422, "unprocessable")
	wantProblem(t, s.do("POST", cat+"/catalog/import?source=repo", owner, "\xff\xfe", "Content-Type", yamlCT), 422, "unprocessable")
	wantProblem(t, s.do("POST", cat+"/catalog/import?source=repo", owner, file, "Content-Type", "application/json"), 415, "unsupported_media")
	wantProblem(t, s.do("POST", cat+"/catalog/import", owner, file, "Content-Type", yamlCT), 400, "invalid")
	huge := strings.Repeat("# padding\n", (api.MaxImportBytes/10)+10)
	r := s.do("POST", cat+"/catalog/import?source=repo", owner, huge, "Content-Type", yamlCT)
	if r.Status != 413 {
		t.Fatalf("a file over the limit: %d %s", r.Status, r.Body)
	}
}
