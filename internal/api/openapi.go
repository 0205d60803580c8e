package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/eventstore"
	"switchboard/internal/lockd"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/internal/web"
)

// The OpenAPI document is generated from the route table (routes.go). A
// route's Request and Response types become JSON Schemas by reflection,
// following encoding/json (answers) and the strict decoder (requests): a
// field without omitempty or omitzero is always present, a pointer without
// omitempty may be null, unknown members are refused. What reflection
// cannot know lives in the small tables below: typeSchemas (types with a
// JSON form of their own), fieldDocs (enums, ranges, request fields with a
// default) and opDocs (a route's further answers and headers). The
// document must pass the linter and match real traffic: see
// openapi_lint_test.go and openapi_conformance_test.go.

var pathParamRE = regexp.MustCompile(`:([A-Za-z_]+)`)

// openAPIPath turns echo's /a/:b into OpenAPI's /a/{b}.
func openAPIPath(p string) string { return pathParamRE.ReplaceAllString(p, "{$1}") }

type object = map[string]any

const schemaRef = "#/components/schemas/"

// typeSchema is the schema of a type that reflection would get wrong. A
// named one becomes a component.
type typeSchema struct {
	name   string
	schema object
}

// typeSchemas are the types with a JSON form of their own.
var typeSchemas = map[reflect.Type]typeSchema{
	reflect.TypeFor[time.Time]():       {schema: object{"type": "string", "format": "date-time"}},
	reflect.TypeFor[uuid.UUID]():       {schema: object{"type": "string", "format": "uuid"}},
	reflect.TypeFor[json.RawMessage](): {schema: object{"description": "Any JSON value."}},
	// MarshalJSON/UnmarshalJSON: a version is a number, the rest are strings.
	reflect.TypeFor[eventstore.ExpectedVersion](): {name: "ExpectedVersion", schema: object{
		"description": `The condition of an append: "any" (the default, also when absent or null), "no_stream" (the stream has no events), "stream_exists" (it has at least one), or the version (0 or more) the stream's last event must have.`,
		"oneOf": []object{
			{"type": "string", "enum": []string{"any", "no_stream", "stream_exists"}},
			{"type": "integer", "format": "int64", "minimum": 0},
		}}},
	reflect.TypeFor[tenancy.Role]():         {name: "Role", schema: object{"type": "string", "enum": tenancy.Roles, "description": "A member's role, from most to least powerful (editor and operator are peers)."}},
	reflect.TypeFor[tenancy.MemberStatus](): {name: "MemberStatus", schema: object{"type": "string", "enum": []tenancy.MemberStatus{tenancy.Active, tenancy.Invited}}},
}

// componentNames name components whose Go names read badly in a document.
var componentNames = map[reflect.Type]string{
	reflect.TypeFor[web.Problem]():        "Problem",
	reflect.TypeFor[web.StatusResponse](): "Status",
}

// fieldDoc refines one field of a struct.
type fieldDoc struct {
	extra    object // merged into the generated schema
	optional bool   // a request may leave it out: the server has a default
	required bool   // required and not null although it is a pointer
}

func intRange(lo, hi int64) object {
	return object{"type": "integer", "format": "int64", "minimum": lo, "maximum": hi}
}

func intMin(lo int64) object { return object{"type": "integer", "format": "int64", "minimum": lo} }

func stringEnum(values ...string) object { return object{"type": "string", "enum": values} }

var (
	lockName    = object{"type": "string", "minLength": 1, "description": "1 to 256 bytes of printable UTF-8"}
	lockTTL     = intRange(lockd.MinTTL.Milliseconds(), lockd.MaxTTL.Milliseconds())
	lockWait    = intRange(0, lockd.MaxWait.Milliseconds())
	policyRules = map[string]fieldDoc{
		"resource":  {extra: stringEnum(append([]string{"*"}, rbac.Kinds...)...)},
		"action":    {extra: stringEnum(append([]string{"*"}, rbac.Actions...)...)},
		"effect":    {extra: stringEnum("allow", "deny")},
		"condition": {extra: object{"type": "string", "maxLength": 500, "description": "An expression over r.sub (Role, Teams) and r.obj (Kind, Name, Team, Labels), e.g. label(r.obj, \"env\") == \"prod\"; empty: always"}},
	}
)

