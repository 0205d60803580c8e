package api_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"switchboard/internal/api"
	"switchboard/internal/tenancy"
)

// badCase is a request that must be refused with a problem+json answer and
// write nothing.
type badCase struct {
	name    string
	as      string // the caller: a key of the fixture's credentials, "" for none
	method  string
	path    string
	body    any // nil, a string sent as is, or a value sent as JSON
	headers []string
	status  int
	code    string
	field   string // a key errors must hold, "" when not a field error
}

// unique numbers the emails and slugs of bodies that should be refused, so
// that one wrongly accepted does not make the next fail for another reason.
var unique int

// signupWith returns a valid signup body, with a fresh email and tenant slug,
// changed by edit.
func signupWith(edit func(m, tenant map[string]any)) map[string]any {
	unique++
	tenant := map[string]any{"slug": fmt.Sprintf("newco-%d", unique), "name": "New Co"}
	m := map[string]any{"email": fmt.Sprintf("new-%d@example.com", unique), "password": "correct horse battery", "name": "New Person", "tenant": tenant}
	edit(m, tenant)
	return m
}

// teamWith returns a team body with a fresh slug and the given name.
func teamWith(name string) map[string]string {
	unique++
	return map[string]string{"slug": fmt.Sprintf("fresh-%d", unique), "name": name}
}

func with(key string, v any) func(m, _ map[string]any) {
	return func(m, _ map[string]any) { m[key] = v }
}

func withTenant(key string, v any) func(_, t map[string]any) {
	return func(_, t map[string]any) { t[key] = v }
}

