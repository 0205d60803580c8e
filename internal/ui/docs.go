package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
	"switchboard/views"
)

// The API docs page (GET /docs) is drawn from the REST API's OpenAPI 3.1
// document (Deps.OpenAPI): operations grouped by tag, each with its
// parameters, the shape of its request body with an example, and the
// shapes of its answers; $refs are resolved into the components they name.
// The document does not change while the server runs, so the page's model
// is built once.

// docsCache holds the docs page's model once it was built.
type docsCache struct {
	mu   sync.Mutex // guards docs
	docs *views.APIDocs
}

func (u *UI) docsPage(c echo.Context) error {
	d, err := u.apiDocs()
	if err != nil {
		return err
	}
	p := page(c, "API docs", "")
	return render(c, http.StatusOK, views.DocsPage(p, *d))
}

func (u *UI) apiDocs() (*views.APIDocs, error) {
	u.docs.mu.Lock()
	defer u.docs.mu.Unlock()
	if u.docs.docs != nil {
		return u.docs.docs, nil
	}
	if u.d.OpenAPI == nil {
		return nil, problem.Errorf(problem.CodeUnavailable, "the API's description is not available on this server")
	}
	raw, err := u.d.OpenAPI()
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	d, err := buildDocs(raw, u.origin)
	if err != nil {
		return nil, err
	}
	u.docs.docs = d
	return d, nil
}

type jsonObject = map[string]any

// docBuilder reads one OpenAPI document.
type docBuilder struct {
	schemas jsonObject // components.schemas
	base    string     // the server's public URL, for the curl examples
}

// buildDocs turns an OpenAPI 3.1 document into the docs page's model.
func buildDocs(raw []byte, base string) (*views.APIDocs, error) {
	var doc jsonObject
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	if base == "" {
		base = "http://localhost:8080"
	}
	b := &docBuilder{schemas: obj(obj(doc["components"])["schemas"]), base: strings.TrimRight(base, "/")}
	info := obj(doc["info"])
	out := &views.APIDocs{Title: str(info["title"]), Version: str(info["version"]), Description: str(info["description"]),
		OpenAPIURL: "/api/v1/openapi.json"}
	if out.Title == "" {
		out.Title = "API"
	}
	if p, ok := b.schemas["Problem"]; ok {
		out.Problem = b.fields(obj(p), 0, nil)
	}

	// Tags in the document's order, then any an operation names besides.
	tags := map[string]*views.APITag{}
	var order []string
	addTag := func(name, desc string) *views.APITag {
		if t, ok := tags[name]; ok {
			if t.Description == "" {
				t.Description = desc
			}
			return t
		}
		t := &views.APITag{Name: name, Description: desc, ID: "tag-" + slug(name)}
		tags[name] = t
		order = append(order, name)
		return t
	}
	for _, t := range list(doc["tags"]) {
		addTag(str(obj(t)["name"]), str(obj(t)["description"]))
	}
	paths := obj(doc["paths"])
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	methods := []string{"get", "put", "post", "patch", "delete"} // HEAD repeats GET
	for _, path := range names {
		item := obj(paths[path])
		for _, m := range methods {
			op, ok := item[m].(jsonObject)
			if !ok {
				continue
			}
			tag := "other"
			if ts := list(op["tags"]); len(ts) > 0 {
				tag = str(ts[0])
			}
			t := addTag(tag, "")
			t.Ops = append(t.Ops, b.operation(strings.ToUpper(m), path, op, list(item["parameters"])))
		}
	}
	for _, name := range order {
		if len(tags[name].Ops) > 0 {
			out.Tags = append(out.Tags, *tags[name])
		}
	}
	return out, nil
}