// fieldDocs are what the server enforces or defaults that the Go types do
// not say, by type and JSON name.
var fieldDocs = map[reflect.Type]map[string]fieldDoc{
	reflect.TypeFor[web.Problem](): {
		"type":   {extra: object{"type": "string", "format": "uri", "description": "urn:switchboard:problem:<code>"}},
		"status": {extra: intRange(100, 599)},
		"code": {extra: object{"type": "string", "description": "Stable and machine-readable, one per status: " + strings.Join([]string{
			problem.CodeInvalid, problem.CodeUnauthenticated, problem.CodeForbidden, problem.CodeNotFound, "method_not_allowed",
			problem.CodeConflict, problem.CodePrecondition, problem.CodeTooLarge, problem.CodeUnsupported, problem.CodeRateLimited,
			problem.CodeInternal, problem.CodeUnavailable}, ", ")}},
		"instance": {extra: object{"type": "string", "description": "The request's path"}},
		"errors":   {extra: object{"type": "object", "additionalProperties": object{"type": "string"}, "description": "What is wrong with each bad field, by field name"}},
	},
	reflect.TypeFor[SignupRequest](): {
		"email":    {extra: object{"type": "string", "format": "email"}},
		"password": {extra: object{"type": "string", "minLength": 8, "maxLength": 256}},
	},
	reflect.TypeFor[CreateTokenRequest]():  {"expires_at": {extra: object{"type": "string", "format": "date-time"}}},
	reflect.TypeFor[CreatePolicyRequest](): policyRules,
	reflect.TypeFor[rbac.Rule]():           policyRules,
	reflect.TypeFor[rbac.Request](): {
		"action": {extra: stringEnum(rbac.Actions...)},
		"kind":   {extra: stringEnum(rbac.Kinds...)},
	},
	reflect.TypeFor[AppendRequest](): {"events": {extra: object{"minItems": 1}}},
	reflect.TypeFor[EventInput](): {
		"type": {extra: object{"type": "string", "minLength": 1, "description": "1 to 200 bytes, no control characters"}},
		"id":   {extra: object{"type": "string", "format": "uuid", "description": "Set it to make a retry of the append idempotent; the server makes one up otherwise"}},
	},
	reflect.TypeFor[SnapshotRequest](): {"version": {extra: intMin(0)}},
	reflect.TypeFor[eventstore.StreamMetadata](): {
		"max_count":       {extra: intMin(1)},
		"max_age":         {extra: object{"type": "integer", "format": "int64", "minimum": 1, "description": "seconds"}},
		"truncate_before": {extra: intMin(0)},
	},
	reflect.TypeFor[CreateSubscriptionRequest](): {
		"category":      {optional: true},
		"from_position": {optional: true, extra: intMin(0)},
		"member_ttl_ms": {extra: intRange(0, int64(24*time.Hour/time.Millisecond))},
	},
	reflect.TypeFor[AckRequest](): {
		"position":   {required: true, extra: intMin(0)},
		"generation": {extra: intMin(0)},
	},
	reflect.TypeFor[AcquireLockRequest]():     {"owner": {extra: lockName}, "ttl_ms": {extra: lockTTL}, "wait_ms": {extra: lockWait}},
	reflect.TypeFor[RenewLockRequest]():       {"ttl_ms": {extra: lockTTL}},
	reflect.TypeFor[CampaignRequest]():        {"candidate": {extra: lockName}, "ttl_ms": {extra: lockTTL}, "wait_ms": {extra: lockWait}},
	reflect.TypeFor[RenewLeadershipRequest](): {"ttl_ms": {extra: lockTTL}},
	reflect.TypeFor[VerifyLockRequest]():      {"fencing_token": {extra: object{"type": "integer", "minimum": 1}}},
	reflect.TypeFor[LockEventMessage]():       {"type": {extra: stringEnum("acquired", "renewed", "released", "expired")}},
	reflect.TypeFor[ElectionChangeMessage]():  {"type": {extra: stringEnum("acquired", "renewed", "released", "expired")}},
	reflect.TypeFor[KVEventMessage]():         {"type": {extra: stringEnum("put", "deleted")}},
	reflect.TypeFor[LoginResponse]():          {"token_type": {extra: stringEnum("Bearer")}},
}

