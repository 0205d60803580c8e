package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"switchboard/e2e/client"
)

// The event store on the real binary: appends with expected versions, stream
// reads both ways, the tenant's log and a category from a position, and
// another tenant's view. internal/api tests the handlers in depth.
func TestEvents_AppendReadAndTenantIsolation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := t.Context()
	ada := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	bob := signupAndLogin(t, ctx, s, "bob@example.com", "globex")

	event := func(typ string, data any) client.EventInput {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		return client.EventInput{Type: typ, Data: b}
	}
	// appended is every event written, in append order, as stream/version;
	// results the answers of the appends.
	var appended []string
	var results []client.AppendResult
	appendOK := func(t *testing.T, stream string, expected client.ExpectedVersion, wantFirst int64, events ...client.EventInput) client.AppendResult {
		t.Helper()
		res, err := ada.AppendEvents(ctx, "acme", stream, client.AppendRequest{ExpectedVersion: expected, Events: events})
		mustOK(t, "append to "+stream, err)
		wantLast := wantFirst + int64(len(events)) - 1
		if res.FirstVersion != wantFirst || res.LastVersion != wantLast || len(res.EventIDs) != len(events) || res.Duplicate {
			t.Fatalf("append to %s answered %+v, want versions %d..%d and %d new ids", stream, res, wantFirst, wantLast, len(events))
		}
		for i := range events {
			if events[i].ID != "" && res.EventIDs[i] != events[i].ID {
				t.Fatalf("append to %s answered ids %v, want %s at %d", stream, res.EventIDs, events[i].ID, i)
			}
			appended = append(appended, fmt.Sprintf("%s/%d", stream, wantFirst+int64(i)))
		}
		results = append(results, res)
		return res
	}

	placed := event("OrderPlaced", map[string]any{"sku": "A-1", "qty": 2})
	placed.ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
	placed.Metadata = json.RawMessage(`{"correlation_id":"c-1"}`)
	run(t, "append with expected versions", func(t *testing.T) {
		appendOK(t, "order-1001", client.ExpectNoStream, 0, placed, event("OrderPaid", map[string]any{"amount": 42.5}))
		// Stale or wrong expectations are refused and append nothing.
		for _, ev := range []client.ExpectedVersion{client.ExpectVersion(0), client.ExpectVersion(2), client.ExpectNoStream} {
			_, err := ada.AppendEvents(ctx, "acme", "order-1001", client.AppendRequest{ExpectedVersion: ev,
				Events: []client.EventInput{event("OrderPaid", map[string]any{"amount": 1})}})
			wantProblem(t, err, 409, "conflict")
		}
		_, err := ada.AppendEvents(ctx, "acme", "order-1002", client.AppendRequest{ExpectedVersion: client.ExpectStreamExists,
			Events: []client.EventInput{event("OrderPlaced", map[string]any{"sku": "B-2", "qty": 1})}})
		wantProblem(t, err, 409, "conflict")

		appendOK(t, "order-1001", client.ExpectVersion(1), 2, event("OrderShipped", map[string]any{"carrier": "dhl"}))
		appendOK(t, "invoice-7", client.ExpectAny, 0, event("InvoiceIssued", map[string]any{"order": "order-1001"}))
		appendOK(t, "order-1002", client.ExpectNoStream, 0, event("OrderPlaced", map[string]any{"sku": "B-2", "qty": 1}))
	})

	var log []client.Event // the tenant's whole log
	run(t, "the log holds every append in commit order", func(t *testing.T) {
		log = readLogUntil(t, ada, "acme", len(appended))
		if got := streamVersionsOf(log); !slices.Equal(got, appended) {
			t.Fatalf("the log holds %v, want the appends in commit order %v", got, appended)
		}
		for i, e := range log {
			if e.Position != int64(i+1) {
				t.Fatalf("log positions %v: want 1, 2, 3, ...", positionsOf(log))
			}
		}
		// An append answers with the position of its last event, or 0 when
		// the log was held back longer than the server waits.
		i := -1
		for _, res := range results {
			i += int(res.LastVersion-res.FirstVersion) + 1
			if res.Position != 0 && res.Position != log[i].Position {
				t.Errorf("an append answered position %d, its last event %s is at %d", res.Position, appended[i], log[i].Position)
			}
		}
	})

	run(t, "read a stream forwards and backwards", func(t *testing.T) {
		all, err := ada.ReadStream(ctx, "acme", "order-1001", client.ReadStreamOptions{})
		mustOK(t, "read forwards", err)
		if got := versionsOf(all.Items); !slices.Equal(got, []int64{0, 1, 2}) || all.NextCursor != "" {
			t.Fatalf("forwards: versions %v, next %q; want 0 1 2 and no next page", got, all.NextCursor)
		}
		if got := typesOf(all.Items); !slices.Equal(got, []string{"OrderPlaced", "OrderPaid", "OrderShipped"}) {
			t.Fatalf("forwards: types %v", got)
		}
		e := all.Items[0]
		if e.ID != placed.ID || e.Stream != "order-1001" || !sameJSON(t, e.Data, placed.Data) || !sameJSON(t, e.Metadata, placed.Metadata) ||
			time.Since(e.CreatedAt) > time.Minute || e.Position != log[0].Position {
			t.Fatalf("first event %+v, want id %s, data %s, metadata %s and position %d", e, placed.ID, placed.Data, placed.Metadata, log[0].Position)
		}

		back, err := ada.ReadStream(ctx, "acme", "order-1001", client.ReadStreamOptions{Backward: true, Limit: 2})
		mustOK(t, "read backwards", err)
		if got := versionsOf(back.Items); !slices.Equal(got, []int64{2, 1}) || back.NextCursor != "0" {
			t.Fatalf("backwards: versions %v, next %q; want 2 1, next 0", got, back.NextCursor)
		}
		rest, err := ada.ReadStream(ctx, "acme", "order-1001", client.ReadStreamOptions{Backward: true, From: new(int64(0))})
		mustOK(t, "read backwards from 0", err)
		if got := versionsOf(rest.Items); !slices.Equal(got, []int64{0}) {
			t.Fatalf("backwards from 0: versions %v, want 0", got)
		}
		mid, err := ada.ReadStream(ctx, "acme", "order-1001", client.ReadStreamOptions{From: new(int64(1)), Limit: 1})
		mustOK(t, "read forwards from 1", err)
		if got := versionsOf(mid.Items); !slices.Equal(got, []int64{1}) || mid.NextCursor != "2" {
			t.Fatalf("forwards from 1, limit 1: versions %v, next %q; want 1, next 2", got, mid.NextCursor)
		}
	})

	run(t, "read the log and a category from a position", func(t *testing.T) {
		from := log[2].Position
		tail, err := ada.ReadLog(ctx, "acme", client.ReadLogOptions{FromPosition: from, Limit: 2})
		mustOK(t, "read the log from a position", err)
		if got := streamVersionsOf(tail.Items); !slices.Equal(got, appended[2:4]) || tail.NextCursor != fmt.Sprint(from+2) {
			t.Fatalf("the log from %d, limit 2: %v, next %q; want %v, next %d", from, got, tail.NextCursor, appended[2:4], from+2)
		}

		orders, err := ada.ReadLog(ctx, "acme", client.ReadLogOptions{Category: "order", FromPosition: 2})
		mustOK(t, "read the order category", err)
		want := slices.DeleteFunc(slices.Clone(appended[1:]), func(sv string) bool { return sv == "invoice-7/0" })
		if got := streamVersionsOf(orders.Items); !slices.Equal(got, want) {
			t.Fatalf("category order from position 2: %v, want %v", got, want)
		}
		invoices, err := ada.ReadLog(ctx, "acme", client.ReadLogOptions{Category: "invoice"})
		mustOK(t, "read the invoice category", err)
		if got := streamVersionsOf(invoices.Items); !slices.Equal(got, []string{"invoice-7/0"}) {
			t.Fatalf("category invoice: %v", got)
		}
	})

	run(t, "another tenant sees none of it", func(t *testing.T) {
		_, err := bob.ReadStream(ctx, "acme", "order-1001", client.ReadStreamOptions{})
		wantProblem(t, err, 404, "not_found")
		_, err = bob.ReadLog(ctx, "acme", client.ReadLogOptions{})
		wantProblem(t, err, 404, "not_found")
		_, err = bob.AppendEvents(ctx, "acme", "order-1001", client.AppendRequest{Events: []client.EventInput{event("Forged", 1)}})
		wantProblem(t, err, 404, "not_found")
		// globex has streams of its own under the same names, and a log of
		// its own.
		_, err = bob.ReadStream(ctx, "globex", "order-1001", client.ReadStreamOptions{})
		wantProblem(t, err, 404, "not_found")
		res, err := bob.AppendEvents(ctx, "globex", "order-1001", client.AppendRequest{ExpectedVersion: client.ExpectNoStream,
			Events: []client.EventInput{event("OrderPlaced", map[string]any{"sku": "G-1"})}})
		mustOK(t, "bob appends in globex", err)
		if res.FirstVersion != 0 || (res.Position != 0 && res.Position != 1) {
			t.Fatalf("globex's first append answered %+v, want version 0 at position 1", res)
		}
		glog := readLogUntil(t, bob, "globex", 1)
		if got := streamVersionsOf(glog); !slices.Equal(got, []string{"order-1001/0"}) || glog[0].Type != "OrderPlaced" || glog[0].Position != 1 {
			t.Fatalf("globex's log: %+v", glog)
		}
		stillAcme, err := ada.ReadStream(ctx, "acme", "order-1001", client.ReadStreamOptions{})
		mustOK(t, "ada reads order-1001", err)
		if got := versionsOf(stillAcme.Items); !slices.Equal(got, []int64{0, 1, 2}) {
			t.Fatalf("acme's order-1001 after globex wrote its own: versions %v", got)
		}
	})
}

// readLogUntil reads tenant's log from the start until it holds n events:
// an event joins the log moments after its append commits.
func readLogUntil(t *testing.T, c *client.Client, tenant string, n int) []client.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := c.ReadLog(t.Context(), tenant, client.ReadLogOptions{})
		mustOK(t, "read the log of "+tenant, err)
		if len(page.Items) >= n || time.Now().After(deadline) {
			if len(page.Items) != n {
				t.Fatalf("the log of %s holds %d events %v, want %d", tenant, len(page.Items), streamVersionsOf(page.Items), n)
			}
			return page.Items
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func versionsOf(es []client.Event) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Version
	}
	return out
}

func positionsOf(es []client.Event) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Position
	}
	return out
}

func typesOf(es []client.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

func streamVersionsOf(es []client.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s/%d", e.Stream, e.Version)
	}
	return out
}