func (b *docBuilder) operation(method, path string, op jsonObject, shared []any) views.APIOperation {
	o := views.APIOperation{Method: method, Path: path, Summary: str(op["summary"]), Description: str(op["description"]),
		ID: "op-" + slug(str(op["operationId"]))}
	if o.ID == "op-" {
		o.ID = "op-" + slug(method+" "+path)
	}
	o.Auth = "none"
	if sec := list(op["security"]); len(sec) > 0 {
		o.Auth = "bearer"
	}
	for _, p := range append(slices.Clone(shared), list(op["parameters"])...) {
		p := b.deref(obj(p))
		s := b.deref(obj(p["schema"]))
		desc := str(p["description"])
		if desc == "" {
			desc = str(s["description"])
		}
		o.Params = append(o.Params, views.APIParam{Name: str(p["name"]), In: str(p["in"]), Required: p["required"] == true,
			Type: b.typeOf(s), Description: desc})
	}
	if rb := b.deref(obj(op["requestBody"])); len(rb) > 0 {
		if s, ctype := content(rb); s != nil {
			o.Body = &views.APIBody{ContentType: ctype, Name: b.refName(s), Fields: b.fields(s, 0, nil),
				Example: b.exampleJSON(s)}
		}
	}
	statuses := make([]string, 0)
	responses := obj(op["responses"])
	for st := range responses {
		statuses = append(statuses, st)
	}
	sort.Strings(statuses) // "default" sorts after the numbers
	websocket := false
	for _, st := range statuses {
		r := b.deref(obj(responses[st]))
		resp := views.APIResponse{Status: st, Description: str(r["description"])}
		if s, ctype := content(r); s != nil {
			if ctype == "application/problem+json" {
				resp.Problem = true
			} else {
				resp.Body = &views.APIBody{ContentType: ctype, Name: b.refName(s), Fields: b.fields(s, 0, nil), Example: b.exampleJSON(s)}
			}
		}
		hs := obj(r["headers"])
		hnames := make([]string, 0, len(hs))
		for h := range hs {
			hnames = append(hnames, h)
		}
		sort.Strings(hnames)
		for _, h := range hnames {
			hv := b.deref(obj(hs[h]))
			resp.Headers = append(resp.Headers, views.APIParam{Name: h, Description: str(hv["description"]), Type: b.typeOf(b.deref(obj(hv["schema"])))})
		}
		if st == "101" {
			websocket = true
			resp.Messages = true
		}
		if strings.HasPrefix(st, "2") || strings.HasPrefix(st, "1") || strings.HasPrefix(st, "3") {
			o.Success = append(o.Success, resp)
		} else {
			o.Errors = append(o.Errors, resp)
		}
	}
	o.WebSocket = websocket
	if !websocket {
		o.Curl = b.curl(o)
	}
	return o
}

// curl is an example command line for the operation.
func (b *docBuilder) curl(o views.APIOperation) string {
	var sb strings.Builder
	sb.WriteString("curl")
	if o.Method != "GET" {
		sb.WriteString(" -X " + o.Method)
	}
	sb.WriteString(" '" + b.base + o.Path)
	var q []string
	for _, p := range o.Params {
		if p.In == "query" && p.Required {
			q = append(q, p.Name+"=…")
		}
	}
	if len(q) > 0 {
		sb.WriteString("?" + strings.Join(q, "&"))
	}
	sb.WriteString("'")
	if o.Auth != "none" {
		sb.WriteString(" \\\n  -H \"Authorization: Bearer $SWITCHBOARD_TOKEN\"")
	}
	for _, p := range o.Params {
		if p.In == "header" && p.Required {
			sb.WriteString(" \\\n  -H '" + p.Name + ": …'")
		}
	}
	if o.Body != nil {
		sb.WriteString(" \\\n  -H 'Content-Type: " + o.Body.ContentType + "'")
		sb.WriteString(" \\\n  -d '" + strings.ReplaceAll(compactJSON(o.Body.Example), "'", `'\''`) + "'")
	}
	return sb.String()
}

// content returns the schema of the first JSON media type of a body or
// answer, and the media type.
func content(r jsonObject) (jsonObject, string) {
	c := obj(r["content"])
	types := make([]string, 0, len(c))
	for t := range c {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if s, ok := obj(c[t])["schema"].(jsonObject); ok {
			return s, t
		}
	}
	return nil, ""
}