// schemaGen builds JSON Schemas for Go types, sharing named structs through
// components.
type schemaGen struct {
	components object
	owners     map[string]reflect.Type // which type each component is
}

// ref returns a reference to t's component name, built once; another type
// of the same name gets a numbered name.
func (g *schemaGen) ref(t reflect.Type, name string, build func() object) object {
	base := name
	for n := 2; g.owners[name] != nil && g.owners[name] != t; n++ {
		name = base + strconv.Itoa(n)
	}
	if g.owners[name] == nil {
		g.owners[name] = t
		g.components[name] = object{} // breaks cycles
		g.components[name] = build()
	}
	return object{"$ref": schemaRef + name}
}

func (g *schemaGen) schema(t reflect.Type) object {
	if t.Kind() == reflect.Pointer {
		return g.schema(t.Elem())
	}
	if ts, ok := typeSchemas[t]; ok {
		if ts.name == "" {
			return clone(ts.schema)
		}
		return g.ref(t, ts.name, func() object { return clone(ts.schema) })
	}
	switch t.Kind() {
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return object{"type": "integer", "format": "int32"}
	case reflect.Int, reflect.Int64:
		return object{"type": "integer", "format": "int64"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	case reflect.Slice, reflect.Array:
		return object{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		return g.ref(t, schemaName(t), func() object {
			props, required := object{}, []string{}
			g.fields(t, props, &required)
			s := object{"type": "object", "properties": props, "additionalProperties": false}
			if len(required) > 0 {
				s["required"] = required
			}
			return s
		})
	}
	return object{}
}

// fields adds the JSON members of struct t (embedded structs inlined, as
// encoding/json does) to props.
func (g *schemaGen) fields(t reflect.Type, props object, required *[]string) {
	docs := fieldDocs[t]
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
		d := docs[name]
		s := g.schema(f.Type)
		for k, v := range d.extra {
			s[k] = v
		}
		omitted := mayBeOmitted(f.Type, opts)
		if f.Type.Kind() == reflect.Pointer && !omitted && !d.required {
			s = nullable(s)
		}
		props[name] = s
		if !omitted && !d.optional {
			*required = append(*required, name)
		}
	}
}

// mayBeOmitted reports whether encoding/json leaves a field with these tag
// options out of some answers: omitempty never omits a struct or a
// non-empty array (a UUID is one).
func mayBeOmitted(t reflect.Type, opts string) bool {
	has := func(o string) bool { return slices.Contains(strings.Split(opts, ","), o) }
	if has("omitzero") {
		return true
	}
	if !has("omitempty") {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		return false
	case reflect.Array:
		return t.Len() == 0
	}
	return true
}

// nullable lets s also be null.
func nullable(s object) object {
	if typ, ok := s["type"].(string); ok {
		s["type"] = []string{typ, "null"}
		return s
	}
	return object{"anyOf": []object{s, {"type": "null"}}}
}

func clone(s object) object {
	out := make(object, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// schemaName names t's component: List[tenancy.Team] is ListTeam,
// tenancy.Team is TenancyTeam, api.LockInfo is LockInfo.
func schemaName(t reflect.Type) string {
	if n, ok := componentNames[t]; ok {
		return n
	}
	n := t.Name()
	if i := strings.IndexByte(n, '['); i >= 0 {
		inner := n[i+1 : len(n)-1]
		if j := strings.LastIndexByte(inner, '.'); j >= 0 {
			inner = inner[j+1:]
		}
		n = n[:i] + inner
	}
	n = strings.ToUpper(n[:1]) + n[1:]
	if p := t.PkgPath(); p != "" && !strings.HasSuffix(p, "/api") {
		if j := strings.LastIndexByte(p, '/'); j >= 0 {
			p = p[j+1:]
		}
		n = strings.ToUpper(p[:1]) + p[1:] + n
	}
	return n
}

// opDoc is what the route table does not say of one route.
type opDoc struct {
	content object            // the success answer's content when it is not JSON of Response
	request object            // the request body's content when it is not JSON of Request
	headers map[string]object // headers of the success answer
	also    map[int]object    // further answers
	params  []object          // further parameters
}

func header(desc string) object {
	return object{"description": desc, "schema": object{"type": "string"}}
}

var (
	etagHeader     = map[string]object{"ETag": header(`The version, for If-Match: "<version>"`)}
	revisionHeader = map[string]object{"ETag": header(`The key's revision, for If-Match: "<revision>"`)}
	ifNoneMatch    = func(desc string) object {
		return object{"name": "If-None-Match", "in": "header", "schema": object{"type": "string"}, "description": desc}
	}
)

// yamlFile is the content of a catalog file.
var yamlFile = object{"application/yaml": object{"schema": object{"type": "string", "description": "A multi-document YAML catalog (Backstage's catalog-info.yaml)"}}}

// opDocs are keyed by method and echo path.
var opDocs = map[string]opDoc{
	"POST " + v1 + "/tenants/:tenant/catalog/import": {request: yamlFile},
	"POST " + v1 + "/tenants/:tenant/dlq/:ref/replays": {headers: map[string]object{"Location": header("The replay's URL")},
		also: map[int]object{http.StatusOK: {"description": "A dry run: the plan only, nothing replayed",
			"content": object{"application/json": object{"schema": object{"$ref": schemaRef + "ReplayResponse"}}}}}},
	"GET " + v1 + "/tenants/:tenant/catalog/export": {content: yamlFile},
	"POST " + OTLPTracesPath: {request: otlpContent("An OTLP ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1); Content-Encoding gzip is taken"),
		content: otlpContent("An OTLP ExportTraceServiceResponse: partial_success names how many spans were rejected and why"),
		also: map[int]object{
			http.StatusBadRequest:            otlpStatusResponse("The body is not an OTLP request"),
			http.StatusRequestEntityTooLarge: otlpStatusResponse("The body is over the limit, as sent or decompressed"),
			http.StatusUnsupportedMediaType:  otlpStatusResponse("The Content-Type or Content-Encoding is not taken"),
			http.StatusTooManyRequests:       otlpStatusResponse("Slow down: retry after Retry-After seconds", "Retry-After", "seconds"),
			http.StatusServiceUnavailable:    otlpStatusResponse("The spans could not be stored now: retry", "Retry-After", "seconds"),
		}},
	"GET " + v1 + "/openapi.json": {content: object{"application/json": object{"schema": object{"type": "object", "description": "An OpenAPI 3.1 document"}}}},
	"GET " + v1 + "/docs":         {headers: map[string]object{"Location": header("/docs, the page of this API in the console")}},
	"GET /readyz": {also: map[int]object{http.StatusServiceUnavailable: {"description": "A dependency (the database) is not ready",
		"content": object{"application/json": object{"schema": object{"$ref": schemaRef + "Status"}}}}}},
	"POST " + v1 + "/tenants/:tenant/teams": {headers: map[string]object{
		"ETag":     header(`The version, for If-Match: "<version>" (not on a replayed answer)`),
		"Location": header("The new team's URL (not on a replayed answer)")}},
	"GET " + v1 + "/tenants/:tenant/teams/:team":                   {headers: etagHeader},
	"PATCH " + v1 + "/tenants/:tenant/teams/:team":                 {headers: etagHeader},
	"POST " + v1 + "/tenants/:tenant/teams/:team/members":          {headers: etagHeader},
	"DELETE " + v1 + "/tenants/:tenant/teams/:team/members/:email": {headers: etagHeader},
	"PUT " + v1 + "/tenants/:tenant/subscriptions/:name": {also: map[int]object{http.StatusOK: {
		"description": "An identical subscription already exists", "content": "same"}}},
	"GET " + v1 + "/tenants/:tenant/kv/:key": {headers: revisionHeader,
		params: []object{ifNoneMatch(`"<revision>" (or *): 304 when the key is still at it`)},
		also:   map[int]object{http.StatusNotModified: {"description": "The key is still at the revision of If-None-Match", "headers": revisionHeader}}},
	"PUT " + v1 + "/tenants/:tenant/kv/:key": {headers: revisionHeader,
		params: []object{ifNoneMatch("*: write only if the key does not exist (412 otherwise)")}},
}

// tagDescriptions describe the route table's tags; a tag without one fails
// the lint test.
var tagDescriptions = map[string]string{
	"operations":    "Liveness, readiness and this document",
	"auth":          "Accounts: sign up, confirm an address, sign in, who am I",
	"tenants":       "Organisations",
	"teams":         "Groups of a tenant's members that own catalog entities",
	"members":       "A tenant's members and pending invitations",
	"tokens":        "Revocable API tokens, scoped to one tenant and never above their creator's current role",
	"audit":         "Who changed what, when and from where",
	"policies":      "RBAC rules with optional ABAC conditions, per tenant",
	"events":        "The event store: streams, appends at an expected version, the tenant's log, snapshots, live subscriptions",
	"subscriptions": "Named subscriptions with server-kept checkpoints and consumer groups",
	"dlq":           "Dead-letter queues and topics: captured messages, browsing, groups, replays and discards",
	"catalog":       "Services, brokers, queues, topics and sagas, the relations between them, and the topology they make",
	"locks":         "Leased locks with fencing tokens, on the Raft group",
	"elections":     "Leader elections with terms, on the Raft group",
	"kv":            "A compare-and-set key-value space, on the Raft group",
	"cluster":       "The Raft group itself (platform operators only)",
	"tracing":       "OpenTelemetry traces: OTLP ingest, search, a trace by id, the services and operations seen, and a live tail",
}

// pathParamSchema is the schema of path parameter name in echo path p.
func pathParamSchema(p, name string) object {
	slug := object{"type": "string", "pattern": `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`}
	id := object{"type": "string", "format": "uuid"}
	switch {
	case name == "tenant" || name == "team":
		return slug
	case name == "id" && strings.Contains(p, "/messages/"):
		return object{"type": "integer", "minimum": 1}
	case name == "user", name == "id" && !strings.Contains(p, "/cluster/"):
		return id
	case name == "email":
		return object{"type": "string", "format": "email"}
	}
	return object{"type": "string", "minLength": 1, "description": `percent-encode "/" as %2F`}
}

func problemResponse(desc string, hdrs ...string) object {
	r := object{"description": desc, "content": object{"application/problem+json": object{"schema": object{"$ref": schemaRef + "Problem"}}}}
	if len(hdrs) > 0 {
		h := object{}
		for i := 0; i+1 < len(hdrs); i += 2 {
			h[hdrs[i]] = header(hdrs[i+1])
		}
		r["headers"] = h
	}
	return r
}

// operationID is unique per method and path: get_api_v1_tenants_tenant_teams.
func operationID(method, path string) string {
	return strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_").Replace(path)
}

// buildOpenAPI returns the OpenAPI 3.1 document of routes.
func buildOpenAPI(routes []route) object {
	g := &schemaGen{components: object{}, owners: map[string]reflect.Type{}}
	g.schema(reflect.TypeFor[web.Problem]())
	g.schema(reflect.TypeFor[web.StatusResponse]())
	paths := object{}
	var tags []object
	tagSeen := map[string]bool{}
	for _, r := range routes {
		if !tagSeen[r.Tag] {
			tagSeen[r.Tag] = true
			tag := object{"name": r.Tag}
			if d := tagDescriptions[r.Tag]; d != "" {
				tag["description"] = d
			}
			tags = append(tags, tag)
		}
		p := openAPIPath(r.Path)
		item, _ := paths[p].(object)
		if item == nil {
			item = object{}
			paths[p] = item
		}
		op := g.operation(r, p)
		item[strings.ToLower(r.Method)] = op
		if r.Method == http.MethodGet && r.Auth != authTenantStream {
			item["head"] = headOf(op, r, p)
		}
	}
	return object{
		"openapi": "3.1.0",
		"info": object{"title": "Switchboard API", "version": "1.0.0",
			"description": "The control plane for services that talk through queues, topics, sagas, locks and event streams. " +
				"Errors are RFC 9457 problem details (application/problem+json) with a stable `code`; lists take `limit` and `cursor` and return `items` and `next_cursor`. " +
				"Every GET route but the WebSocket streams also answers HEAD."},
		"servers": []object{{"url": "/", "description": "This server: paths are relative to the address this document was fetched from"}},
		"tags":    tags,
		"paths":   paths,
		"components": object{
			"schemas": g.components,
			"securitySchemes": object{
				"bearer": object{"type": "http", "scheme": "bearer",
					"description": "An access token from POST /api/v1/auth/login, or an API token (sb_...)"},
				"session": object{"type": "apiKey", "in": "cookie", "name": "sb_session",
					"description": "The browser's session cookie; WebSocket streams accept it from pages of the server's own origin"},
			},
		},
	}
}

// operation documents route r at OpenAPI path p.
func (g *schemaGen) operation(r route, p string) object {
	doc := opDocs[r.Method+" "+r.Path]
	stream := r.Auth == authTenantStream
	op := object{"summary": r.Summary, "tags": []string{r.Tag}, "operationId": operationID(r.Method, p)}
	var params []object
	for _, m := range pathParamRE.FindAllStringSubmatch(r.Path, -1) {
		params = append(params, object{"name": m[1], "in": "path", "required": true, "schema": pathParamSchema(r.Path, m[1])})
	}
	pageLimit := object{"type": "integer", "minimum": 1, "maximum": maxLimit, "default": defaultLimit}
	if r.Paged {
		params = append(params,
			object{"name": "limit", "in": "query", "schema": pageLimit, "description": "at most this many items"},
			object{"name": "cursor", "in": "query", "schema": object{"type": "string"}, "description": "next_cursor of the previous page"})
	}
	for _, q := range r.Query {
		s := object{"type": q.Type}
		switch {
		case q.Name == "limit":
			s = pageLimit
		case q.Name == "direction":
			s = object{"type": "string", "enum": []string{"forward", "backward"}, "default": "forward"}
		case q.Type == "integer":
			s["minimum"] = 0
		}
		params = append(params, object{"name": q.Name, "in": "query", "schema": s, "description": q.Description})
	}
	if stream {
		params = append(params, object{"name": "resume_after", "in": "query", "schema": object{"type": "integer", "minimum": 0},
			"description": "the seq of the last message received before a reconnect: the stream picks up after it when it can (ready.data.resumed)"})
	}
	if r.IfMatch {
		params = append(params, object{"name": "If-Match", "in": "header", "schema": object{"type": "string"}, "description": `the ETag of the version you read ("<n>"); 412 when it moved on`})
	}
	if r.Idempotent {
		params = append(params, object{"name": "Idempotency-Key", "in": "header", "schema": object{"type": "string", "minLength": 1, "maxLength": 255, "pattern": `^[\x21-\x7e]+$`},
			"description": "retry-safe creation: a repeat with the same key and body returns the first answer (Idempotency-Replayed: true); a day's memory"})
	}
	params = append(params, doc.params...)
	if len(params) > 0 {
		op["parameters"] = params
	}
	if doc.request != nil {
		op["requestBody"] = object{"required": !r.OptionalBody, "content": doc.request}
	} else if r.Request != nil {
		op["requestBody"] = object{"required": !r.OptionalBody, "content": object{"application/json": object{"schema": g.schema(reflect.TypeOf(r.Request))}}}
	}

	responses := object{}
	ok := object{"description": http.StatusText(r.Status)}
	var okContent object
	switch {
	case stream:
		ok = object{"description": "Switching Protocols: the connection speaks WebSocket. Every message is a JSON object {type, data, seq}: " +
			"first \"ready\" (data {resumed}), then the stream's messages (data below, seq growing), \"ping\" (answer {\"type\":\"pong\"}), " +
			"and \"error\" (data a problem document) before the server closes a failed stream. Close codes: 1000 ended, 1001 shutting down, " +
			"4401 credential no longer valid, 4403 no longer allowed, 4408 too slow, 1011 failed.",
			"headers": object{"Upgrade": header("websocket"), "Connection": header("Upgrade"), "Sec-WebSocket-Accept": header("The handshake's answer (RFC 6455)")}}
		if r.Response != nil {
			ok["x-stream-message-data"] = g.schema(reflect.TypeOf(r.Response))
		}
	case doc.content != nil:
		okContent = doc.content
	case r.Response != nil:
		okContent = object{"application/json": object{"schema": g.schema(reflect.TypeOf(r.Response))}}
	}
	if okContent != nil {
		ok["content"] = okContent
	}
	hdrs := object{}
	for k, v := range doc.headers {
		hdrs[k] = v
	}
	if r.Idempotent {
		hdrs["Idempotency-Replayed"] = header("true when this is the stored answer of an earlier request with the same Idempotency-Key")
	}
	if len(hdrs) > 0 {
		ok["headers"] = hdrs
	}
	responses[strconv.Itoa(r.Status)] = ok
	for status, resp := range doc.also {
		resp = clone(resp)
		if resp["content"] == "same" {
			resp["content"] = okContent
		}
		responses[strconv.Itoa(status)] = resp
	}

	responses["default"] = problemResponse("An error, as RFC 9457 problem details with a stable code")
	if r.Request != nil || len(params) > 0 {
		responses["400"] = problemResponse("The request is invalid: errors names each bad field")
	}
	if r.Request != nil {
		responses["413"] = problemResponse("The request body is too large")
		responses["415"] = problemResponse("The request body is not JSON")
	}
	switch r.Auth {
	case authNone:
		op["security"] = []object{}
	case authTenantStream:
		op["security"] = []object{{"bearer": []string{}}, {"session": []string{}}}
	default:
		op["security"] = []object{{"bearer": []string{}}}
	}
	if r.Auth != authNone {
		responses["401"] = problemResponse("Missing, expired, revoked or invalid credentials", "WWW-Authenticate", `Bearer realm="switchboard"`)
	}
	if r.Auth == authIngest {
		responses["403"] = otlpStatusResponse("The token's role may not ingest spans")
		responses["401"] = otlpStatusResponse("Missing, revoked or invalid API token")
	}
	if r.Auth == authTenant || r.Auth == authTenantStream {
		responses["403"] = problemResponse("Your role may not do this")
		responses["404"] = problemResponse("No such object, or a tenant you cannot see")
	}
	if r.IfMatch {
		responses["412"] = problemResponse("If-Match (or If-None-Match) does not hold: the object moved on")
	}
	if r.Idempotent {
		responses["409"] = problemResponse("A conflict; also an Idempotency-Key reused with another request")
	}
	if needsLeader(r) {
		responses["503"] = problemResponse("No leader is known yet, or this node cannot reach it: retry", "Retry-After", "seconds")
	}
	op["responses"] = responses
	return op
}

// headOf documents HEAD of a GET operation: the same answers, headers only.
func headOf(get object, r route, p string) object {
	op := clone(get)
	op["operationId"] = operationID(http.MethodHead, p)
	op["summary"] = "Headers only: " + r.Summary
	responses := object{}
	for status, resp := range get["responses"].(object) {
		resp := clone(resp.(object))
		delete(resp, "content")
		responses[status] = resp
	}
	op["responses"] = responses
	return op
}

// docCache holds the rendered document; routes never change after start.
type docCache struct {
	once sync.Once
	json []byte
	err  error
}

func (a *API) docs() *docCache {
	a.docOnce.once.Do(func() {
		a.docOnce.json, a.docOnce.err = json.MarshalIndent(buildOpenAPI(a.routes()), "", "  ")
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

// docsPage sends readers to the console's documentation page, which is
// rendered from this document.
func (a *API) docsPage(c echo.Context) error {
	return c.Redirect(http.StatusMovedPermanently, "/docs")
}
