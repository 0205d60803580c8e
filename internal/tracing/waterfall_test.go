package tracing

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func span(id, parent string, startMs, durMs int) Span {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	return Span{LiveSpan: LiveSpan{SpanID: id, ParentSpanID: parent, Name: id,
		Start: t0.Add(time.Duration(startMs) * time.Millisecond), DurationNs: int64(durMs) * int64(time.Millisecond)}}
}

// describe writes rows as "name@depth" with a * for the critical path.
func describe(rows []Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s@%d", r.Name, r.Depth)
		if r.Critical {
			b.WriteByte('*')
		}
		if r.Orphan {
			b.WriteByte('?')
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// The tree is laid out parents first, siblings by start; the critical path
// walks back from the root's end through the child that ended last, then
// the one that ended before that one started.
func TestWaterfall_TreeAndCriticalPath(t *testing.T) {
	spans := []Span{
		span("c", "root", 70, 25),   // ends last: critical
		span("a1", "a", 5, 20),      // under a, which the path crosses at 10 ms
		span("root", "", 0, 100),    //
		span("b", "root", 10, 50),   // ends at 60, before c starts: critical
		span("a", "root", 0, 30),    // ends after b starts, runs before it: critical up to 10 ms
		span("late", "root", 40, 5), // ends before b ends, while b runs: not critical
		span("lost", "gone", 50, 10),
	}
	rows, start, total := Waterfall(spans)
	if got, want := describe(rows), "root@0* a@1* a1@2* b@1* late@1 c@1* lost@0?"; got != want {
		t.Errorf("rows\n got %s\nwant %s", got, want)
	}
	if !start.Equal(spans[2].Start) || total != 100*time.Millisecond {
		t.Errorf("start %v total %v", start, total)
	}
	for _, r := range rows {
		if r.Name == "b" && (r.Offset != 10 || r.Width != 50) {
			t.Errorf("b's bar at %v%% for %v%%, want 10 and 50", r.Offset, r.Width)
		}
		if r.Name == "root" && r.Children != 4 {
			t.Errorf("root has %d children, want 4", r.Children)
		}
	}
}

// Parent ids that form a cycle, or name the span itself, lose no span and
// do not hang.
func TestWaterfall_CyclesAndSelfParents(t *testing.T) {
	spans := []Span{span("x", "y", 0, 10), span("y", "x", 1, 5), span("z", "z", 2, 3)}
	rows, _, _ := Waterfall(spans)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %s", len(rows), describe(rows))
	}
	if rows, _, _ := Waterfall(spans[:2]); len(rows) != 2 {
		t.Fatalf("%d rows, want 2: %s", len(rows), describe(rows))
	}
}

// A deep trace is laid out without recursion.
func TestWaterfall_Deep(t *testing.T) {
	const n = 100000
	spans := make([]Span, n)
	for i := range spans {
		parent := ""
		if i > 0 {
			parent = fmt.Sprint(i - 1)
		}
		spans[i] = span(fmt.Sprint(i), parent, i, n-i)
	}
	rows, _, _ := Waterfall(spans)
	if len(rows) != n || rows[n-1].Depth != n-1 || !rows[n-1].Critical {
		t.Fatalf("%d rows, last at depth %d critical %v", len(rows), rows[n-1].Depth, rows[n-1].Critical)
	}
}

// A relayed summary is measured as the hub will send it: encoding/json
// escapes <, >, & and the line and paragraph separators again.
func TestEncodedLen_CountsWhatJSONEscapes(t *testing.T) {
	for _, raw := range []string{`{"a":"<b>&</b>"}`, "{\"a\":\"\u2028x\u2029\"}", `{"a":"plain"}`} {
		out, err := json.Marshal(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := encodedLen([]byte(raw)); got != len(out) {
			t.Errorf("%s: encodedLen %d, encoded %d bytes (%s)", raw, got, len(out), out)
		}
	}
}
