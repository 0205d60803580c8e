package tracing_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"switchboard/internal/app"
	"switchboard/internal/app/apptest"
	"switchboard/internal/tracing"
)

// A span stored on one replica reaches the live tail's subscribers on
// another, as their filter says, once; the storing replica's own
// subscribers get it once too.
func TestTail_CrossesReplicas(t *testing.T) {
	a := apptest.Start(t)
	b := apptest.Start(t, apptest.WithDatabase(a.DatabaseURL), apptest.WithKey(a.Key), func(c *app.Config) { c.NodeID = "n2" })
	ctx := t.Context()
	var tenant uuid.UUID
	if err := a.DB.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('relay', 'Relay') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	onB := b.Traces.Tail.Subscribe(tenant, tracing.Filter{Service: "checkout"})
	defer b.Traces.Tail.Unsubscribe(tenant, onB)
	onA := a.Traces.Tail.Subscribe(tenant, tracing.Filter{})
	defer a.Traces.Tail.Unsubscribe(tenant, onA)

	written := 0
	write := func(service, name string) {
		t.Helper()
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(name)
		sp.SetTraceID(pcommon.TraceID(uuid.New()))
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(written + 1)})
		now := time.Now()
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		batch, err := a.Traces.Decode(ctx, tenant, td)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Traces.Write(ctx, tenant, batch); err != nil {
			t.Fatal(err)
		}
		written++
	}
	names := func(batch [][]byte) []string {
		var out []string
		for _, raw := range batch {
			var s tracing.LiveSpan
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("a relayed span %s: %v", raw, err)
			}
			out = append(out, s.Service+"/"+s.Name)
		}
		return out
	}

	// Until b's subscriber is known to a (an announcement through the
	// hub), a's spans stay on a: write until one crosses.
	deadline := time.Now().Add(15 * time.Second)
	var got []string
	for got == nil {
		write("checkout", "first")
		select {
		case batch := <-onB.C:
			got = names(batch)
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no span crossed to the other replica's tail")
			}
		}
	}
	if len(got) != 1 || got[0] != "checkout/first" {
		t.Fatalf("b got %v", got)
	}
	// Only what b's filter wants crosses.
	write("stock", "filtered out")
	write("checkout", "second")
	select {
	case batch := <-onB.C:
		if n := names(batch); len(n) != 1 || n[0] != "checkout/second" {
			t.Fatalf("b got %v, want checkout/second (stock's span is not its filter's)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second span never crossed")
	}
	// a's own subscriber got every span once: nothing came back to it
	// through the hub.
	seen := 0
	for done := false; !done; {
		select {
		case batch := <-onA.C:
			seen += len(batch)
		case <-time.After(300 * time.Millisecond):
			done = true
		}
	}
	if seen != written {
		t.Fatalf("a's own subscriber got %d spans, want %d (each once)", seen, written)
	}
	if s := onB.TakeSkipped(); s != 0 {
		t.Errorf("b was told %d skipped", s)
	}
}
