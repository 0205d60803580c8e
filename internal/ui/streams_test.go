package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"switchboard/internal/eventstore"
	"switchboard/views"
)

// fakeLog reads positions (ascending) as a log read does: the first n
// events at or after from.
func fakeLog(positions []int64, reads *int) func(int64, int) ([]eventstore.Event, error) {
	return func(from int64, n int) ([]eventstore.Event, error) {
		*reads++
		var out []eventstore.Event
		for _, p := range positions {
			if p >= from && len(out) < n {
				out = append(out, eventstore.Event{Position: p})
			}
		}
		return out, nil
	}
}

func TestLastEvents_FindsTheLastKOfLogsWithGaps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		positions []int64
		k         int
	}{
		{"empty", nil, 20},
		{"fewer than k", []int64{1, 2, 3}, 20},
		{"exactly k", []int64{1, 2, 3}, 3},
		{"one of many", seq(1, 1000), 1},
		{"k of many", seq(1, 100_000), 20},
		{"sparse category", []int64{3, 70, 71, 900, 901, 5000, 123456, 7_000_000_000}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads := 0
			got, err := lastEvents(fakeLog(tc.positions, &reads), tc.k)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.positions[max(0, len(tc.positions)-tc.k):]
			if len(got) != len(want) {
				t.Fatalf("got %d events, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Position != want[i] {
					t.Fatalf("event %d is at %d, want %d", i, got[i].Position, want[i])
				}
			}
			if reads > 80 {
				t.Errorf("took %d reads", reads)
			}
		})
	}
}

func TestLastEvents_PassesErrorsOn(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	_, err := lastEvents(func(int64, int) ([]eventstore.Event, error) {
		calls++
		if calls == 3 {
			return nil, boom
		}
		return make([]eventstore.Event, 5), nil
	}, 5)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func seq(from, to int64) []int64 {
	out := make([]int64, 0, to-from+1)
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

func TestStreamPage_EscapesEventsAndKeepsNumbers(t *testing.T) {
	v := views.StreamView{Name: "<b>x</b>", Category: "<b>x</b>", Version: 0, From: -1, Older: -1,
		Events: []views.EventRow{{Position: 1, Stream: "<b>x</b>", Type: "<script>", CreatedAt: time.Unix(0, 0),
			Data: json.RawMessage(`{"z":12345678901234567890,"a":"</pre><script>"}`)}},
		Tail: views.Tail{Stream: "<b>x</b>", Category: "<b>x</b>", AfterVersion: -1}}
	var b bytes.Buffer
	if err := views.StreamPage(views.Page{Current: "acme"}, v).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, bad := range []string{"<b>x</b>", "<script>\"", "</pre><script>"} {
		if strings.Contains(html, bad) {
			t.Errorf("page holds %q unescaped", bad)
		}
	}
	if !strings.Contains(html, "12345678901234567890") {
		t.Error("the data lost digits")
	}
	if !strings.Contains(html, "{\n  &#34;z&#34;: 12345678901234567890,\n  &#34;a&#34;: ") {
		t.Errorf("the data is not pretty-printed in its own order:\n%s", html)
	}
	if !strings.Contains(html, `data-ws="/api/v1/tenants/acme/subscriptions/live"`) {
		t.Error("no live tail socket")
	}
}

func TestAppendExample_NamesTenantAndWorksAsJSON(t *testing.T) {
	ex := appendExample("http://h:1", "acme")
	if !strings.Contains(ex, "http://h:1/api/v1/tenants/acme/streams/order-1/events") {
		t.Errorf("example: %s", ex)
	}
	body := ex[strings.Index(ex, "-d '")+4 : len(ex)-1]
	var req struct {
		ExpectedVersion eventstore.ExpectedVersion `json:"expected_version"`
		Events          []json.RawMessage          `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil || len(req.Events) != 1 {
		t.Errorf("body %s: %v", body, err)
	}
}
