package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/internal/api"
	"switchboard/internal/tenancy"
)

// defectSweepCase is one request of a bad-input sweep.
type defectSweepCase struct {
	name, method, path string
	body               any // nil, a raw string, or a value sent as JSON
	headers            []string
	// plain allows a 4xx that is not a problem document: a request line
	// Go's HTTP server refuses before any handler runs (a bad escape).
	plain bool
}

// defectSweep sends each case and fails it when the answer is a server error,
// holds a database's or Go's own message, or is a 4xx that is not a problem
// document; then fails t for every internal error or panic the server
// logged meanwhile.
func defectSweep(t *testing.T, s *testServer, log *defectLog, cred string, cases []defectSweepCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := s.bind(t)
			r := defectSendRaw(t, s, c.method, c.path, cred, c.body, c.headers...)
			if r.Status >= 500 {
				t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
			if l := defectLeak(r.Body); l != "" {
				t.Fatalf("%s %s: the answer holds %q: %d %s", c.method, c.path, l, r.Status, r.Body)
			}
			if r.Status >= 400 && c.method != "HEAD" && !c.plain {
				r.problemCode(t)
			}
		})
	}
	for i, line := range log.failures() {
		if i == 20 {
			t.Errorf("... and more")
			break
		}
		t.Errorf("server log: %s", line)
	}
}

// defectSendRaw is testServer.do with the path and query sent exactly as
// written, even when they are not valid escapes (the client's URL parser
// would refuse them).
func defectSendRaw(t *testing.T, s *testServer, method, target, token string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.URL+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(target, "?")
	req.URL.Opaque, req.URL.RawQuery = path, query
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// defectSweepFixture is a tenant with one of every object, for a sweep to aim at.
type defectSweepFixture struct {
	s        *testServer
	log      *defectLog
	owner    string
	memberID string
	tokenID  string
	policyID string
}

func newDefectSweepFixture(t *testing.T) *defectSweepFixture {
	t.Helper()
	log := &defectLog{}
	s := newTestServer(t, log.option(), withOperators("owner@acme.test"))
	f := &defectSweepFixture{s: s, log: log, owner: s.signup("owner@acme.test", "acme")}
	o := f.owner
	s.must(201, "POST", "/api/v1/tenants/acme/teams", o, map[string]string{"slug": "core", "name": "Core"})
	viewer := s.member(o, "acme", "viewer@acme.test", tenancy.Viewer)
	f.memberID = defectUserID(s, viewer)
	s.must(201, "POST", "/api/v1/tenants/acme/members", o, map[string]string{"email": "invited@example.test", "role": "viewer"})
	f.tokenID = defectToken(s, o, "acme", "ci", "viewer").ID.String()
	var rule struct{ ID string }
	s.must(201, "POST", "/api/v1/tenants/acme/policies", o, map[string]string{"role": "viewer", "resource": "cluster", "action": "replay", "effect": "deny"}).json(t, &rule)
	f.policyID = rule.ID
	s.must(201, "POST", "/api/v1/tenants/acme/streams/orders-1/events", o, map[string]any{"events": []map[string]any{{"type": "created", "data": map[string]int{"n": 1}}}})
	s.must(201, "PUT", "/api/v1/tenants/acme/subscriptions/sub1", o, map[string]any{})
	s.must(200, "PUT", "/api/v1/tenants/acme/kv/k", o, map[string]any{"value": 1})
	return f
}

// defectNamedRoutes are the routes with a name in their path ({} marks it), with
// a body that would be accepted for a good name.
var defectNamedRoutes = []struct {
	method, path string
	body         any
}{
	{"GET", "/api/v1/tenants/{}", nil},
	{"GET", "/api/v1/tenants/{}/teams", nil},
	{"GET", "/api/v1/tenants/acme/teams/{}", nil},
	{"PATCH", "/api/v1/tenants/acme/teams/{}", map[string]string{"name": "X"}},
	{"DELETE", "/api/v1/tenants/acme/teams/{}", nil},
	{"POST", "/api/v1/tenants/acme/teams/{}/members", map[string]string{"email": "viewer@acme.test"}},
	{"DELETE", "/api/v1/tenants/acme/teams/core/members/{}", nil},
	{"DELETE", "/api/v1/tenants/acme/invitations/{}", nil},
	{"PATCH", "/api/v1/tenants/acme/members/{}", map[string]string{"role": "viewer"}},
	{"DELETE", "/api/v1/tenants/acme/members/{}", nil},
	{"DELETE", "/api/v1/tenants/acme/tokens/{}", nil},
	{"DELETE", "/api/v1/tenants/acme/policies/{}", nil},
	{"POST", "/api/v1/tenants/acme/streams/{}/events", map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]int{}}}}},
	{"GET", "/api/v1/tenants/acme/streams/{}/events", nil},
	{"DELETE", "/api/v1/tenants/acme/streams/{}", nil},
	{"PUT", "/api/v1/tenants/acme/streams/{}/snapshot", map[string]any{"version": 0, "data": map[string]int{}}},
	{"GET", "/api/v1/tenants/acme/streams/{}/snapshot", nil},
	{"PUT", "/api/v1/tenants/acme/streams/{}/metadata", map[string]any{"max_count": 5}},
	{"GET", "/api/v1/tenants/acme/streams/{}/metadata", nil},
	{"PUT", "/api/v1/tenants/acme/subscriptions/{}", map[string]any{}},
	{"GET", "/api/v1/tenants/acme/subscriptions/{}", nil},
	{"GET", "/api/v1/tenants/acme/subscriptions/{}/events", nil},
	{"GET", "/api/v1/tenants/acme/subscriptions/{}/events?member=m1", nil},
	{"POST", "/api/v1/tenants/acme/subscriptions/{}/ack", map[string]any{"position": 0}},
	{"DELETE", "/api/v1/tenants/acme/subscriptions/{}", nil},
	{"POST", "/api/v1/tenants/acme/locks/{}", map[string]any{"owner": "o", "ttl_ms": 1000}},
	{"PUT", "/api/v1/tenants/acme/locks/{}", map[string]any{"token": "x", "ttl_ms": 1000}},
	{"POST", "/api/v1/tenants/acme/locks/{}/verify", map[string]any{"fencing_token": 1}},
	{"DELETE", "/api/v1/tenants/acme/locks/{}", map[string]any{"token": "x"}},
	{"POST", "/api/v1/tenants/acme/locks/{}/force-release", nil},
	{"POST", "/api/v1/tenants/acme/elections/{}/campaign", map[string]any{"candidate": "c", "ttl_ms": 1000}},
	{"GET", "/api/v1/tenants/acme/elections/{}", nil},
	{"POST", "/api/v1/tenants/acme/elections/{}/renew", map[string]any{"token": "x", "ttl_ms": 1000}},
	{"POST", "/api/v1/tenants/acme/elections/{}/resign", map[string]any{"token": "x"}},
	{"PUT", "/api/v1/tenants/acme/kv/{}", map[string]any{"value": 1}},
	{"GET", "/api/v1/tenants/acme/kv/{}", nil},
	{"DELETE", "/api/v1/tenants/acme/kv/{}", nil},
	{"DELETE", "/api/v1/cluster/voters/{}", nil},
}

