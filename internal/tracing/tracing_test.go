package tracing

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
)

// Attribute values are encoded as JSON that reads back as the text it
// came from, PostgreSQL's jsonb takes (no NUL), whatever bytes it was.
func TestAppendString_IsJSONThatJSONBTakes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{`quote " and \ slash`, `quote " and \ slash`},
		{"tab\tnew\nline\r", "tab\tnew\nline\r"},
		{"bell\x07", "bell\x07"},
		{"nul\x00here", "nul\ufffdhere"},
		{"bad \xff utf-8", "bad \ufffd utf-8"},
		{"emoji 🎉 and é", "emoji 🎉 and é"},
		{"</script>", "</script>"},
	} {
		b := appendString(nil, c.in)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != c.want {
			t.Errorf("%q encodes as %s, reading back %q (%v), want %q", c.in, b, got, err, c.want)
		}
		if strings.Contains(string(b), `\u0000`) {
			t.Errorf("%q encodes with a NUL escape: %s", c.in, b)
		}
	}
	m := pcommon.NewMap()
	m.PutStr("s", "x")
	m.PutInt("i", -7)
	m.PutDouble("f", 1.5)
	m.PutDouble("nan", 0)
	m.PutBool("b", true)
	m.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
	m.PutEmptySlice("list").AppendEmpty().SetStr("a")
	m.PutEmptyMap("nested").PutInt("n", 1)
	var got map[string]any
	if err := json.Unmarshal(appendMap(nil, m), &got); err != nil {
		t.Fatalf("%s: %v", appendMap(nil, m), err)
	}
	if got["s"] != "x" || got["i"] != float64(-7) || got["f"] != 1.5 || got["b"] != true || got["raw"] != "AAEC" ||
		got["list"].([]any)[0] != "a" || got["nested"].(map[string]any)["n"] != float64(1) {
		t.Fatalf("map reads back as %v", got)
	}
}

func spans(start time.Time, names ...string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	for i, n := range names {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(n)
		sp.SetTraceID(pcommon.TraceID{byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	}
	return td
}

// Retention drops a day's partition once its spans expired, and nothing
// else: a tenant keeping spans one day loses yesterday's trace, one keeping
// them a week keeps its own.
func TestRetention_DropsTheExpiredDaysPartition(t *testing.T) {
	db := dbtest.New(t)
	ctx := t.Context()
	tenant := func(slug string) uuid.UUID {
		var id uuid.UUID
		if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ($1, $1) RETURNING id`, slug).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	short, long := tenant("short"), tenant("long")
	s := NewStore(db)
	day := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return day }
	if _, err := s.SetSettings(ctx, short, Settings{RetentionDays: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []uuid.UUID{short, long} {
		b, err := s.Decode(ctx, tn, spans(day.Add(-time.Hour), "kept?"))
		if err != nil || b.Rejected != 0 {
			t.Fatalf("decode: %v %+v", err, b)
		}
		if err := s.Write(ctx, tn, b); err != nil {
			t.Fatal(err)
		}
	}
	trace := "01000000000000000000000000000000"
	// The next day: nothing has expired yet.
	s.Now = func() time.Time { return day.AddDate(0, 0, 1) }
	if dropped, err := s.DropExpired(ctx); err != nil || len(dropped) != 0 {
		t.Fatalf("a day later dropped %v (%v)", dropped, err)
	}
	// Two days on, the one-day tenant's partition (expiring Dec 1) goes.
	s.Now = func() time.Time { return day.AddDate(0, 0, 2) }
	dropped, err := s.DropExpired(ctx)
	if err != nil || len(dropped) != 1 || dropped[0] != "spans_20261201" {
		t.Fatalf("two days later dropped %v (%v), want spans_20261201", dropped, err)
	}
	if _, err := s.Trace(ctx, short, trace); !isNotFound(err) {
		t.Fatalf("the one-day tenant's trace after retention: %v", err)
	}
	if got, err := s.Trace(ctx, long, trace); err != nil || len(got) != 1 {
		t.Fatalf("the week tenant's trace: %v %v", got, err)
	}
	var rows int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM spans`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d spans left (%v), want 1", rows, err)
	}
	// A span arriving now for the short tenant gets a partition again.
	b, err := s.Decode(ctx, short, spans(s.Now(), "new"))
	if err != nil || s.Write(ctx, short, b) != nil {
		t.Fatalf("write after a drop: %v", err)
	}
}

func isNotFound(err error) bool {
	p, ok := problem.As(err)
	return ok && p.Code == problem.CodeNotFound
}
