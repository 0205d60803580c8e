package eventstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"switchboard/internal/problem"
)

func TestReadStream_ForwardAndBackward(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", NoStream(), evs("E", 0, 10)...)
	cases := []struct {
		name  string
		from  int64
		dir   Direction
		limit int
		want  []int64
	}{
		{"forward from 0", 0, Forward, 4, []int64{0, 1, 2, 3}},
		{"forward from 7", 7, Forward, 10, []int64{7, 8, 9}},
		{"forward from the last", 9, Forward, 10, []int64{9}},
		{"forward past the end", 10, Forward, 10, []int64{}},
		{"forward far past the end", 1 << 40, Forward, 10, []int64{}},
		{"backward from the end", End, Backward, 3, []int64{9, 8, 7}},
		{"backward from 2", 2, Backward, 10, []int64{2, 1, 0}},
		{"backward from 0", 0, Backward, 10, []int64{0}},
		{"backward past the end", 100, Backward, 2, []int64{9, 8}},
		{"limit above the maximum is capped", 0, Forward, 1 << 30, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadStream(ctx, tenant, "order-1", tc.from, tc.dir, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if v := versions(got); !slices.Equal(v, tc.want) {
				t.Fatalf("versions %v, want %v", v, tc.want)
			}
			for _, e := range got {
				if e.Stream != "order-1" || e.Type != "E" || string(e.Data) == "" || e.CreatedAt.IsZero() {
					t.Fatalf("event %+v is incomplete", e)
				}
			}
		})
	}
	for name, call := range map[string]func() error{
		"missing stream": func() error { _, err := s.ReadStream(ctx, tenant, "order-2", 0, Forward, 10); return err },
	} {
		if problem.Code(call()) != problem.CodeNotFound {
			t.Fatalf("%s: want not found", name)
		}
	}
	for name, call := range map[string]func() error{
		"negative from":  func() error { _, err := s.ReadStream(ctx, tenant, "order-1", -1, Forward, 10); return err },
		"zero limit":     func() error { _, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 0); return err },
		"bad direction":  func() error { _, err := s.ReadStream(ctx, tenant, "order-1", 0, Direction(7), 10); return err },
		"bad stream":     func() error { _, err := s.ReadStream(ctx, tenant, "a\x00b", 0, Forward, 10); return err },
		"negative pos":   func() error { _, err := s.ReadAll(ctx, tenant, -5, 10); return err },
		"empty category": func() error { _, err := s.ReadCategory(ctx, tenant, "", 0, 10); return err },
	} {
		if problem.Code(call()) != problem.CodeInvalid {
			t.Fatalf("%s: want invalid", name)
		}
	}
}

func TestReadAllAndCategory(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", Any(), evs("O", 0, 2)...)
	mustAppend(t, s, tenant, "invoice-1", Any(), evs("I", 0, 1)...)
	mustAppend(t, s, tenant, "order-2", Any(), evs("O", 2, 2)...)
	mustAppend(t, s, tenant, "orderly", Any(), evs("X", 0, 1)...) // category "orderly", not "order"
	all := readAllN(t, s, tenant, 6)
	for i, e := range all {
		if e.Position != int64(i+1) {
			t.Fatalf("position %d at index %d", e.Position, i)
		}
	}
	page, err := s.ReadAll(ctx, tenant, 3, 2)
	if err != nil || len(page) != 2 || page[0].Position != 3 || page[1].Position != 4 {
		t.Fatalf("page from 3 = %+v, %v", page, err)
	}
	if page, err := s.ReadAll(ctx, tenant, 7, 10); err != nil || len(page) != 0 {
		t.Fatalf("page past the end = %+v, %v; want empty", page, err)
	}
	orders, err := s.ReadCategory(ctx, tenant, "order", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range orders {
		got = append(got, e.Stream)
	}
	if !slices.Equal(got, []string{"order-1", "order-1", "order-2", "order-2"}) {
		t.Fatalf("category order = %v", got)
	}
	if later, err := s.ReadCategory(ctx, tenant, "order", orders[2].Position, 10); err != nil || len(later) != 2 {
		t.Fatalf("category from %d = %v, %v", orders[2].Position, later, err)
	}
	if none, err := s.ReadCategory(ctx, tenant, "nothing", 0, 10); err != nil || len(none) != 0 {
		t.Fatalf("unknown category = %v, %v", none, err)
	}
	if CategoryOf("order-1-2") != "order" || CategoryOf("plain") != "plain" || CategoryOf("-x") != "-x" {
		t.Fatal("CategoryOf")
	}
}

func TestListStreams_Pages(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	names := []string{"c-1", "a-1", "e-1", "b-1", "d-1"}
	for i, n := range names {
		mustAppend(t, s, tenant, n, Any(), evs("E", 0, i+1)...)
	}
	if _, err := s.SetMetadata(ctx, tenant, "f-1", StreamMetadata{}); err != nil { // no events: not listed
		t.Fatal(err)
	}
	var all []StreamInfo
	cursor := ""
	pages := 0
	for {
		page, next, err := s.ListStreams(ctx, tenant, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 3 || len(all) != 5 {
		t.Fatalf("%d pages, %d streams; want 3 and 5", pages, len(all))
	}
	for i, want := range []struct {
		name    string
		version int64
	}{{"a-1", 1}, {"b-1", 3}, {"c-1", 0}, {"d-1", 4}, {"e-1", 2}} {
		si := all[i]
		if si.Name != want.name || si.Version != want.version || si.Category != CategoryOf(want.name) || si.LastWriteAt == nil {
			t.Fatalf("stream %d = %+v, want %s at %d", i, si, want.name, want.version)
		}
	}
	if _, _, err := s.ListStreams(ctx, tenant, "%%%", 2); problem.Code(err) != problem.CodeInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
}

// TestReadLog_HiddenRunsDoNotEndThePage: a page of the log (and a
// subscription's catch-up) goes past commits whose events are all hidden:
// a short page must mean the reader reached the head.
func TestReadLog_HiddenRunsDoNotEndThePage(t *testing.T) {
	cfg := testConfig()
	cfg.SubscriptionBuffer = 4
	s, db := newStore(t, cfg)
	tenant := newTenant(t, db)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		mustAppend(t, s, tenant, "order-1", Any(), ev("Gone", i)) // ten commits
	}
	if err := s.DeleteStream(ctx, tenant, "order-1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, s, tenant, "order-2", Any(), ev("Kept", i))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := s.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still wait for positions", l.Pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, category := range []string{"", "order"} {
		got, err := s.readLog(ctx, tenant, category, 0, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Position != 11 || got[2].Position != 13 {
			t.Fatalf("category %q: a page of 4 from the start holds %d events (%v), want positions 11-13", category, len(got), positions(got))
		}
		sub, err := s.Subscribe(ctx, tenant, 0, category)
		if err != nil {
			t.Fatal(err)
		}
		checkContiguous(t, "subscription", receive(t, sub, 3, 10*time.Second), 11)
		sub.Close()
	}
}