// defectBadSegments are escaped path segments a client may send.
var defectBadSegments = map[string]string{
	"NUL":                           "%00",
	"NUL inside":                    "a%00b",
	"NUL in an address":             "ann%00@example.test",
	"byte FF":                       "%FF",
	"byte FF inside":                "a%FFb",
	"overlong slash":                "%C0%AF",
	"UTF-8 of a surrogate":          "%ED%A0%80",
	"truncated UTF-8":               "%E2%82",
	"right-to-left override":        "a%E2%80%AEb",
	"byte order mark":               "%EF%BB%BF",
	"noncharacter U+FFFF":           "%EF%BF%BF",
	"last code point":               "%F4%8F%BF%BF",
	"beyond the last code point":    "%F4%90%80%80",
	"combining marks":               "a" + strings.Repeat("%CC%81", 50),
	"emoji":                         "%F0%9F%98%80",
	"control characters":            "a%01%1B%7Fb",
	"a bad escape":                  "a%zzb",
	"3000 bytes":                    strings.Repeat("x", 3000),
	"3000 bytes ending in NUL":      strings.Repeat("x", 2999) + "%00",
	"10000 bytes":                   strings.Repeat("y", 10000),
	"1000 two-byte characters":      strings.Repeat("%C3%A9", 1000),
	"dots":                          "..",
	"encoded slash and dots":        "..%2F..%2Fadmin",
	"percent":                       "%25",
	"spaces only":                   "%20%20",
	"a NUL-looking escape, escaped": "%2500",
}