// A body a little over each limit: MaxBodyBytes for decoding, 2 MiB for the
// server as a whole.
var (
	overDecodeLimit = `{"slug":"big","name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	overServerLimit = `{"slug":"big","name":"` + strings.Repeat("a", 2<<20) + `"}`
)

// Slugs and names that must be refused wherever a slug or a name is asked for.
var (
	badSlugs = map[string]string{
		"uppercase":       "Core",
		"leading hyphen":  "-core",
		"trailing hyphen": "core-",
		"64 characters":   strings.Repeat("a", 64),
		"accented":        "cöre",
		"cyrillic":        "\u0441ore",
		"space":           "co re",
		"underscore":      "co_re",
		"slash":           "co/re",
		"empty":           "",
	}
	badNames = map[string]string{
		"empty":          "",
		"blank":          "   ",
		"bell":           "Bell\a",
		"newline":        "Line\nBreak",
		"tab":            "Tab\there",
		"escape":         "Red\x1b[31m",
		"delete":         "Del\x7f",
		"NUL":            "Nul\x00",
		"C1 next line":   "Next\u0085Line",
		"C1 CSI":         "Csi\u009b31m",
		"201 characters": strings.Repeat("n", 201),
	}
)

func TestBadInput_RefusedWithProblemAndNothingWritten(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	owner := s.signup("owner@acme.test", "acme")
	cred := map[string]string{
		"":       "",
		"owner":  owner,
		"admin":  s.member(owner, "acme", "admin@acme.test", tenancy.Admin),
		"editor": s.member(owner, "acme", "editor@acme.test", tenancy.Editor),
		"viewer": s.member(owner, "acme", "viewer@acme.test", tenancy.Viewer),
	}
	for _, role := range []string{"owner", "admin"} {
		var tok api.CreateTokenResponse
		s.must(201, "POST", "/api/v1/tenants/acme/tokens", owner, map[string]string{"name": role + " bot", "role": role}).json(t, &tok)
		cred["token:"+role] = tok.Token
	}
	s.must(201, "POST", "/api/v1/tenants/acme/teams", owner, map[string]string{"slug": "core", "name": "Core"})
	var members api.List[tenancy.Member]
	s.must(200, "GET", "/api/v1/tenants/acme/members", owner, nil).json(t, &members)
	id := map[string]string{}
	for _, m := range members.Items {
		id[strings.TrimSuffix(m.Email, "@acme.test")] = m.UserID.String()
	}

	const (
		signup   = "/api/v1/auth/signup"
		login    = "/api/v1/auth/login"
		acme     = "/api/v1/tenants/acme"
		teams    = acme + "/teams"
		core     = teams + "/core"
		tokens   = acme + "/tokens"
		policies = acme + "/policies"
		memberP  = acme + "/members"
	)
	validTeam := map[string]string{"slug": "fresh", "name": "Fresh"}
	rule := func(k, v string) map[string]string {
		r := map[string]string{"role": "viewer", "resource": "team", "action": "read", "effect": "deny"}
		r[k] = v
		return r
	}
	missing := uuid.NewString()

	cases := []badCase{
		// Decoding.
		{"malformed JSON", "owner", "POST", teams, `{"slug": "fresh",`, nil, 400, "invalid", ""},
		{"trailing comma", "owner", "POST", teams, `{"slug": "fresh", "name": "Fresh",}`, nil, 400, "invalid", ""},
		{"form encoding sent as JSON", "owner", "POST", teams, `slug=fresh&name=Fresh`, nil, 400, "invalid", ""},
		{"wrong type: slug 5", "owner", "POST", teams, `{"slug": 5, "name": "Fresh"}`, nil, 400, "invalid", "slug"},
		{"wrong type: name object", "owner", "POST", teams, `{"slug": "fresh", "name": {}}`, nil, 400, "invalid", "name"},
		{"wrong type: array body", "owner", "POST", teams, `[]`, nil, 400, "invalid", ""},
		{"wrong type: string body", "owner", "POST", teams, `"fresh"`, nil, 400, "invalid", ""},
		{"null body", "owner", "POST", teams, `null`, nil, 400, "invalid", "slug"},
		{"unknown field", "owner", "POST", teams, `{"slug": "fresh", "name": "Fresh", "owner": "me"}`, nil, 400, "invalid", "owner"},
		{"empty body", "owner", "POST", teams, ``, nil, 400, "invalid", ""},
		{"blank body", "owner", "POST", teams, " \n\t ", nil, 400, "invalid", ""},
		{"no body, no Content-Type", "owner", "POST", teams, nil, nil, 400, "invalid", ""},
		{"two JSON values", "owner", "POST", teams, `{"slug": "fresh", "name": "Fresh"} {"slug": "other", "name": "Other"}`, nil, 400, "invalid", ""},
		{"trailing garbage", "owner", "POST", teams, `{"slug": "fresh", "name": "Fresh"} x`, nil, 400, "invalid", ""},
		{"trailing brace", "owner", "POST", teams, `{"slug": "fresh", "name": "Fresh"}}`, nil, 400, "invalid", ""},
		{"over MaxBodyBytes", "owner", "POST", teams, overDecodeLimit, nil, 413, "too_large", ""},
		{"over 2 MiB", "owner", "POST", teams, overServerLimit, nil, 413, "too_large", ""},
		{"signup over MaxBodyBytes", "", "POST", signup, overDecodeLimit, nil, 413, "too_large", ""},
		{"text/plain", "owner", "POST", teams, validTeam, []string{"Content-Type", "text/plain"}, 415, "unsupported_media", ""},
		{"form Content-Type", "owner", "POST", teams, validTeam, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media", ""},
		{"XML Content-Type", "owner", "POST", teams, validTeam, []string{"Content-Type", "application/xml"}, 415, "unsupported_media", ""},
		{"malformed Content-Type", "owner", "POST", teams, validTeam, []string{"Content-Type", "application/json; charset"}, 415, "unsupported_media", ""},
		{"signup text/plain", "", "POST", signup, signupWith(func(_, _ map[string]any) {}), []string{"Content-Type", "text/plain"}, 415, "unsupported_media", ""},
		{"wrong method", "owner", "PUT", teams, validTeam, nil, 405, "method_not_allowed", ""},

		// Sign-up.
		{"signup: malformed", "", "POST", signup, `{"email":`, nil, 400, "invalid", ""},
		{"signup: email is a number", "", "POST", signup, signupWith(with("email", 5)), nil, 400, "invalid", "email"},
		{"signup: tenant slug is a number", "", "POST", signup, signupWith(withTenant("slug", 5)), nil, 400, "invalid", "tenant.slug"},
		{"signup: tenant is a string", "", "POST", signup, signupWith(with("tenant", "newco")), nil, 400, "invalid", "tenant"},
		{"signup: unknown field role", "", "POST", signup, signupWith(with("role", "owner")), nil, 400, "invalid", "role"},
		{"signup: unknown field in tenant", "", "POST", signup, signupWith(withTenant("owner", "me")), nil, 400, "invalid", "owner"},
		{"signup: empty tenant", "", "POST", signup, signupWith(with("tenant", map[string]any{})), nil, 400, "invalid", "tenant.slug"},
		{"signup: short password", "", "POST", signup, signupWith(with("password", "short12")), nil, 400, "invalid", "password"},
		{"signup: empty password", "", "POST", signup, signupWith(with("password", "")), nil, 400, "invalid", "password"},
		{"signup: 257-byte password", "", "POST", signup, signupWith(with("password", strings.Repeat("p", 257))), nil, 400, "invalid", "password"},
		{"signup: duplicate tenant slug", "", "POST", signup, signupWith(withTenant("slug", "acme")), nil, 409, "conflict", ""},

		// Log-in.
		{"login: malformed", "", "POST", login, `{"email": "owner@acme.test", "password": `, nil, 400, "invalid", ""},
		{"login: unknown field", "", "POST", login, map[string]string{"email": "owner@acme.test", "password": "correct horse battery", "otp": "1"}, nil, 400, "invalid", "otp"},
		{"login: email is a number", "", "POST", login, map[string]any{"email": 5, "password": "correct horse battery"}, nil, 400, "invalid", "email"},
		// An address no account can have is wrong credentials, like any other.
		{"login: email with NUL", "", "POST", login, map[string]string{"email": "own\x00er@acme.test", "password": "correct horse battery"}, nil, 400, "invalid", "email"},

		// Teams.
		{"team: duplicate slug", "owner", "POST", teams, map[string]string{"slug": "core", "name": "Core again"}, nil, 409, "conflict", ""},
		{"team: malformed If-Match", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", "abc"}, 400, "invalid", ""},
		{"team: If-Match not a number", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `"abc"`}, 400, "invalid", ""},
		{"team: If-Match zero", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `"0"`}, 400, "invalid", ""},
		{"team: If-Match negative", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `"-1"`}, 400, "invalid", ""},
		{"team: If-Match empty tag", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `""`}, 400, "invalid", ""},
		{"team: If-Match weak garbage", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `W/"x"`}, 400, "invalid", ""},
		{"team: If-Match list", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `"1", "2"`}, 400, "invalid", ""},
		{"team: stale If-Match", "owner", "PATCH", core, map[string]string{"name": "Renamed"}, []string{"If-Match", `"999"`}, 412, "precondition", ""},
		{"team: patch unknown field", "owner", "PATCH", core, map[string]string{"slug": "renamed"}, nil, 400, "invalid", "slug"},
		{"team: patch name is a number", "owner", "PATCH", core, `{"name": 5}`, nil, 400, "invalid", "name"},
		{"team: add a non-member", "owner", "POST", core + "/members", map[string]string{"email": "stranger@example.com"}, nil, 404, "not_found", ""},
		{"team: add an invalid email", "owner", "POST", core + "/members", map[string]string{"email": "not-an-email"}, nil, 400, "invalid", "email"},

		// Members.
		{"member: invalid role", "owner", "POST", memberP, map[string]string{"email": "invitee-0@example.com", "role": "superuser"}, nil, 400, "invalid", "role"},
		{"member: uppercase role", "owner", "POST", memberP, map[string]string{"email": "invitee-1@example.com", "role": "OWNER"}, nil, 400, "invalid", "role"},
		{"member: empty role", "owner", "POST", memberP, map[string]string{"email": "invitee-2@example.com", "role": ""}, nil, 400, "invalid", "role"},
		{"member: no role", "owner", "POST", memberP, map[string]string{"email": "invitee-3@example.com"}, nil, 400, "invalid", "role"},
		{"member: role is a number", "owner", "POST", memberP, `{"email": "invitee-4@example.com", "role": 5}`, nil, 400, "invalid", "role"},
		{"member: duplicate", "owner", "POST", memberP, map[string]string{"email": "viewer@acme.test", "role": "viewer"}, nil, 409, "conflict", ""},
		{"member: viewer adds", "viewer", "POST", memberP, map[string]string{"email": "invitee-5@example.com", "role": "viewer"}, nil, 403, "forbidden", ""},
		{"member: editor changes a role", "editor", "PATCH", memberP + "/" + id["viewer"], map[string]string{"role": "editor"}, nil, 403, "forbidden", ""},
		{"member: admin grants owner", "admin", "POST", memberP, map[string]string{"email": "invitee-6@example.com", "role": "owner"}, nil, 403, "forbidden", ""},
		{"member: admin token grants owner", "token:admin", "POST", memberP, map[string]string{"email": "invitee-7@example.com", "role": "owner"}, nil, 403, "forbidden", ""},
		{"member: admin promotes to owner", "admin", "PATCH", memberP + "/" + id["viewer"], map[string]string{"role": "owner"}, nil, 403, "forbidden", ""},
		{"member: admin promotes self to owner", "admin", "PATCH", memberP + "/" + id["admin"], map[string]string{"role": "owner"}, nil, 403, "forbidden", ""},
		{"member: admin demotes the owner", "admin", "PATCH", memberP + "/" + id["owner"], map[string]string{"role": "viewer"}, nil, 403, "forbidden", ""},
		{"member: admin removes the owner", "admin", "DELETE", memberP + "/" + id["owner"], nil, nil, 403, "forbidden", ""},
		{"member: change to an invalid role", "owner", "PATCH", memberP + "/" + id["viewer"], map[string]string{"role": "god"}, nil, 400, "invalid", "role"},
		{"member: change with an unknown field", "owner", "PATCH", memberP + "/" + id["viewer"], map[string]string{"role": "editor", "email": "x@example.com"}, nil, 400, "invalid", "email"},
		{"member: last owner demotes self", "owner", "PATCH", memberP + "/" + id["owner"], map[string]string{"role": "admin"}, nil, 409, "conflict", ""},
		{"member: last owner leaves", "owner", "DELETE", memberP + "/" + id["owner"], nil, nil, 409, "conflict", ""},
		{"member: owner token demotes the last owner", "token:owner", "PATCH", memberP + "/" + id["owner"], map[string]string{"role": "viewer"}, nil, 409, "conflict", ""},
		{"member: owner token removes the last owner", "token:owner", "DELETE", memberP + "/" + id["owner"], nil, nil, 409, "conflict", ""},

		// Tokens.
		{"token: expires in the past", "owner", "POST", tokens, map[string]string{"name": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, nil, 400, "invalid", "expires_at"},
		{"token: expires_at not a time", "owner", "POST", tokens, map[string]string{"name": "old", "role": "viewer", "expires_at": "tomorrow"}, nil, 400, "invalid", "expires_at"},
		{"token: expires_at a number", "owner", "POST", tokens, `{"name": "old", "role": "viewer", "expires_at": 5}`, nil, 400, "invalid", "expires_at"},
		{"token: invalid role", "owner", "POST", tokens, map[string]string{"name": "bot", "role": "root"}, nil, 400, "invalid", "role"},
		{"token: no role", "owner", "POST", tokens, map[string]string{"name": "bot"}, nil, 400, "invalid", "role"},
		{"token: empty name", "owner", "POST", tokens, map[string]string{"name": "", "role": "viewer"}, nil, 400, "invalid", "name"},
		{"token: name with a control character", "owner", "POST", tokens, map[string]string{"name": "bot\x1b[2J", "role": "viewer"}, nil, 400, "invalid", "name"},
		{"token: 101-character name", "owner", "POST", tokens, map[string]string{"name": strings.Repeat("n", 101), "role": "viewer"}, nil, 400, "invalid", "name"},
		{"token: unknown field", "owner", "POST", tokens, map[string]string{"name": "bot", "role": "viewer", "secret": "mine"}, nil, 400, "invalid", "secret"},
		{"token: viewer asks for an owner token", "viewer", "POST", tokens, map[string]string{"name": "bot", "role": "owner"}, nil, 403, "forbidden", ""},
		{"token: viewer asks for a viewer token", "viewer", "POST", tokens, map[string]string{"name": "bot", "role": "viewer"}, nil, 403, "forbidden", ""},
		{"token: editor asks for a token", "editor", "POST", tokens, map[string]string{"name": "bot", "role": "viewer"}, nil, 403, "forbidden", ""},
		{"token: admin asks for an owner token", "admin", "POST", tokens, map[string]string{"name": "bot", "role": "owner"}, nil, 403, "forbidden", ""},
		{"token: admin token asks for an owner token", "token:admin", "POST", tokens, map[string]string{"name": "bot", "role": "owner"}, nil, 403, "forbidden", ""},

		// Policies.
		{"policy: unknown resource", "owner", "POST", policies, rule("resource", "widgets"), nil, 400, "invalid", "resource"},
		{"policy: unknown action", "owner", "POST", policies, rule("action", "fly"), nil, 400, "invalid", "action"},
		{"policy: unknown effect", "owner", "POST", policies, rule("effect", "maybe"), nil, 400, "invalid", "effect"},
		{"policy: unknown role", "owner", "POST", policies, rule("role", "root"), nil, 400, "invalid", "role"},
		{"policy: condition does not compile", "owner", "POST", policies, rule("condition", "r.sub.Role =="), nil, 400, "invalid", "condition"},
		{"policy: condition does not compile, any kind", "owner", "POST", policies,
			map[string]string{"role": "viewer", "resource": "*", "action": "*", "effect": "deny", "condition": "r.sub.Role =="}, nil, 400, "invalid", "condition"},
		{"policy: condition unbalanced", "owner", "POST", policies, rule("condition", "((((("), nil, 400, "invalid", "condition"},
		{"policy: condition not a boolean", "owner", "POST", policies, rule("condition", "r.sub.Role"), nil, 400, "invalid", "condition"},
		{"policy: condition calls a function wrongly", "owner", "POST", policies, rule("condition", "hasTeam(r.sub, 5)"), nil, 400, "invalid", "condition"},
		{"policy: condition on two lines", "owner", "POST", policies, rule("condition", "true\n&& true"), nil, 400, "invalid", "condition"},
		{"policy: condition with NUL", "owner", "POST", policies, rule("condition", "true\x00"), nil, 400, "invalid", "condition"},
		{"policy: 501-character condition", "owner", "POST", policies, rule("condition", "true"+strings.Repeat(" ", 497)), nil, 400, "invalid", "condition"},
		{"policy: claims to be built in", "owner", "POST", policies, `{"role": "viewer", "resource": "team", "action": "read", "effect": "allow", "builtin": true}`, nil, 400, "invalid", "builtin"},
		{"policy: viewer adds", "viewer", "POST", policies, rule("effect", "allow"), nil, 403, "forbidden", ""},

		// Ids and names in paths.
		{"member id not a UUID: patch", "owner", "PATCH", memberP + "/not-a-uuid", map[string]string{"role": "viewer"}, nil, 404, "not_found", ""},
		{"member id not a UUID: delete", "owner", "DELETE", memberP + "/123", nil, nil, 404, "not_found", ""},
		{"member id NUL", "owner", "DELETE", memberP + "/%00", nil, nil, 404, "not_found", ""},
		{"member id unknown: patch", "owner", "PATCH", memberP + "/" + missing, map[string]string{"role": "viewer"}, nil, 404, "not_found", ""},
		{"member id unknown: delete", "owner", "DELETE", memberP + "/" + missing, nil, nil, 404, "not_found", ""},
		{"token id not a UUID", "owner", "DELETE", tokens + "/not-a-uuid", nil, nil, 404, "not_found", ""},
		{"token id unknown", "owner", "DELETE", tokens + "/" + missing, nil, nil, 404, "not_found", ""},
		{"policy id not a UUID", "owner", "DELETE", policies + "/not-a-uuid", nil, nil, 404, "not_found", ""},
		{"policy id unknown", "owner", "DELETE", policies + "/" + missing, nil, nil, 404, "not_found", ""},
		{"team unknown", "owner", "GET", teams + "/nope", nil, nil, 404, "not_found", ""},
		{"team name NUL: get", "owner", "GET", teams + "/%00", nil, nil, 404, "not_found", ""},
		{"team name NUL: patch", "owner", "PATCH", teams + "/%00", map[string]string{"name": "X"}, nil, 404, "not_found", ""},
		{"team name NUL: delete", "owner", "DELETE", teams + "/%00", nil, nil, 404, "not_found", ""},
		{"team name invalid UTF-8", "viewer", "GET", teams + "/%FF", nil, nil, 404, "not_found", ""},
		{"tenant NUL", "owner", "GET", "/api/v1/tenants/%00/teams", nil, nil, 404, "not_found", ""},
		{"tenant invalid UTF-8", "owner", "GET", "/api/v1/tenants/%FF", nil, nil, 404, "not_found", ""},
		{"tenant too long", "owner", "GET", "/api/v1/tenants/" + strings.Repeat("a", 300), nil, nil, 404, "not_found", ""},
	}

	for _, slug := range sortedKeys(badSlugs) {
		cases = append(cases,
			badCase{"team slug " + slug, "owner", "POST", teams, map[string]string{"slug": badSlugs[slug], "name": "Bad"}, nil, 400, "invalid", "slug"},
			badCase{"signup tenant slug " + slug, "", "POST", signup, signupWith(withTenant("slug", badSlugs[slug])), nil, 400, "invalid", "tenant.slug"},
			badCase{"new tenant slug " + slug, "owner", "POST", "/api/v1/tenants", map[string]string{"slug": badSlugs[slug], "name": "Bad"}, nil, 400, "invalid", "slug"},
		)
	}
	for _, name := range sortedKeys(badNames) {
		cases = append(cases,
			badCase{"team name " + name, "owner", "POST", teams, teamWith(badNames[name]), nil, 400, "invalid", "name"},
			badCase{"team rename " + name, "owner", "PATCH", core, map[string]string{"name": badNames[name]}, nil, 400, "invalid", "name"},
			badCase{"signup name " + name, "", "POST", signup, signupWith(with("name", badNames[name])), nil, 400, "invalid", "name"},
			badCase{"signup tenant name " + name, "", "POST", signup, signupWith(withTenant("name", badNames[name])), nil, 400, "invalid", "tenant.name"},
		)
	}
	for _, email := range []string{"plainaddress", "no-dot@localhost", "two@@example.com", "Ada <ada@example.com>", "ada@exa\nmple.com",
		"ada @example.com", "nul\x00@example.com", "", strings.Repeat("a", 250) + "@example.com"} {
		cases = append(cases,
			badCase{"signup email " + email, "", "POST", signup, signupWith(with("email", email)), nil, 400, "invalid", "email"},
			badCase{"member email " + email, "owner", "POST", memberP, map[string]string{"email": email, "role": "viewer"}, nil, 400, "invalid", "email"},
		)
	}
	for _, list := range []string{"teams", "members", "tokens", "audit"} {
		for _, limit := range []string{"0", "-1", "201", "abc", "1.5", "99999999999999999999"} {
			cases = append(cases, badCase{list + " limit=" + limit, "owner", "GET", acme + "/" + list + "?limit=" + limit, nil, nil, 400, "invalid", "limit"})
		}
		// "AA" and "_w" are well-formed base64 of a NUL byte and of invalid UTF-8.
		for _, cursor := range []string{"!!!", "AA", "_w"} {
			cases = append(cases, badCase{list + " cursor=" + cursor, "owner", "GET", acme + "/" + list + "?cursor=" + cursor, nil, nil, 400, "invalid", "cursor"})
		}
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.bind(t)
			before := s.state(t)
			r := s.do(c.method, c.path, cred[c.as], c.body, c.headers...)
			p := wantProblem(t, r, c.status, c.code)
			if c.field != "" && !hasField(p.Errors, c.field) {
				t.Errorf("errors %v do not name %q", p.Errors, c.field)
			}
			s.assertUnchanged(t, before, c.name)
		})
	}
}

// hasField reports whether errs names field, alone or as the last part of a
// dotted path.
func hasField(errs map[string]string, field string) bool {
	for k := range errs {
		if k == field || strings.HasSuffix(k, "."+field) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
