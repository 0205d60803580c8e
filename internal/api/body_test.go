package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchboard/internal/api"
	"switchboard/internal/problem"
)

// rawRequest writes req to a new connection to the test server as it is,
// and returns the connection for reading the answer.
func rawRequest(t *testing.T, s *testServer, req string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestBody_StalledBodyIsCutOff: a client that sends its headers and part of
// its body, then nothing, gets an answer when the body timeout passes
// instead of holding the connection and a handler forever.
func TestBody_StalledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, withBodyTimeout(300*time.Millisecond))
	tok := s.signup("ada@example.com", "acme")
	conn := rawRequest(t, s, "POST /api/v1/tenants/acme/teams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"slug\"")
	// Far longer than the timeout, so only a hang fails the test.
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer res.Body.Close()
	var p struct{ Code, Detail string }
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != 400 || p.Code != "invalid" || !strings.Contains(p.Detail, "in time") {
		t.Fatalf("stalled body: %d %+v %v", res.StatusCode, p, err)
	}
	s.must(404, "GET", "/api/v1/tenants/acme/teams/x", tok, nil)
}

// TestBody_DeadlineEndsWithTheBody: a request whose body arrived may wait
// past the body timeout (a lock acquire's wait_ms, say) and is answered.
func TestBody_DeadlineEndsWithTheBody(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, withBodyTimeout(200*time.Millisecond))
	tok := s.signup("ada@example.com", "acme")
	var held struct{ Token string }
	s.must(200, "POST", "/api/v1/tenants/acme/locks/job", tok, map[string]any{"owner": "a", "ttl_ms": 800}).json(t, &held)
	// The second acquire waits for the first lease to run out, well past
	// the body timeout, on a connection of its own.
	res := s.must(200, "POST", "/api/v1/tenants/acme/locks/job", tok, map[string]any{"owner": "b", "ttl_ms": 5000, "wait_ms": 10000})
	var got struct{ Owner string }
	res.json(t, &got)
	if got.Owner != "b" {
		t.Fatalf("second acquire answered %s", res.Body)
	}
}

// TestBody_OversizedChunkedBodyIsTooLarge: a body over the limit is 413
// however it is framed.
func TestBody_OversizedChunkedBodyIsTooLarge(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	for _, size := range []int{1<<20 + 10, 3 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := `{"slug":"big","name":"` + strings.Repeat("x", size) + `"}`
			req, err := http.NewRequest("POST", s.URL+"/api/v1/tenants/acme/teams", io.MultiReader(bytes.NewReader([]byte(body))))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1 // sent in chunks
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var p struct{ Code string }
			_ = json.NewDecoder(res.Body).Decode(&p)
			if res.StatusCode != 413 || p.Code != "too_large" {
				t.Fatalf("chunked body of %d bytes: %d %q", size, res.StatusCode, p.Code)
			}
		})
	}
	s.must(404, "GET", "/api/v1/tenants/acme/teams/big", tok, nil)
}

// TestDecodeStrict_NumbersOutOfRangeSayWhatFits: a number a field cannot
// take is described by what the field takes, not as "not a number".
func TestDecodeStrict_NumbersOutOfRangeSayWhatFits(t *testing.T) {
	var v struct {
		Token uint64 `json:"fencing_token"`
		TTL   int64  `json:"ttl_ms"`
	}
	for body, want := range map[string][2]string{
		`{"fencing_token":-1}`:   {"fencing_token", "must be a whole number, 0 or more"},
		`{"fencing_token":1.5}`:  {"fencing_token", "must be a whole number, 0 or more"},
		`{"ttl_ms":1e30}`:        {"ttl_ms", "must be a whole number"},
		`{"ttl_ms":"soon"}`:      {"ttl_ms", "must be a number"},
		`{"fencing_token":true}`: {"fencing_token", "must be a number"},
	} {
		pe, ok := problem.As(api.DecodeStrict([]byte(body), &v))
		if !ok || pe.Fields[want[0]] != want[1] {
			t.Errorf("%s: %+v, want %s: %s", body, pe, want[0], want[1])
		}
	}
}