// TestDefect_InternalMessagesNeverReachClients sends NUL bytes, invalid
// UTF-8, odd Unicode and very long values to every place they reach a text
// column or a parser — names in paths, fields of bodies, query parameters —
// and checks that no answer is a server error or holds a PostgreSQL or Go
// message, and that the server logged no internal error or panic.
func TestDefect_InternalMessagesNeverReachClients(t *testing.T) {
	t.Parallel()
	f := newDefectSweepFixture(t)
	var cases []defectSweepCase
	for _, r := range defectNamedRoutes {
		for name, seg := range defectBadSegments {
			cases = append(cases, defectSweepCase{name: r.method + " " + r.path + " " + name, method: r.method, path: strings.Replace(r.path, "{}", seg, 1), body: r.body,
				plain: strings.Contains(seg, "%zz")})
		}
	}

	// Query parameters.
	lists := []string{"teams", "members", "invitations", "tokens", "audit", "policies", "streams", "events", "subscriptions", "locks", "elections", "kv",
		"streams/orders-1/events", "subscriptions/sub1/events"}
	badQuery := map[string]string{"NUL": "%00", "FF": "%FF", "base64 of NUL": "AA", "base64 of FF": "_w", "base64 of a long NUL run": strings.Repeat("A", 400),
		"long": strings.Repeat("z", 5000), "huge number": "99999999999999999999", "negative": "-1", "max int64": "9223372036854775807", "a bad escape": "%zz"}
	for _, l := range lists {
		for _, p := range []string{"cursor", "limit"} {
			for name, v := range badQuery {
				cases = append(cases, defectSweepCase{name: "GET " + l + "?" + p + "= " + name, method: "GET", path: "/api/v1/tenants/acme/" + l + "?" + p + "=" + v})
			}
		}
	}
	for _, q := range []string{"events?category", "events?from_position", "streams/orders-1/events?from", "streams/orders-1/events?direction",
		"kv?prefix", "subscriptions/sub1/events?member", "streams/nope?hard"} {
		path, param, _ := strings.Cut(q, "?")
		method := "GET"
		if strings.HasPrefix(path, "streams/nope") {
			method = "DELETE"
		}
		for name, v := range badQuery {
			cases = append(cases, defectSweepCase{name: method + " " + q + "= " + name, method: method, path: "/api/v1/tenants/acme/" + path + "?" + param + "=" + v})
		}
	}

	// Bodies: every text field with a NUL, odd Unicode, and very long.
	long := strings.Repeat("w", 100_000)
	texts := map[string]string{"NUL": "a\x00b", "NUL alone": "\x00", "RLO": "a\u202eb", "BOM": "\ufeff", "U+FFFF": "\uffff", "long": long,
		"NUL at the end of a long value": strings.Repeat("v", 5000) + "\x00", "control characters": "a\x01\x1b\x7fb", "replacement character": "\ufffd"}
	bodies := []struct {
		method, path string
		body         func(v string) any
	}{
		{"POST", "/api/v1/auth/signup", func(v string) any {
			return map[string]any{"email": "x@example.test", "password": "correct horse battery", "name": v}
		}},
		{"POST", "/api/v1/auth/signup", func(v string) any {
			return map[string]any{"email": v + "@example.test", "password": "correct horse battery", "name": "n"}
		}},
		{"POST", "/api/v1/auth/signup", func(v string) any {
			return map[string]any{"email": "y@example.test", "password": "pw" + v + "pw-long-enough", "name": "n"}
		}},
		{"POST", "/api/v1/auth/signup", func(v string) any {
			return map[string]any{"email": "z@example.test", "password": "correct horse battery", "name": "n", "tenant": map[string]string{"slug": "s" + v, "name": v}}
		}},
		{"POST", "/api/v1/auth/login", func(v string) any { return map[string]string{"email": "owner@acme.test", "password": v} }},
		{"POST", "/api/v1/auth/login", func(v string) any { return map[string]string{"email": v, "password": "x"} }},
		{"POST", "/api/v1/auth/verify-email", func(v string) any { return map[string]string{"token": v} }},
		{"POST", "/api/v1/tenants", func(v string) any { return map[string]string{"slug": "t-" + v, "name": v} }},
		{"POST", "/api/v1/tenants/acme/teams", func(v string) any { return map[string]string{"slug": "team-x", "name": v} }},
		{"POST", "/api/v1/tenants/acme/teams", func(v string) any { return map[string]string{"slug": v, "name": "Team"} }},
		{"PATCH", "/api/v1/tenants/acme/teams/core", func(v string) any { return map[string]string{"name": v} }},
		{"POST", "/api/v1/tenants/acme/teams/core/members", func(v string) any { return map[string]string{"email": v} }},
		{"POST", "/api/v1/tenants/acme/members", func(v string) any { return map[string]string{"email": "m" + v + "@example.test", "role": "viewer"} }},
		{"POST", "/api/v1/tenants/acme/members", func(v string) any { return map[string]string{"email": "m@example.test", "role": v} }},
		{"PATCH", "/api/v1/tenants/acme/members/{member}", func(v string) any { return map[string]string{"role": v} }},
		{"POST", "/api/v1/tenants/acme/tokens", func(v string) any { return map[string]string{"name": v, "role": "viewer"} }},
		{"POST", "/api/v1/tenants/acme/tokens", func(v string) any { return map[string]string{"name": "t", "role": "viewer", "expires_at": v} }},
		{"POST", "/api/v1/tenants/acme/policies", func(v string) any {
			return map[string]string{"role": "viewer", "resource": "team", "action": "read", "effect": "allow", "condition": v}
		}},
		{"POST", "/api/v1/tenants/acme/policies", func(v string) any {
			return map[string]string{"role": "viewer", "resource": v, "action": "read", "effect": "allow"}
		}},
		{"DELETE", "/api/v1/tenants/acme/policies", func(v string) any { return map[string]string{"id": v} }},
		{"POST", "/api/v1/tenants/acme/policies/try", func(v string) any {
			return map[string]any{"rule": map[string]string{"role": "viewer", "resource": "team", "action": "read", "effect": "deny", "condition": v},
				"request": map[string]any{"role": "viewer", "action": "read", "kind": "team", "name": v, "team": v, "teams": []string{v}, "labels": map[string]string{v: v}}}
		}},
		{"POST", "/api/v1/tenants/acme/policies/try", func(v string) any {
			return map[string]any{"request": map[string]any{"role": v, "action": v, "kind": v}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-1/events", func(v string) any {
			return map[string]any{"events": []map[string]any{{"type": v, "data": map[string]int{}}}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-2/events", func(v string) any {
			return map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]string{"k": v}}}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-3/events", func(v string) any {
			return map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]string{v: "key"}}}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-4/events", func(v string) any {
			return map[string]any{"events": []map[string]any{{"type": "t", "data": v}}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-5/events", func(v string) any {
			return map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]int{}, "metadata": map[string]string{"m": v}}}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-6/events", func(v string) any {
			return map[string]any{"expected_version": v, "events": []map[string]any{{"type": "t", "data": map[string]int{}}}}
		}},
		{"POST", "/api/v1/tenants/acme/streams/s-7/events", func(v string) any {
			return map[string]any{"events": []map[string]any{{"id": v, "type": "t", "data": map[string]int{}}}}
		}},
		{"PUT", "/api/v1/tenants/acme/streams/orders-1/snapshot", func(v string) any {
			return map[string]any{"version": 0, "data": map[string]string{"s": v}}
		}},
		{"PUT", "/api/v1/tenants/acme/subscriptions/sub-x", func(v string) any { return map[string]any{"category": v} }},
		{"POST", "/api/v1/tenants/acme/subscriptions/sub1/ack", func(v string) any {
			return map[string]any{"position": 0, "member": v, "generation": 1}
		}},
		{"POST", "/api/v1/tenants/acme/locks/l-1", func(v string) any { return map[string]any{"owner": v, "ttl_ms": 1000} }},
		{"PUT", "/api/v1/tenants/acme/locks/k", func(v string) any { return map[string]any{"token": v, "ttl_ms": 1000} }},
		{"POST", "/api/v1/tenants/acme/elections/e-1/campaign", func(v string) any { return map[string]any{"candidate": v, "ttl_ms": 1000} }},
		{"POST", "/api/v1/tenants/acme/elections/e-1/resign", func(v string) any { return map[string]any{"token": v} }},
		{"PUT", "/api/v1/tenants/acme/kv/v-1", func(v string) any { return map[string]any{"value": v} }},
		{"PUT", "/api/v1/tenants/acme/kv/v-2", func(v string) any { return map[string]any{"value": map[string]string{v: v}} }},
		// Not POST /cluster/voters: an odd but valid id would join the
		// group and take its quorum away.
	}
	for _, b := range bodies {
		for name, v := range texts {
			path := strings.Replace(b.path, "{member}", f.memberID, 1)
			cases = append(cases, defectSweepCase{name: fmt.Sprintf("%s %s body %s", b.method, b.path, name), method: b.method, path: path, body: b.body(v)})
		}
	}

	// Numbers at and past the ends of their types.
	for _, n := range []string{"-1", "0", "9223372036854775807", "-9223372036854775808", "18446744073709551615", "1e308", "1.5"} {
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/api/v1/tenants/acme/streams/n-1/events", `{"expected_version": N, "events": [{"type": "t", "data": {}}]}`},
			{"PUT", "/api/v1/tenants/acme/streams/orders-1/snapshot", `{"version": N, "data": {}}`},
			{"PUT", "/api/v1/tenants/acme/streams/orders-1/metadata", `{"max_count": N}`},
			{"PUT", "/api/v1/tenants/acme/streams/orders-1/metadata", `{"max_age": N}`},
			{"PUT", "/api/v1/tenants/acme/streams/orders-1/metadata", `{"truncate_before": N}`},
			{"PUT", "/api/v1/tenants/acme/subscriptions/sub-n", `{"from_position": N}`},
			{"PUT", "/api/v1/tenants/acme/subscriptions/sub-m", `{"member_ttl_ms": N}`},
			{"POST", "/api/v1/tenants/acme/subscriptions/sub1/ack", `{"position": N}`},
			{"POST", "/api/v1/tenants/acme/subscriptions/sub1/ack", `{"position": 0, "member": "m", "generation": N}`},
			{"POST", "/api/v1/tenants/acme/locks/n-1", `{"owner": "o", "ttl_ms": N}`},
			{"POST", "/api/v1/tenants/acme/locks/n-2", `{"owner": "o", "ttl_ms": 1000, "wait_ms": N}`},
			{"POST", "/api/v1/tenants/acme/locks/k/verify", `{"fencing_token": N}`},
			{"POST", "/api/v1/tenants/acme/elections/n-1/campaign", `{"candidate": "c", "ttl_ms": N}`},
		} {
			cases = append(cases, defectSweepCase{name: c.method + " " + c.path + " " + strings.Replace(c.body, "N", n, 1), method: c.method, path: c.path,
				body: strings.Replace(c.body, "N", n, 1)})
		}
	}

	// Headers.
	for name, v := range map[string]string{"FF": "\xff", "quoted FF": `"\xff"`, "long": `"` + strings.Repeat("9", 5000) + `"`, "huge": `"99999999999999999999"`} {
		cases = append(cases,
			defectSweepCase{name: "PATCH team If-Match " + name, method: "PATCH", path: "/api/v1/tenants/acme/teams/core", body: map[string]string{"name": "C"}, headers: []string{"If-Match", v}},
			defectSweepCase{name: "PUT kv If-Match " + name, method: "PUT", path: "/api/v1/tenants/acme/kv/k", body: map[string]int{"value": 2}, headers: []string{"If-Match", v}},
			defectSweepCase{name: "GET kv If-None-Match " + name, method: "GET", path: "/api/v1/tenants/acme/kv/k", headers: []string{"If-None-Match", v}},
			defectSweepCase{name: "POST teams Idempotency-Key " + name, method: "POST", path: "/api/v1/tenants/acme/teams", body: map[string]string{"slug": "idem", "name": "I"}, headers: []string{"Idempotency-Key", v}},
			defectSweepCase{name: "POST teams Content-Type " + name, method: "POST", path: "/api/v1/tenants/acme/teams", body: map[string]string{"slug": "ct", "name": "I"}, headers: []string{"Content-Type", "application/json; charset=" + v}},
			defectSweepCase{name: "GET me X-Request-Id " + name, method: "GET", path: "/api/v1/me", headers: []string{"X-Request-Id", v}},
		)
	}
	// The event store's edges: many events, repeated ids, deep nesting, a
	// tombstoned stream.
	const usedID = "6f1c1c9e-3b9d-4c55-9d3a-0a4b2f2f7e01"
	f.s.must(201, "POST", "/api/v1/tenants/acme/streams/ids-a/events", f.owner, map[string]any{"events": []map[string]any{{"id": usedID, "type": "t", "data": 1}}})
	f.s.must(201, "POST", "/api/v1/tenants/acme/streams/tomb/events", f.owner, map[string]any{"events": []map[string]any{{"type": "t", "data": 1}}})
	f.s.must(204, "DELETE", "/api/v1/tenants/acme/streams/tomb?hard=true", f.owner, nil)
	many := func(n int, ev string) string {
		return `{"events": [` + strings.TrimSuffix(strings.Repeat(ev+",", n), ",") + `]}`
	}
	nested := func(depth int) string {
		return `{"events": [{"type": "t", "data": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}]}`
	}
	for _, c := range []struct{ name, path, body string }{
		{"12000 events", "many", many(12000, `{"type":"t","data":0}`)},
		{"25000 events", "many-2", many(25000, `{"type":"t","data":0}`)},
		{"one id twice", "ids-b", many(2, `{"id":"0b3a7f3e-55b4-4b5e-8a1d-3e7f0d1c2b11","type":"t","data":0}`)},
		{"an id used in another stream", "ids-c", many(1, `{"id":"`+usedID+`","type":"t","data":0}`)},
		{"an id used in another stream, and a new one", "ids-d", `{"events": [{"type":"t","data":0}, {"id":"` + usedID + `","type":"t","data":0}]}`},
		{"the nil id", "ids-e", many(1, `{"id":"00000000-0000-0000-0000-000000000000","type":"t","data":0}`)},
		{"an id in upper case", "ids-f", many(1, `{"id":"`+strings.ToUpper(usedID)+`","type":"t","data":0}`)},
		{"an id without hyphens", "ids-g", many(1, `{"id":"`+strings.ReplaceAll(usedID, "-", "")+`","type":"t","data":0}`)},
		{"an id in braces", "ids-h", many(1, `{"id":"{`+usedID+`}","type":"t","data":0}`)},
		{"nested 1000 deep", "deep-1", nested(1000)},
		{"nested 9000 deep", "deep-2", nested(9000)},
		{"nested 20000 deep", "deep-3", nested(20000)},
		{"a tombstoned stream", "tomb", many(1, `{"type":"t","data":0}`)},
		{"a tombstoned stream, expecting none", "tomb", `{"expected_version": "no_stream", "events": [{"type":"t","data":0}]}`},
		{"no events", "empty", `{"events": []}`},
		{"null events", "empty", `{"events": null}`},
		{"data null", "nulls", many(1, `{"type":"t","data":null}`)},
		{"no data", "nulls", many(1, `{"type":"t"}`)},
		{"metadata null", "nulls", many(1, `{"type":"t","data":0,"metadata":null}`)},
		{"huge number", "nums", many(1, `{"type":"t","data":1e400}`)},
		{"a number of 10000 digits", "nums", many(1, `{"type":"t","data":`+strings.Repeat("9", 10000)+`}`)},
	} {
		cases = append(cases, defectSweepCase{name: "append " + c.name, method: "POST", path: "/api/v1/tenants/acme/streams/" + c.path + "/events", body: c.body})
	}
	for _, c := range []struct{ name, method, path, body string }{
		{"snapshot of a tombstoned stream", "PUT", "tomb/snapshot", `{"version": 0, "data": {}}`},
		{"metadata of a tombstoned stream", "PUT", "tomb/metadata", `{"max_count": 1}`},
		{"read a tombstoned stream", "GET", "tomb/events", ""},
		{"snapshot nested 9000 deep", "PUT", "orders-1/snapshot", `{"version": 0, "data": ` + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + `}`},
		{"snapshot past the stream", "PUT", "orders-1/snapshot", `{"version": 5, "data": {}}`},
		{"snapshot of no stream", "PUT", "nothing/snapshot", `{"version": 0, "data": {}}`},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		cases = append(cases, defectSweepCase{name: c.name, method: c.method, path: "/api/v1/tenants/acme/streams/" + c.path, body: body})
	}

	t.Run("streams", func(t *testing.T) {
		var paths []string
		for _, v := range badQuery {
			paths = append(paths, "subscriptions/live?category="+v, "subscriptions/live?from_position="+v, "subscriptions/live?resume_after="+v,
				"kv-watch?prefix="+v, "locks/watch?resume_after="+v, "elections-watch?resume_after="+v)
		}
		for _, seg := range defectBadSegments {
			paths = append(paths, "elections/"+seg+"/observe")
		}
		for _, p := range paths {
			defectWSSweep(t, f.s, f.owner, "/api/v1/tenants/acme/"+p)
		}
	})
	defectSweep(t, f.s, f.log, f.owner, cases)
}

