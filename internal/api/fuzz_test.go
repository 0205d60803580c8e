package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"switchboard/internal/api"
	"switchboard/internal/problem"
)

// FuzzDecodeStrict: whatever the body, decoding a request never panics and
// either succeeds on valid JSON or fails with an "invalid" problem, which the
// API answers as a 400 with a message fit to show.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		`{"email":"ada@example.com","password":"correct horse battery","name":"Ada","tenant":{"slug":"acme","name":"Acme"}}`,
		`{"slug":"core","name":"Core"}`,
		`{"name":"bot","role":"viewer","expires_at":"2030-01-01T00:00:00Z"}`,
		`{"name":"bot","role":"viewer","expires_at":"tomorrow"}`,
		`{"role":"viewer","resource":"dlq","action":"replay","condition":"hasTeam(r.sub, r.obj.Team)","effect":"allow"}`,
		``, ` `, "\n\t", `null`, `true`, `0`, `"s"`, `[]`, `{}`, `[{}]`,
		`{"slug":5}`, `{"slug":null}`, `{"slug":["a"]}`, `{"tenant":"acme"}`, `{"tenant":{"slug":{}}}`, `{"tenant":[]}`,
		`{"owner":true}`, `{"tenant":{"owner":true}}`, `{"":1}`, `{"Slug":"x"}`, `{"slug":"a","slug":"b"}`,
		`{}{}`, `{} x`, `{}}`, `{} `, `{"slug":`, `{"slug":"a",}`, `{'slug':'a'}`, `{"slug":"\ud800"}`, `{"slug":"\u0000"}`,
		"\xff\xfe", "\xef\xbb\xbf{}", `{"expires_at":5}`, `{"expires_at":"2030-13-45T99:99:99Z"}`, `{"name":1e999}`,
		`{"name":-0}`,
		`{"expected_version":"no_stream","events":[{"id":"7d4a2f6e-1d1c-4e57-9b1a-0a3c4b5d6e7f","type":"Placed","data":{"n":1},"metadata":{"correlation_id":"c"}}]}`,
		`{"expected_version":3,"events":[]}`, `{"expected_version":-1}`, `{"expected_version":"soon"}`, `{"expected_version":1.5}`,
		`{"expected_version":{}}`, `{"events":[{"id":"nope"}]}`, `{"events":[{"data":'x'}]}`, `{"version":0,"data":null}`, `{"password":"` + strings.Repeat("p", 300) + `"}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"a":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat("}", 201),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{
			&api.SignupRequest{}, &api.CreateTeamRequest{}, &api.UpdateTeamRequest{}, &api.LoginRequest{},
			&api.AddMemberRequest{}, &api.UpdateMemberRequest{}, &api.CreateTokenRequest{}, &api.CreatePolicyRequest{},
			&api.AppendRequest{}, &api.SnapshotRequest{},
		} {
			err := api.DecodeStrict(body, v)
			if err == nil {
				if !json.Valid(body) {
					t.Fatalf("%T: accepted a body that is not JSON: %q", v, body)
				}
				continue
			}
			pe, ok := problem.As(err)
			if !ok {
				t.Fatalf("%T: %q: error %v (%T) is not a problem", v, body, err, err)
			}
			if pe.Code != problem.CodeInvalid {
				t.Fatalf("%T: %q: code %q, want %q", v, body, pe.Code, problem.CodeInvalid)
			}
			if pe.Message == "" {
				t.Fatalf("%T: %q: a problem without a message", v, body)
			}
		}
	})
}
