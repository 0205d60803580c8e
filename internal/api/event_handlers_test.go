package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"switchboard/internal/api"
	"switchboard/internal/eventstore"
)

func events(types ...string) []map[string]any {
	out := make([]map[string]any, len(types))
	for i, t := range types {
		out[i] = map[string]any{"type": t, "data": map[string]any{"i": i}, "metadata": map[string]string{"correlation_id": "c-1"}}
	}
	return out
}

func TestEvents_AppendReadWithExpectedVersions(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	base := "/api/v1/tenants/acme/streams/order-1/events"
	var res api.AppendResponse
	s.must(201, "POST", base+"?await=position", tok, map[string]any{"expected_version": "no_stream", "events": events("Placed", "Paid")}).json(t, &res)
	if res.FirstVersion != 0 || res.LastVersion != 1 || res.Position != 2 {
		t.Fatalf("first append: %+v", res)
	}
	// A stale exact version is a conflict naming the current version.
	r := s.do("POST", base, tok, map[string]any{"expected_version": 0, "events": events("Shipped")})
	if r.Status != 409 || r.problemCode(t) != "conflict" || !strings.Contains(string(r.Body), "1") {
		t.Fatalf("stale version: %d %s", r.Status, r.Body)
	}
	s.must(201, "POST", base, tok, map[string]any{"expected_version": 1, "events": events("Shipped")})
	s.must(409, "POST", base, tok, map[string]any{"expected_version": "no_stream", "events": events("Again")})

	var page api.List[eventstore.Event]
	s.must(200, "GET", base+"?limit=2", tok, nil).json(t, &page)
	if len(page.Items) != 2 || page.Items[0].Type != "Placed" || page.NextCursor != "2" {
		t.Fatalf("forward page: %+v", page)
	}
	s.must(200, "GET", base+"?from="+page.NextCursor, tok, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Type != "Shipped" || page.NextCursor != "" {
		t.Fatalf("second page: %+v", page)
	}
	s.must(200, "GET", base+"?direction=backward&limit=1", tok, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Version != 2 {
		t.Fatalf("backward: %+v", page)
	}
	// Beyond the end is an empty page, not an error.
	s.must(200, "GET", base+"?from=99", tok, nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("beyond the end: %+v", page)
	}
	var streams api.List[eventstore.StreamInfo]
	s.must(200, "GET", "/api/v1/tenants/acme/streams", tok, nil).json(t, &streams)
	if len(streams.Items) != 1 || streams.Items[0].Name != "order-1" || streams.Items[0].Version != 2 || streams.Items[0].LastWriteAt == nil {
		t.Fatalf("streams: %+v", streams)
	}
}

// TestEvents_AppendAnswersWithoutWaitingForThePosition: the answer carries
// the versions at once; the log position only when asked for.
func TestEvents_AppendAnswersWithoutWaitingForThePosition(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	base := "/api/v1/tenants/acme/streams/order-1/events"
	var res api.AppendResponse
	s.must(201, "POST", base, tok, map[string]any{"events": events("Placed")}).json(t, &res)
	if res.FirstVersion != 0 || res.LastVersion != 0 || res.Position != 0 || len(res.EventIDs) != 1 {
		t.Fatalf("append without await: %+v, want version 0 and no position", res)
	}
	s.must(201, "POST", base+"?await=position", tok, map[string]any{"events": events("Paid", "Shipped")}).json(t, &res)
	if res.FirstVersion != 1 || res.LastVersion != 2 || res.Position != 3 {
		t.Fatalf("append with await=position: %+v, want versions 1-2 at position 3", res)
	}
	r := s.do("POST", base+"?await=version", tok, map[string]any{"events": events("Lost")})
	if r.Status != http.StatusBadRequest || r.problemCode(t) != "invalid" || !strings.Contains(string(r.Body), "await") {
		t.Fatalf("await=version: %d %s", r.Status, r.Body)
	}
	var page api.List[eventstore.Event]
	s.must(200, "GET", base, tok, nil).json(t, &page)
	if len(page.Items) != 3 {
		t.Fatalf("the refused append wrote: %+v", page)
	}
}

func TestEvents_IdempotentRetryByEventID(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	body := map[string]any{"events": []map[string]any{{"id": "7d4a2f6e-1d1c-4e57-9b1a-0a3c4b5d6e7f", "type": "Placed", "data": map[string]int{"n": 1}}}}
	var a, b eventstore.AppendResult
	s.must(201, "POST", "/api/v1/tenants/acme/streams/order-9/events", tok, body).json(t, &a)
	s.must(201, "POST", "/api/v1/tenants/acme/streams/order-9/events", tok, body).json(t, &b)
	if !b.Duplicate || b.FirstVersion != a.FirstVersion {
		t.Fatalf("retry: %+v then %+v", a, b)
	}
	body["events"].([]map[string]any)[0]["data"] = map[string]int{"n": 2}
	s.must(409, "POST", "/api/v1/tenants/acme/streams/order-9/events", tok, body)
}

func TestEvents_LogAndCategoryInCommitOrder(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	for i := 0; i < 3; i++ {
		s.must(201, "POST", fmt.Sprintf("/api/v1/tenants/acme/streams/order-%d/events", i), tok, map[string]any{"events": events("Placed")})
		s.must(201, "POST", fmt.Sprintf("/api/v1/tenants/acme/streams/user-%d/events", i), tok, map[string]any{"events": events("Joined")})
	}
	var page api.List[eventstore.Event]
	deadline := time.Now().Add(10 * time.Second)
	for len(page.Items) < 6 && time.Now().Before(deadline) {
		s.must(200, "GET", "/api/v1/tenants/acme/events?from_position=0", tok, nil).json(t, &page)
	}
	if len(page.Items) != 6 {
		t.Fatalf("log has %d events, want 6", len(page.Items))
	}
	for i, e := range page.Items {
		if e.Position != int64(i+1) {
			t.Fatalf("event %d at position %d: %+v", i, e.Position, page.Items)
		}
	}
	s.must(200, "GET", "/api/v1/tenants/acme/events?category=order", tok, nil).json(t, &page)
	if len(page.Items) != 3 {
		t.Fatalf("category order: %d events", len(page.Items))
	}
	// Another tenant sees none of it.
	other := s.signup("bob@example.com", "globex")
	s.must(200, "GET", "/api/v1/tenants/globex/events", other, nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("globex sees %d acme events", len(page.Items))
	}
	s.must(404, "GET", "/api/v1/tenants/acme/events", other, nil)
}

func TestEvents_LiveSubscriptionOverWebSocket(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	s.must(201, "POST", "/api/v1/tenants/acme/streams/order-1/events", tok, map[string]any{"events": events("Placed")})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/tenants/acme/subscriptions/live?from_position=0&category=order"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	// Catch-up first, then live: one event before, two after.
	s.must(201, "POST", "/api/v1/tenants/acme/streams/user-1/events", tok, map[string]any{"events": events("Joined")})
	s.must(201, "POST", "/api/v1/tenants/acme/streams/order-1/events", tok, map[string]any{"events": events("Paid", "Shipped")})
	var got []string
	for len(got) < 3 {
		var e eventstore.Event
		readWS(t, conn, &e)
		if e.Position <= 0 {
			t.Fatalf("event without a position: %+v", e)
		}
		got = append(got, e.Type)
	}
	if strings.Join(got, ",") != "Placed,Paid,Shipped" {
		t.Fatalf("subscription delivered %v", got)
	}
	// Without credentials the upgrade is refused.
	_, res, err := websocket.Dial(ctx, u, nil)
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("anonymous subscription: %v %v", res, err)
	}
}

func TestEvents_SnapshotsMetadataAndDeletes(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	base := "/api/v1/tenants/acme/streams/cart-1"
	s.must(201, "POST", base+"/events", tok, map[string]any{"events": events("A", "B", "C")})
	s.must(204, "PUT", base+"/snapshot", tok, map[string]any{"version": 2, "data": map[string]int{"total": 3}})
	var snap eventstore.Snapshot
	s.must(200, "GET", base+"/snapshot", tok, nil).json(t, &snap)
	if snap.Version != 2 || string(snap.Data) != `{"total":3}` {
		t.Fatalf("snapshot %+v", snap)
	}
	s.must(200, "PUT", base+"/metadata", tok, map[string]any{"max_count": 1})
	var page api.List[eventstore.Event]
	s.must(200, "GET", base+"/events", tok, nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Type != "C" {
		t.Fatalf("max_count 1 shows %+v", page.Items)
	}
	// Soft delete: gone, and the name starts again at version 0.
	s.must(204, "DELETE", base, tok, nil)
	s.must(404, "GET", base+"/metadata", tok, nil)
	var res eventstore.AppendResult
	s.must(201, "POST", base+"/events", tok, map[string]any{"expected_version": "no_stream", "events": events("New")}).json(t, &res)
	if res.FirstVersion != 0 {
		t.Fatalf("reused stream starts at %d", res.FirstVersion)
	}
	// Hard delete: never writable again.
	s.must(204, "DELETE", base+"?hard=true", tok, nil)
	s.must(409, "POST", base+"/events", tok, map[string]any{"events": events("Zombie")})
}

func TestEvents_BadInputIs4xxAndWritesNothing(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	long := strings.Repeat("x", 201)
	big := make([]map[string]any, 1001)
	for i := range big {
		big[i] = map[string]any{"type": "T", "data": 1}
	}
	cases := []struct {
		name, stream string
		body         any
		status       int
	}{
		{"long stream name", long, map[string]any{"events": events("A")}, 400},
		{"control character", url.PathEscape("bad\x01name"), map[string]any{"events": events("A")}, 400},
		{"empty type", "s-1", map[string]any{"events": []any{map[string]any{"type": "", "data": 1}}}, 400},
		{"no events", "s-1", map[string]any{"events": []any{}}, 400},
		{"data not JSON", "s-1", `{"events":[{"type":"A","data":'x'}]}`, 400},
		{"missing data", "s-1", map[string]any{"events": []any{map[string]any{"type": "A"}}}, 400},
		{"negative version", "s-1", map[string]any{"expected_version": -1, "events": events("A")}, 400},
		{"version as text", "s-1", map[string]any{"expected_version": "soon", "events": events("A")}, 400},
		{"bad event id", "s-1", map[string]any{"events": []any{map[string]any{"id": "nope", "type": "A", "data": 1}}}, 400},
		{"batch over 1,000", "s-1", map[string]any{"events": big}, 400},
		{"unknown field", "s-1", map[string]any{"events": events("A"), "stream": "x"}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do("POST", "/api/v1/tenants/acme/streams/"+c.stream+"/events", tok, c.body)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			r.problemCode(t)
		})
	}
	for _, q := range []string{"?from=-1", "?from=abc", "?direction=sideways", "?limit=0"} {
		if r := s.do("GET", "/api/v1/tenants/acme/streams/s-1/events"+q, tok, nil); r.Status != 400 {
			t.Errorf("GET %s: %d %s", q, r.Status, r.Body)
		}
	}
	var n int
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d events written by rejected requests (%v)", n, err)
	}
}

func TestEvents_StreamNamesWithPercentAndSlash(t *testing.T) {
	s := newTestServer(t)
	tok := s.signup("ada@example.com", "acme")
	for _, name := range []string{"50%", "a%41", "a/b", "with space"} {
		var res eventstore.AppendResult
		s.must(201, "POST", "/api/v1/tenants/acme/streams/"+url.PathEscape(name)+"/events", tok, map[string]any{"events": events("A")}).json(t, &res)
		var page api.List[eventstore.Event]
		s.must(200, "GET", "/api/v1/tenants/acme/streams/"+url.PathEscape(name)+"/events", tok, nil).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].Stream != name {
			t.Errorf("stream %q read back as %+v", name, page.Items)
		}
	}
}