// defectWSSweep opens the stream at path and fails t when the refusal is a server
// error or the stream fails (1011) or either holds an internal message.
func defectWSSweep(t *testing.T, s *testServer, cred, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + cred}},
	})
	if err != nil {
		if res == nil {
			if strings.Contains(path, "%zz") {
				return // refused by the client's own URL parser
			}
			t.Errorf("%s: %v", path, err)
			return
		}
		var body []byte
		if res.Body != nil {
			body, _ = io.ReadAll(res.Body)
		}
		if res.StatusCode >= 500 || defectLeak(body) != "" {
			t.Errorf("%s: refused with %d %s", path, res.StatusCode, body)
		}
		return
	}
	defer conn.CloseNow()
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer rcancel()
	for {
		_, data, err := conn.Read(rctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code == websocket.StatusInternalError {
				t.Errorf("%s: the stream failed (1011): %v", path, err)
			}
			return
		}
		if l := defectLeak(data); l != "" {
			t.Errorf("%s: a message holds %q: %s", path, l, data)
		}
	}
}

// TestDefect_InvalidUTF8InJSONIsRefused: a JSON string that is not valid
// UTF-8 (raw bytes or a lone surrogate escape) is refused with 400 and
// nothing is stored or served back.
func TestDefect_InvalidUTF8InJSONIsRefused(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	o := s.signup("owner@acme.test", "acme")
	for name, raw := range map[string]string{
		"byte FF":              "\"a\xffb\"",
		"overlong encoding":    "\"\xc0\xaf\"",
		"UTF-8 of a surrogate": "\"\xed\xa0\x80\"",
		"truncated sequence":   "\"\xe2\x82\"",
		"lone high surrogate":  `"\ud800"`,
		"lone low surrogate":   `"\udc00x"`,
		"reversed surrogates":  `"\udc00\ud800"`,
	} {
		t.Run(name, func(t *testing.T) {
			s := s.bind(t)
			key := "k-" + strings.ReplaceAll(name, " ", "-")
			stream := "s-" + strings.ReplaceAll(name, " ", "-")
			for _, c := range []struct{ method, path, body string }{
				{"PUT", "/api/v1/tenants/acme/kv/" + key, `{"value": ` + raw + `}`},
				{"PUT", "/api/v1/tenants/acme/kv/" + key, `{"value": {"a": [` + raw + `]}}`},
				{"PUT", "/api/v1/tenants/acme/kv/" + key, `{"value": {` + raw + `: 1}}`},
				{"POST", "/api/v1/tenants/acme/streams/" + stream + "/events", `{"events": [{"type": "t", "data": {"a": ` + raw + `}}]}`},
				{"POST", "/api/v1/tenants/acme/streams/" + stream + "/events", `{"events": [{"type": "t", "data": {` + raw + `: 1}}]}`},
				{"POST", "/api/v1/tenants/acme/streams/" + stream + "/events", `{"events": [{"type": "t", "data": {}, "metadata": {"m": ` + raw + `}}]}`},
				{"POST", "/api/v1/tenants/acme/streams/" + stream + "/events", `{"events": [{"type": ` + raw + `, "data": {}}]}`},
				{"POST", "/api/v1/tenants/acme/teams", `{"slug": "t", "name": ` + raw + `}`},
				{"PUT", "/api/v1/tenants/acme/subscriptions/" + stream, `{"category": ` + raw + `}`},
			} {
				r := s.do(c.method, c.path, o, c.body)
				if r.Status != 400 {
					t.Errorf("%s %s %q: %d %s, want 400", c.method, c.path, c.body, r.Status, r.Body)
					continue
				}
				wantProblem(t, r, 400, "invalid")
			}
			wantProblem(t, s.do("GET", "/api/v1/tenants/acme/kv/"+key, o, nil), 404, "not_found")
			wantProblem(t, s.do("GET", "/api/v1/tenants/acme/streams/"+stream+"/events", o, nil), 404, "not_found")
			wantProblem(t, s.do("GET", "/api/v1/tenants/acme/subscriptions/"+stream, o, nil), 404, "not_found")
			wantProblem(t, s.do("GET", "/api/v1/tenants/acme/teams/t", o, nil), 404, "not_found")
		})
	}
}

