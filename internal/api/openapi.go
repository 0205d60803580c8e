package api

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/web"
)

var pathParamRE = regexp.MustCompile(`:([A-Za-z_]+)`)

// openAPIPath turns echo's /a/:b into OpenAPI's /a/{b}.
func openAPIPath(p string) string { return pathParamRE.ReplaceAllString(p, "{$1}") }

type object = map[string]any

// schemaGen builds JSON Schemas for Go types, sharing named structs through
// components.
type schemaGen struct {
	components object
}

func (g *schemaGen) schema(t reflect.Type) object {
	switch t {
	case reflect.TypeOf(time.Time{}):
		return object{"type": "string", "format": "date-time"}
	case reflect.TypeOf(uuid.UUID{}):
		return object{"type": "string", "format": "uuid"}
	case reflect.TypeOf(json.RawMessage{}):
		return object{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	case reflect.Slice, reflect.Array:
		return object{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := g.components[name]; !done {
			g.components[name] = object{} // breaks cycles
			props, required := object{}, []string{}
			g.fields(t, props, &required)
			s := object{"type": "object", "properties": props, "additionalProperties": false}
			if len(required) > 0 {
				s["required"] = required
			}
			g.components[name] = s
		}
		return object{"$ref": "#/components/schemas/" + name}
	}
	return object{}
}

func (g *schemaGen) fields(t reflect.Type, props object, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			g.fields(f.Type, props, required)
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

func schemaName(t reflect.Type) string {
	n := t.Name()
	if i := strings.IndexByte(n, '['); i >= 0 { // List[pkg.Team] -> ListTeam
		inner := n[i+1 : len(n)-1]
		if j := strings.LastIndexByte(inner, '.'); j >= 0 {
			inner = inner[j+1:]
		}
		n = n[:i] + inner
	}
	if p := t.PkgPath(); p != "" && !strings.HasSuffix(p, "/api") {
		if j := strings.LastIndexByte(p, '/'); j >= 0 {
			p = p[j+1:]
		}
		n = strings.ToUpper(p[:1]) + p[1:] + n
	}
	return n
}

func problemResponse(desc string) object {
	return object{"description": desc, "content": object{"application/problem+json": object{"schema": object{"$ref": "#/components/schemas/Problem"}}}}
}

// buildOpenAPI returns the OpenAPI 3.1 document of routes.
func buildOpenAPI(routes []route) object {
	g := &schemaGen{components: object{}}
	g.schema(reflect.TypeOf(web.Problem{}))
	paths := object{}
	for _, r := range routes {
		p := openAPIPath(r.Path)
		item, _ := paths[p].(object)
		if item == nil {
			item = object{}
			paths[p] = item
		}
		op := object{"summary": r.Summary, "tags": []string{r.Tag}, "operationId": strings.ToLower(r.Method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_").Replace(p)}
		var params []object
		for _, m := range pathParamRE.FindAllStringSubmatch(r.Path, -1) {
			params = append(params, object{"name": m[1], "in": "path", "required": true, "schema": object{"type": "string"}})
		}
		if r.Paged {
			params = append(params,
				object{"name": "limit", "in": "query", "schema": object{"type": "integer", "minimum": 1, "maximum": maxLimit, "default": defaultLimit}},
				object{"name": "cursor", "in": "query", "schema": object{"type": "string"}, "description": "next_cursor of the previous page"})
		}
		for _, q := range r.Query {
			params = append(params, object{"name": q.Name, "in": "query", "schema": object{"type": q.Type}, "description": q.Description})
		}
		if r.IfMatch {
			params = append(params, object{"name": "If-Match", "in": "header", "schema": object{"type": "string"}, "description": "the ETag of the version you read; 412 when it moved on"})
		}
		if r.Method == http.MethodPost && r.Auth == authTenant {
			params = append(params, object{"name": "Idempotency-Key", "in": "header", "schema": object{"type": "string", "maxLength": 255},
				"description": "retry-safe creation: a repeat with the same key and body returns the first answer (Idempotency-Replayed: true); a day's memory"})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if r.Request != nil {
			op["requestBody"] = object{"required": true, "content": object{"application/json": object{"schema": g.schema(reflect.TypeOf(r.Request))}}}
		}
		ok := object{"description": http.StatusText(r.Status)}
		if r.Response != nil {
			ok["content"] = object{"application/json": object{"schema": g.schema(reflect.TypeOf(r.Response))}}
		}
		responses := object{strconv.Itoa(r.Status): ok, "default": problemResponse("An error, as RFC 9457 problem details with a stable code")}
		if r.Auth != authNone {
			op["security"] = []object{{"bearer": []string{}}}
			responses["401"] = problemResponse("Missing, expired, revoked or invalid credentials")
		}
		if r.Auth == authTenant || r.Auth == authTenantStream {
			responses["403"] = problemResponse("Your role may not do this")
			responses["404"] = problemResponse("No such object, or a tenant you cannot see")
		}
		op["responses"] = responses
		item[strings.ToLower(r.Method)] = op
	}
	return object{
		"openapi": "3.1.0",
		"info": object{"title": "Switchboard API", "version": "1.0.0",
			"description": "The control plane for services that talk through queues, topics, sagas, locks and event streams. Errors are RFC 9457 problem details with a stable `code`; lists take `limit` and `cursor` and return `items` and `next_cursor`."},
		"paths": paths,
		"components": object{
			"schemas": g.components,
			"securitySchemes": object{"bearer": object{"type": "http", "scheme": "bearer",
				"description": "An access token from POST /api/v1/auth/login, or an API token (sb_...)"}},
		},
	}
}

// docCache holds the rendered document; routes never change after start.
type docCache struct {
	once sync.Once
	json []byte
	html []byte
	err  error
}

var docsTmpl = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard API</title><link rel="icon" href="/static/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/static/app.css"></head>
<body><main class="docs"><h1>Switchboard API</h1>
<p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1).
Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>: an access token from <code>POST /api/v1/auth/login</code> or an API token.
Errors are <code>application/problem+json</code> with a stable <code>code</code>. Lists take <code>limit</code> and <code>cursor</code>.</p>
{{range .}}<section class="card"><h2>{{.Tag}}</h2><table><tbody>
{{range .Routes}}<tr><td><code>{{.Method}}</code></td><td><code>{{.Path}}</code></td><td>{{.Summary}}</td></tr>
{{end}}</tbody></table></section>{{end}}
</main></body></html>`))

type docGroup struct {
	Tag    string
	Routes []docRoute
}

type docRoute struct{ Method, Path, Summary string }

func (a *API) docs() *docCache {
	a.docOnce.once.Do(func() {
		rs := a.routes()
		a.docOnce.json, a.docOnce.err = json.MarshalIndent(buildOpenAPI(rs), "", "  ")
		var groups []docGroup
		for _, r := range rs {
			if len(groups) == 0 || groups[len(groups)-1].Tag != r.Tag {
				groups = append(groups, docGroup{Tag: r.Tag})
			}
			g := &groups[len(groups)-1]
			g.Routes = append(g.Routes, docRoute{r.Method, openAPIPath(r.Path), r.Summary})
		}
		var buf bytes.Buffer
		if err := docsTmpl.Execute(&buf, groups); err != nil && a.docOnce.err == nil {
			a.docOnce.err = err
		}
		a.docOnce.html = buf.Bytes()
	})
	return &a.docOnce
}

func (a *API) openAPI(c echo.Context) error {
	d := a.docs()
	if d.err != nil {
		return d.err
	}
	return c.Blob(http.StatusOK, "application/json", d.json)
}

func (a *API) docsPage(c echo.Context) error {
	d := a.docs()
	if d.err != nil {
		return d.err
	}
	return c.HTMLBlob(http.StatusOK, d.html)
}
