package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// conformanceRecorder collects what the checker reports, so that a test can
// show it fails a wrong document. Fatal stops the traffic, not the test.
type conformanceRecorder struct {
	t    *testing.T
	errs []string
}

type recorderStop struct{}

func (r *conformanceRecorder) Helper()          {}
func (r *conformanceRecorder) Cleanup(f func()) { r.t.Cleanup(f) }
func (r *conformanceRecorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}
func (r *conformanceRecorder) Fatalf(format string, a ...any) {
	r.Errorf(format, a...)
	panic(recorderStop{})
}
func (r *conformanceRecorder) Fatal(a ...any) { r.Fatalf("%s", fmt.Sprint(a...)) }

// TestOpenAPI_ConformanceFailsAWrongDocument breaks the served document in
// one way at a time, as it was or could be wrong, and replays traffic that
// the real document accepts: the checker must report each break.
func TestOpenAPI_ConformanceFailsAWrongDocument(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	acme := "/api/v1/tenants/acme"
	served := servedOpenAPI(t, s)

	type doc = map[string]any
	at := func(d doc, keys ...string) doc {
		for _, k := range keys {
			d = d[k].(doc)
		}
		return d
	}
	cases := []struct {
		name    string
		breaks  func(d doc)
		traffic func(c *conformance, n int)
		want    string
	}{
		{"expected_version documented as an object (as it was)",
			func(d doc) { at(d, "components", "schemas")["ExpectedVersion"] = doc{"type": "object"} },
			func(c *conformance, n int) {
				c.send("POST", fmt.Sprintf("%s/streams/s-%d/events", acme, n), tok, doc{"expected_version": "no_stream", "events": []any{doc{"type": "A", "data": 1}}})
			},
			"$.expected_version: got string, want object"},
		{"a field the answer always has, of another type",
			func(d doc) {
				at(d, "components", "schemas", "TenancyTeam", "properties")["name"] = doc{"type": "integer"}
			},
			func(c *conformance, n int) {
				c.send("POST", acme+"/teams", tok, doc{"slug": fmt.Sprintf("t-%d", n), "name": "T"})
			},
			"$.name: got string, want integer"},
		{"a field required that the answer may leave out (omitzero, as it was)",
			func(d doc) {
				m := at(d, "components", "schemas", "TenancyMember")
				m["required"] = append(m["required"].([]any), "invited_at")
			},
			func(c *conformance, n int) { c.send("GET", acme+"/members", tok, nil) },
			"missing property 'invited_at'"},
		{"a success status the document does not list",
			func(d doc) { delete(at(d, "paths", "/api/v1/tenants/{tenant}/teams", "post", "responses"), "201") },
			func(c *conformance, n int) {
				c.send("POST", acme+"/teams", tok, doc{"slug": fmt.Sprintf("t-%d", n), "name": "T"})
			},
			"does not list this answer"},
		{"no body promised where there is one (as it was for openapi.json)",
			func(d doc) { delete(at(d, "paths", "/api/v1/openapi.json", "get", "responses", "200"), "content") },
			func(c *conformance, n int) { c.send("GET", "/api/v1/openapi.json", "", nil) },
			"promises no body"},
		{"a body promised where there is none",
			func(d doc) {
				at(d, "paths", "/api/v1/tenants/{tenant}/teams/{team}", "delete", "responses", "204")["content"] = doc{"application/json": doc{"schema": doc{"type": "object"}}}
			},
			func(c *conformance, n int) {
				slug := fmt.Sprintf("t-%d", n)
				c.send("POST", acme+"/teams", tok, doc{"slug": slug, "name": "T"})
				c.send("DELETE", acme+"/teams/"+slug, tok, nil)
			},
			"promises a body"},
		{"errors documented as plain JSON",
			func(d doc) {
				r := at(d, "paths", "/api/v1/tenants/{tenant}", "get", "responses")
				r["404"] = doc{"description": "not found", "content": doc{"application/json": doc{"schema": doc{"type": "object"}}}}
			},
			func(c *conformance, n int) { c.send("GET", "/api/v1/tenants/nope", tok, nil) },
			"application/problem+json"},
		{"HEAD left out (as it was)",
			func(d doc) { delete(at(d, "paths", "/api/v1/tenants/{tenant}/teams"), "head") },
			func(c *conformance, n int) { c.send("GET", acme+"/teams", tok, nil) },
			"HEAD /api/v1/tenants/acme/teams → 200: no operation"},
		{"a query parameter of another type",
			func(d doc) {
				for _, p := range at(d, "paths", "/api/v1/tenants/{tenant}/events", "get")["parameters"].([]any) {
					if p := p.(doc); p["name"] == "from_position" {
						p["schema"] = doc{"type": "string", "enum": []any{"start"}}
					}
				}
			},
			func(c *conformance, n int) { c.send("GET", acme+"/events?from_position=0", tok, nil) },
			"from_position"},
	}
	for n, tc := range cases {
		var d doc
		if err := json.Unmarshal(served.raw, &d); err != nil {
			t.Fatal(err)
		}
		tc.breaks(d)
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		rec := &conformanceRecorder{t: t}
		c := newConformance(t, rec, s, parseOpenAPI(t, raw))
		func() {
			defer func() {
				if p := recover(); p != nil && p != (recorderStop{}) {
					panic(p)
				}
			}()
			tc.traffic(c, n)
		}()
		if !strings.Contains(strings.Join(rec.errs, "\n"), tc.want) {
			t.Errorf("%s: the checker did not report %q; it reported:\n%s", tc.name, tc.want, strings.Join(rec.errs, "\n"))
		}
	}
}