// TestDefect_PathNamesRoundTripExactly: a name in a path is decoded exactly
// once on every route, whichever way the client escaped it, and comes back
// as it was written: team member and invitation emails, stream,
// subscription, lock, election and KV names.
func TestDefect_PathNamesRoundTripExactly(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	o := s.signup("owner@acme.test", "acme")
	escapings := map[string]func(string) string{
		"default":      url.PathEscape,
		"every byte":   defectEscapeEvery,
		"@ and + too":  func(n string) string { return strings.NewReplacer("@", "%40", "+", "%2B").Replace(url.PathEscape(n)) },
		"lower case %": func(n string) string { return strings.ToLower(defectEscapeEvery(n)) },
	}
	names := []string{"a%25b", "a%2525b", "50%", "a/b", "a b", "café", "x?y#z", "ann@example.test", "+:;,=$&'()*!", "a+b", "%41"}

	i := 0
	for ename, esc := range escapings {
		for _, name := range names {
			i++
			t.Run(ename+" "+strconv.Quote(name), func(t *testing.T) {
				s := s.bind(t)
				seg := esc(name)
				acme := "/api/v1/tenants/acme"
				// Streams.
				var ev api.AppendResponse
				s.must(201, "POST", acme+"/streams/"+seg+"/events", o, map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]int{}}}}).json(t, &ev)
				var events api.List[struct {
					Stream string `json:"stream"`
				}]
				s.must(200, "GET", acme+"/streams/"+seg+"/events", o, nil).json(t, &events)
				// Every escaping of one name is one stream.
				if int64(len(events.Items)) != ev.LastVersion+1 || slices.ContainsFunc(events.Items, func(e struct {
					Stream string `json:"stream"`
				}) bool {
					return e.Stream != name
				}) {
					t.Errorf("stream %q (sent as %s) reads back %+v after appending version %d", name, seg, events.Items, ev.LastVersion)
				}
				// Subscriptions.
				var sub struct {
					Name string `json:"name"`
				}
				if name != "a/b" { // a subscription name is one segment; "a/b" is refused
					s.must(201, "PUT", acme+"/subscriptions/"+seg, o, map[string]any{}).json(t, &sub)
					if sub.Name != name {
						t.Errorf("subscription %q (sent as %s) created as %q", name, seg, sub.Name)
					}
					s.must(200, "GET", acme+"/subscriptions/"+seg, o, nil).json(t, &sub)
					if sub.Name != name {
						t.Errorf("subscription %q (sent as %s) read as %q", name, seg, sub.Name)
					}
					s.must(204, "DELETE", acme+"/subscriptions/"+seg, o, nil)
				}
				// Locks, elections, KV.
				var l api.LockResponse
				s.must(200, "POST", acme+"/locks/"+seg, o, map[string]any{"owner": "o", "ttl_ms": 30000}).json(t, &l)
				if l.Name != name {
					t.Errorf("lock %q (sent as %s) taken as %q", name, seg, l.Name)
				}
				s.must(204, "DELETE", acme+"/locks/"+seg, o, map[string]any{"token": l.Token})
				var e api.LeadershipResponse
				s.must(200, "POST", acme+"/elections/"+seg+"/campaign", o, map[string]any{"candidate": "c", "ttl_ms": 30000}).json(t, &e)
				var el api.ElectionResponse
				s.must(200, "GET", acme+"/elections/"+seg, o, nil).json(t, &el)
				if e.Name != name || el.Name != name {
					t.Errorf("election %q (sent as %s): campaign %q, leader %q", name, seg, e.Name, el.Name)
				}
				s.must(204, "POST", acme+"/elections/"+seg+"/resign", o, map[string]any{"token": e.Token})
				var kv api.KVResponse
				s.must(200, "PUT", acme+"/kv/"+seg, o, map[string]any{"value": name}).json(t, &kv)
				if kv.Key != name {
					t.Errorf("key %q (sent as %s) written as %q", name, seg, kv.Key)
				}
				s.must(200, "GET", acme+"/kv/"+seg, o, nil).json(t, &kv)
				if kv.Key != name {
					t.Errorf("key %q (sent as %s) read as %q", name, seg, kv.Key)
				}
				s.must(204, "DELETE", acme+"/kv/"+seg, o, nil)
			})
		}
	}

	// The tenant's slug is a path segment like any other.
	for ename, esc := range escapings {
		if r := s.do("GET", "/api/v1/tenants/"+esc("acme")+"/teams", o, nil); r.Status != 200 {
			t.Errorf("the tenant slug sent %s (%s): %d %s", ename, esc("acme"), r.Status, r.Body)
		}
	}

	// Emails: a team member and an invitation addressed by email.
	s.must(201, "POST", "/api/v1/tenants/acme/teams", o, map[string]string{"slug": "core", "name": "Core"})
	for ename, esc := range escapings {
		tag := strings.NewReplacer(" ", "", "@", "", "+", "", "%", "").Replace(ename)
		t.Run("emails "+ename, func(t *testing.T) {
			s := s.bind(t)
			for _, email := range []string{"ann@example.test", "ann+tag@example.test", "o'neil@example.test"} {
				// An invitation (no account yet), cancelled by its address.
				inv := strings.Replace(email, "@", "."+tag+"@", 1)
				s.must(201, "POST", "/api/v1/tenants/acme/members", o, map[string]string{"email": inv, "role": "viewer"})
				s.must(204, "DELETE", "/api/v1/tenants/acme/invitations/"+esc(inv), o, nil)
				var invs api.List[tenancy.Member]
				s.must(200, "GET", "/api/v1/tenants/acme/invitations", o, nil).json(t, &invs)
				for _, m := range invs.Items {
					if m.Email == inv {
						t.Errorf("invitation of %s still pending after DELETE .../invitations/%s", inv, esc(inv))
					}
				}
				// A team member, removed by address.
				mem := strings.Replace(email, "@", ".m."+tag+"@", 1)
				s.member(o, "acme", mem, tenancy.Viewer)
				var team tenancy.Team
				s.must(200, "POST", "/api/v1/tenants/acme/teams/core/members", o, map[string]string{"email": mem}).json(t, &team)
				s.must(200, "DELETE", "/api/v1/tenants/acme/teams/core/members/"+esc(mem), o, nil).json(t, &team)
				if slices.Contains(team.Members, mem) {
					t.Errorf("%s is still in the team after DELETE .../members/%s: %+v", mem, esc(mem), team)
				}
			}
		})
	}
}

