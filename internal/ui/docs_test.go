package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"switchboard/views"
)

func fixtureDocs(t *testing.T) *views.APIDocs {
	t.Helper()
	raw, err := os.ReadFile("testdata/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := buildDocs(raw, "http://switchboard.test")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func findOp(t *testing.T, d *views.APIDocs, method, path string) views.APIOperation {
	t.Helper()
	for _, tag := range d.Tags {
		for _, o := range tag.Ops {
			if o.Method == method && o.Path == path {
				return o
			}
		}
	}
	t.Fatalf("no %s %s in the docs", method, path)
	return views.APIOperation{}
}

func TestBuildDocs_GroupsByTagInTheDocumentsOrderWithoutHEAD(t *testing.T) {
	d := fixtureDocs(t)
	var tags []string
	for _, tag := range d.Tags {
		tags = append(tags, tag.Name)
		for _, o := range tag.Ops {
			if o.Method == "HEAD" {
				t.Errorf("HEAD %s is listed: it repeats GET", o.Path)
			}
		}
	}
	if got := strings.Join(tags, ","); got != "operations,kv,events" {
		t.Errorf("tags %s, want operations,kv,events", got)
	}
	if d.Tags[1].Description != "A compare-and-set key-value space" {
		t.Errorf("tag description %q", d.Tags[1].Description)
	}
}

func TestBuildDocs_ResolvesRefsIntoFieldsAndExamples(t *testing.T) {
	d := fixtureDocs(t)
	put := findOp(t, d, "PUT", "/api/v1/tenants/{tenant}/kv/{key}")
	if put.Auth != "bearer" || len(put.Params) != 3 || put.Params[2].Name != "If-Match" || put.Params[2].In != "header" {
		t.Errorf("parameters: %+v (auth %s)", put.Params, put.Auth)
	}
	if put.Body == nil || put.Body.Name != "PutKVRequest" || len(put.Body.Fields) != 1 || put.Body.Fields[0].Name != "value" || !put.Body.Fields[0].Required {
		t.Fatalf("request body: %+v", put.Body)
	}
	var ex map[string]any
	if err := json.Unmarshal([]byte(put.Body.Example), &ex); err != nil || ex["value"] == nil {
		t.Errorf("request example %q: %v", put.Body.Example, err)
	}
	if len(put.Success) != 1 || put.Success[0].Status != "200" || put.Success[0].Body == nil || len(put.Success[0].Headers) != 1 {
		t.Fatalf("answers: %+v", put.Success)
	}
	if len(put.Errors) != 2 || !put.Errors[0].Problem || put.Errors[0].Status != "412" {
		t.Errorf("errors: %+v", put.Errors)
	}
	if !strings.Contains(put.Curl, "curl -X PUT 'http://switchboard.test/api/v1/tenants/{tenant}/kv/{key}'") ||
		!strings.Contains(put.Curl, "Authorization: Bearer $SWITCHBOARD_TOKEN") || !strings.Contains(put.Curl, `-d '{"value":{"enabled":true}}'`) {
		t.Errorf("curl example:\n%s", put.Curl)
	}
	if len(d.Problem) != 3 || d.Problem[0].Name != "code" {
		t.Errorf("problem fields: %+v", d.Problem)
	}
}

func TestBuildDocs_NestedArraysOneOfAndCycles(t *testing.T) {
	d := fixtureDocs(t)
	post := findOp(t, d, "POST", "/api/v1/tenants/{tenant}/streams/{stream}/events")
	fields := map[string]views.APIField{}
	for _, f := range post.Body.Fields {
		fields[f.Name] = f
	}
	if f := fields["events"]; f.Type != "array of EventInput" || !f.Required || f.Depth != 0 {
		t.Errorf("events: %+v", f)
	}
	if f := fields["type"]; f.Depth != 1 || !f.Required {
		t.Errorf("events[].type should be nested under events: %+v", f)
	}
	if f := fields["expected_version"]; !strings.HasPrefix(f.Type, `one of: string: "any", "no_stream" | integer ≥ 0`) || f.Description != "The condition of an append" {
		t.Errorf("expected_version: %+v", f)
	}
	if f := fields["id"]; f.Type != "string (uuid)" {
		t.Errorf("id: %+v", f)
	}
	var ex struct {
		ExpectedVersion any              `json:"expected_version"`
		Events          []map[string]any `json:"events"`
	}
	if err := json.Unmarshal([]byte(post.Body.Example), &ex); err != nil || ex.ExpectedVersion != "any" || len(ex.Events) != 1 || ex.Events[0]["type"] != "OrderPlaced" {
		t.Errorf("example %s: %v", post.Body.Example, err)
	}
	watch := findOp(t, d, "GET", "/api/v1/tenants/{tenant}/kv-watch")
	if !watch.WebSocket || watch.Curl != "" || len(watch.Success) != 1 || !watch.Success[0].Messages || watch.Success[0].Body == nil {
		t.Errorf("websocket op: %+v", watch)
	}
}

func TestDocsPage_RendersShapesExamplesAndAWayBack(t *testing.T) {
	d := fixtureDocs(t)
	var b bytes.Buffer
	p := views.Page{Title: "API docs", User: &views.PageUser{Name: "Ada", Email: "ada@example.com"}}
	if err := views.DocsPage(p, *d).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		`data-testid="docs-back"`, `href="/"`, "Back to the console",
		`id="tag-kv"`, `href="#tag-kv"`, `id="op-put-kv"`,
		"PutKVRequest", "Example request body", "ETag", "/api/v1/openapi.json",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(html, "style=") || strings.Contains(html, "hx-on") {
		t.Error("inline style or handler on the docs page")
	}
}