// deref resolves a local $ref (#/components/schemas/X and the like); other
// objects are returned as they are.
func (b *docBuilder) deref(o jsonObject) jsonObject {
	for range 8 { // a chain of refs, not a cycle
		ref := str(o["$ref"])
		if ref == "" {
			return o
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			return o
		}
		next, ok := b.schemas[name].(jsonObject)
		if !ok {
			return o
		}
		o = next
	}
	return o
}

func (b *docBuilder) refName(s jsonObject) string {
	name, _ := strings.CutPrefix(str(s["$ref"]), "#/components/schemas/")
	return name
}

// maxDepth bounds how deep the field tables follow nested objects.
const maxDepth = 3

// fields lists the members of an object schema (or of the objects of an
// array schema), nested ones indented below their parent. seen holds the
// components already being expanded, so a recursive shape stops.
func (b *docBuilder) fields(s jsonObject, depth int, seen []string) []views.APIField {
	if name := b.refName(s); name != "" {
		if slices.Contains(seen, name) || depth > maxDepth {
			return nil
		}
		seen = append(slices.Clone(seen), name)
	}
	s = b.deref(s)
	if str(s["type"]) == "array" {
		return b.fields(obj(s["items"]), depth, seen)
	}
	props := obj(s["properties"])
	if len(props) == 0 {
		return nil
	}
	required := map[string]bool{}
	for _, r := range list(s["required"]) {
		required[str(r)] = true
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	// Required members first, then the rest, each by name.
	sort.Slice(names, func(i, j int) bool {
		if required[names[i]] != required[names[j]] {
			return required[names[i]]
		}
		return names[i] < names[j]
	})
	var out []views.APIField
	for _, n := range names {
		ps := obj(props[n])
		d := b.deref(ps)
		desc := str(ps["description"])
		if desc == "" {
			desc = str(d["description"])
		}
		out = append(out, views.APIField{Name: n, Depth: depth, Type: b.typeOf(ps), Required: required[n], Description: desc})
		if depth < maxDepth {
			out = append(out, b.fields(ps, depth+1, seen)...)
		}
	}
	return out
}

// typeOf says a schema's type in a few words: "string (date-time)",
// "integer ≥ 0", "array of TenancyTeam", "one of: "any", "no_stream" | integer".
func (b *docBuilder) typeOf(s jsonObject) string {
	if name := b.refName(s); name != "" {
		d := b.deref(s)
		if str(d["type"]) == "object" || d["properties"] != nil {
			return "object (" + name + ")"
		}
		return b.typeOf(d)
	}
	if alts := list(s["oneOf"]); len(alts) > 0 {
		var parts []string
		for _, a := range alts {
			parts = append(parts, b.typeOf(obj(a)))
		}
		return "one of: " + strings.Join(parts, " | ")
	}
	t := str(s["type"])
	if ts := list(s["type"]); len(ts) > 0 {
		var parts []string
		for _, x := range ts {
			parts = append(parts, str(x))
		}
		t = strings.Join(parts, " or ")
	}
	switch t {
	case "":
		return "any JSON value"
	case "array":
		item := b.typeOf(obj(s["items"]))
		if name, ok := strings.CutPrefix(item, "object ("); ok {
			return "array of " + strings.TrimSuffix(name, ")")
		}
		return "array of " + item
	case "object":
		if ap, ok := s["additionalProperties"].(jsonObject); ok && s["properties"] == nil {
			return "object of " + b.typeOf(ap)
		}
	}
	if enum := list(s["enum"]); len(enum) > 0 {
		var vs []string
		for _, e := range enum {
			j, _ := json.Marshal(e)
			vs = append(vs, string(j))
		}
		return t + ": " + strings.Join(vs, ", ")
	}
	if f := str(s["format"]); f != "" && f != "int64" {
		t += " (" + f + ")"
	}
	lo, hasLo := s["minimum"].(float64)
	hi, hasHi := s["maximum"].(float64)
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	switch {
	case hasLo && hasHi:
		t += ", " + num(lo) + " to " + num(hi)
	case hasLo:
		t += " ≥ " + num(lo)
	case hasHi:
		t += " ≤ " + num(hi)
	}
	return t
}

// exampleJSON is an example value of a schema, indented: the schema's own
// example or default where it gives one, else a value made from its type.
func (b *docBuilder) exampleJSON(s jsonObject) string {
	v := b.example(s, "", 0, nil)
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(out)
}

func (b *docBuilder) example(s jsonObject, name string, depth int, seen []string) any {
	if ref := b.refName(s); ref != "" {
		if slices.Contains(seen, ref) || depth > maxDepth+1 {
			return jsonObject{}
		}
		seen = append(slices.Clone(seen), ref)
	}
	s = b.deref(s)
	if v, ok := s["example"]; ok {
		return v
	}
	if vs := list(s["examples"]); len(vs) > 0 {
		return vs[0]
	}
	if v, ok := s["default"]; ok {
		return v
	}
	if alts := list(s["oneOf"]); len(alts) > 0 {
		return b.example(obj(alts[0]), name, depth, seen)
	}
	if enum := list(s["enum"]); len(enum) > 0 {
		return enum[0]
	}
	t := str(s["type"])
	if ts := list(s["type"]); len(ts) > 0 {
		t = str(ts[0])
	}
	switch t {
	case "object", "":
		props := obj(s["properties"])
		if len(props) == 0 {
			if t == "" {
				return anyExample(name)
			}
			return jsonObject{}
		}
		out := jsonObject{}
		for n, ps := range props {
			out[n] = b.example(obj(ps), n, depth+1, seen)
		}
		return out
	case "array":
		return []any{b.example(obj(s["items"]), strings.TrimSuffix(name, "s"), depth+1, seen)}
	case "integer", "number":
		if m, ok := s["minimum"].(float64); ok && m > 0 {
			return m
		}
		return numberExample(name)
	case "boolean":
		return true
	}
	return stringExample(name, str(s["format"]))
}

// anyExample is an example of "any JSON value", by what the member holds.
func anyExample(name string) any {
	switch name {
	case "data":
		return jsonObject{"total": 42}
	case "metadata":
		return jsonObject{"correlation_id": "c-7f3a"}
	case "value":
		return jsonObject{"enabled": true}
	}
	return jsonObject{}
}

func numberExample(name string) any {
	switch {
	case strings.HasSuffix(name, "_ms"):
		return 30000
	case name == "limit":
		return 50
	}
	return 1
}

func stringExample(name, format string) string {
	switch format {
	case "date-time":
		return "2025-01-31T09:30:00Z"
	case "date":
		return "2025-01-31"
	case "uuid":
		return "0b8a5c1e-4d2f-4e6a-9f1b-3c7d2e8a6b41"
	case "email":
		return "ada@example.com"
	case "uri", "uri-reference":
		return "/api/v1/…"
	}
	switch name {
	case "email":
		return "ada@example.com"
	case "password":
		return "correct horse battery staple"
	case "slug", "tenant", "team":
		return "acme"
	case "name":
		return "payments"
	case "owner", "candidate", "member":
		return "worker-1"
	case "stream":
		return "order-1001"
	case "category":
		return "order"
	case "key":
		return "flags/checkout"
	case "type":
		return "OrderPlaced"
	case "token":
		return "…"
	case "condition":
		return `label(r.obj, "env") == "prod"`
	}
	return "…"
}

func compactJSON(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return s
	}
	return string(b)
}

// slug makes an id for a fragment link: letters and digits, the rest "-".
func slug(s string) string {
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			sb.WriteRune(r)
			dash = false
		} else if !dash && sb.Len() > 0 {
			sb.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(sb.String(), "-")
}

func obj(v any) jsonObject {
	if o, ok := v.(jsonObject); ok {
		return o
	}
	return nil
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