// TestDefect_PathNamesRoundTripInPages: the browser's routes decode names
// with the same one decoder: a stream's page and an invitation cancelled
// by its address.
func TestDefect_PathNamesRoundTripInPages(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	o := s.signup("owner@acme.test", "acme")
	session := defectSignInCookie(t, s, "owner@acme.test")
	_, page := defectFetch(t, s, "GET", "/t/acme/members", session, "")
	m := defectCSRFFieldRE.FindSubmatch(page)
	if m == nil {
		t.Fatal("the members page has no _csrf field")
	}
	csrf := string(m[1])
	escapings := map[string]func(string) string{
		"default":    url.PathEscape,
		"every byte": defectEscapeEvery,
		"@ and +":    func(n string) string { return strings.NewReplacer("@", "%40", "+", "%2B").Replace(url.PathEscape(n)) },
	}
	for _, name := range []string{"a%25b", "a%2525b", "50%", "a/b", "a b", "café", "x?y#z", "a+b"} {
		s.must(201, "POST", "/api/v1/tenants/acme/streams/"+url.PathEscape(name)+"/events", o, map[string]any{"events": []map[string]any{{"type": "t", "data": map[string]int{}}}})
		for ename, esc := range escapings {
			res, body := defectFetch(t, s, "GET", "/t/acme/streams/"+esc(name), session, "")
			if res.StatusCode != 200 || !strings.Contains(string(body), html.EscapeString(name)) {
				t.Errorf("the page of stream %q sent %s (%s): %d", name, ename, esc(name), res.StatusCode)
			}
		}
	}
	i := 0
	for ename, esc := range escapings {
		for _, email := range []string{"ann@example.test", "ann+tag@example.test"} {
			i++
			inv := strings.Replace(email, "@", "."+strconv.Itoa(i)+"@", 1)
			s.must(201, "POST", "/api/v1/tenants/acme/members", o, map[string]string{"email": inv, "role": "viewer"})
			req, err := http.NewRequest("POST", s.URL+"/t/acme/members/invitations/"+esc(inv)+"/cancel", strings.NewReader(url.Values{"_csrf": {csrf}}.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("HX-Request", "true")
			req.AddCookie(session)
			res, err := defectNoRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var invs api.List[tenancy.Member]
			s.must(200, "GET", "/api/v1/tenants/acme/invitations", o, nil).json(t, &invs)
			if slices.ContainsFunc(invs.Items, func(m tenancy.Member) bool { return m.Email == inv }) {
				t.Errorf("cancelling the invitation of %s sent %s (%s): %d, and it is still pending", inv, ename, esc(inv), res.StatusCode)
			}
		}
	}
}
