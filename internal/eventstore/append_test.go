package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

func TestAppend_ExpectedVersion(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	cases := []struct {
		name     string
		existing int // events already in the stream
		expected ExpectedVersion
		ok       bool
		first    int64
	}{
		{"any on a new stream", 0, Any(), true, 0},
		{"no_stream on a new stream", 0, NoStream(), true, 0},
		{"stream_exists on a new stream", 0, StreamExists(), false, 0},
		{"exact 0 on a new stream", 0, Exact(0), false, 0},
		{"any on a stream at 2", 3, Any(), true, 3},
		{"no_stream on a stream at 2", 3, NoStream(), false, 0},
		{"stream_exists on a stream at 2", 3, StreamExists(), true, 3},
		{"exact 2 on a stream at 2", 3, Exact(2), true, 3},
		{"exact 1 on a stream at 2", 3, Exact(1), false, 0},
		{"exact 5 on a stream at 2", 3, Exact(5), false, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := "case-" + string(rune('a'+i))
			if tc.existing > 0 {
				mustAppend(t, s, tenant, stream, NoStream(), evs("Seeded", 0, tc.existing)...)
			}
			res, err := s.Append(ctx, tenant, stream, tc.expected, evs("Added", 0, 2))
			if !tc.ok {
				p := wantCode(t, err, problem.CodeConflict)
				want := "at version -1"
				if tc.existing > 0 {
					want = "at version 2"
				}
				if !strings.Contains(p.Message, want) {
					t.Fatalf("message %q does not name the current version (%q)", p.Message, want)
				}
				// A rejected append writes nothing.
				got, err := s.ReadStream(ctx, tenant, stream, 0, Forward, 100)
				if tc.existing == 0 {
					wantCode(t, err, problem.CodeNotFound)
				} else if err != nil || len(got) != tc.existing {
					t.Fatalf("after a rejected append the stream holds %d events (%v), want %d", len(got), err, tc.existing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.FirstVersion != tc.first || res.LastVersion != tc.first+1 || res.Duplicate {
				t.Fatalf("result %+v, want versions %d..%d", res, tc.first, tc.first+1)
			}
		})
	}
}

func TestAppend_IdempotentRetryReturnsOriginalVersions(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	batch := []EventData{
		{ID: uuid.New(), Type: "Opened", Data: json.RawMessage(`{"a": 1, "b": [1, 2]}`), Metadata: json.RawMessage(`{"correlation_id": "c1"}`)},
		{ID: uuid.New(), Type: "Paid", Data: json.RawMessage(`{"amount": 5}`)},
	}
	mustAppend(t, s, tenant, "order-1", NoStream(), ev("Created", 0))
	first := mustAppend(t, s, tenant, "order-1", Exact(0), batch...)
	mustAppend(t, s, tenant, "order-1", Exact(2), ev("Shipped", 3))

	// The same batch again, with key order and spacing changed: JSON
	// equality, not byte equality. The stale expected version must not
	// matter, since the original append took the stream past it.
	again := slices.Clone(batch)
	again[0].Data = json.RawMessage(`{"b":[1,2],"a":1}`)
	for _, exp := range []ExpectedVersion{Exact(0), Any(), NoStream()} {
		res, err := s.Append(ctx, tenant, "order-1", exp, again)
		if err != nil {
			t.Fatalf("retry with %s: %v", exp, err)
		}
		if !res.Duplicate || res.FirstVersion != first.FirstVersion || res.LastVersion != first.LastVersion {
			t.Fatalf("retry with %s = %+v, want duplicate of %+v", exp, res, first)
		}
	}
	got, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 100)
	if err != nil || len(got) != 4 {
		t.Fatalf("stream holds %d events (%v), want 4", len(got), err)
	}
	// Once positioned, a retry returns the original position too.
	pos, err := s.AwaitPosition(ctx, tenant, batch[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, tenant, "order-1", Any(), batch)
	if err != nil || res.Position != pos {
		t.Fatalf("retry after positioning = %+v, %v; want position %d", res, err, pos)
	}
}

func TestAppend_ReusedIDIsAConflict(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	a, b := ev("A", 1), ev("B", 2)
	mustAppend(t, s, tenant, "order-1", NoStream(), a, b)

	otherData := a
	otherData.Data = json.RawMessage(`{"n": 99}`)
	otherType := a
	otherType.Type = "Other"
	otherMeta := a
	otherMeta.Metadata = json.RawMessage(`{}`)
	cases := map[string]struct {
		stream string
		batch  []EventData
	}{
		"same id, other data":            {"order-1", []EventData{otherData, b}},
		"same id, other type":            {"order-1", []EventData{otherType, b}},
		"same id, other metadata":        {"order-1", []EventData{otherMeta, b}},
		"same ids, other order":          {"order-1", []EventData{b, a}},
		"stored ids plus a new one":      {"order-1", []EventData{a, b, ev("C", 3)}},
		"same ids in another stream":     {"order-2", []EventData{a, b}},
		"one stored id in another batch": {"order-2", []EventData{ev("C", 3), b}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Append(ctx, tenant, tc.stream, Any(), tc.batch)
			wantCode(t, err, problem.CodeConflict)
		})
	}
	// A stored run of the batch, alone, is a retry of part of it: fine.
	if res, err := s.Append(ctx, tenant, "order-1", Any(), []EventData{b}); err != nil || !res.Duplicate || res.FirstVersion != 1 {
		t.Fatalf("re-append of the second event = %+v, %v; want duplicate at version 1", res, err)
	}
	got, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 100)
	if err != nil || len(got) != 2 {
		t.Fatalf("order-1 holds %d events (%v), want 2", len(got), err)
	}
	if _, err := s.ReadStream(ctx, tenant, "order-2", 0, Forward, 100); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("order-2 was written by rejected appends: %v", err)
	}
}

// holdAppend opens a transaction scoped to tenant, appends in it and leaves
// it open; the caller commits or rolls back.
func holdAppend(t *testing.T, s *Store, db *database.DB, tenant uuid.UUID, stream string, events ...EventData) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if err := database.Scope(ctx, tx, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := s.appendInTx(ctx, tx, tenant, stream, Any(), events); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestAppend_SameIDRacingIntoTwoStreams(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	e := ev("A", 1)
	tx := holdAppend(t, s, db, tenant, "order-1", e)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, tenant, "order-2", Any(), []EventData{e})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let it reach the unique index and wait
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err := <-done
	p := wantCode(t, err, problem.CodeConflict)
	if !strings.Contains(p.Message, "reuses event ids") {
		t.Fatalf("message %q", p.Message)
	}
}

func TestAppend_DifferentStreamsDoNotWaitForEachOther(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	tx := holdAppend(t, s, db, tenant, "order-1", ev("A", 1))

	// Another stream, even a new one in the same category, goes through
	// while order-1's append is open...
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mustAppend(t, s, tenant, "order-2", NoStream(), ev("B", 1))
	if _, err := s.Append(ctx, tenant, "order-2", Exact(0), []EventData{ev("B", 2)}); err != nil {
		t.Fatal(err)
	}
	// ...while order-1 itself waits for it.
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := s.Append(short, tenant, "order-1", Any(), []EventData{ev("A", 2)}); !errors.Is(err, context.DeadlineExceeded) && problem.Code(err) != problem.CodeUnavailable {
		t.Fatalf("append to the locked stream = %v, want it to wait past its deadline", err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The abandoned append did not commit behind its caller's back.
	time.Sleep(100 * time.Millisecond)
	res := mustAppend(t, s, tenant, "order-1", Exact(0), ev("A", 3))
	if res.FirstVersion != 1 {
		t.Fatalf("order-1 append after commit got version %d, want 1", res.FirstVersion)
	}
}

func TestAppend_BatchIsAtomic(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	taken := ev("X", 0)
	mustAppend(t, s, tenant, "other-1", NoStream(), taken)
	// The third event fails in the database, after two were inserted.
	batch := append(evs("A", 0, 2), taken)
	if _, err := s.Append(ctx, tenant, "order-1", Any(), batch); problem.Code(err) != problem.CodeConflict {
		t.Fatalf("err = %v, want conflict", err)
	}
	// The first two fail validation... nothing of either batch is stored.
	bad := append(evs("A", 0, 2), EventData{Type: "B", Data: json.RawMessage(`{`)})
	wantCode(t, func() error { _, err := s.Append(ctx, tenant, "order-1", Any(), bad); return err }(), problem.CodeInvalid)
	if _, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 10); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("order-1 exists after failed appends: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE tenant_id = $1`, tenant).Scan(&n); err != nil || n != 1 {
		t.Fatalf("events stored = %d (%v), want 1", n, err)
	}
}

func TestAppend_GeneratesMissingIDs(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	in := []EventData{{Type: "A", Data: json.RawMessage(`1`)}, {Type: "B", Data: json.RawMessage(`"x"`)}}
	res := mustAppend(t, s, tenant, "order-1", Any(), in...)
	if len(res.EventIDs) != 2 || res.EventIDs[0] == uuid.Nil || res.EventIDs[0] == res.EventIDs[1] {
		t.Fatalf("ids = %v", res.EventIDs)
	}
	if in[0].ID != uuid.Nil {
		t.Fatal("Append changed the caller's slice")
	}
	got, err := s.ReadStream(context.Background(), tenant, "order-1", 0, Forward, 10)
	if err != nil || got[0].ID != res.EventIDs[0] || got[1].ID != res.EventIDs[1] {
		t.Fatalf("stored %v (%v), want ids %v", got, err, res.EventIDs)
	}
}

func TestAppend_RejectsBadInput(t *testing.T) {
	s, err := New(Config{MaxBatchEvents: 3, MaxBatchBytes: 100}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := func() EventData { return ev("Ok", 1) }
	with := func(f func(*EventData)) []EventData { e := ok(); f(&e); return []EventData{e} }
	dup := ok()
	cases := []struct {
		name, stream string
		exp          ExpectedVersion
		events       []EventData
		field        string
	}{
		{"empty stream name", "", Any(), []EventData{ok()}, "stream"},
		{"long stream name", strings.Repeat("a", 201), Any(), []EventData{ok()}, "stream"},
		{"control character", "order\n1", Any(), []EventData{ok()}, "stream"},
		{"DEL character", "order\x7f1", Any(), []EventData{ok()}, "stream"},
		{"not UTF-8", "order-\xff", Any(), []EventData{ok()}, "stream"},
		{"system name", "$all", Any(), []EventData{ok()}, "stream"},
		{"negative version", "s", Exact(-1), []EventData{ok()}, "expected_version"},
		{"no events", "s", Any(), nil, "events"},
		{"too many events", "s", Any(), evs("A", 0, 4), "events"},
		{"too many bytes", "s", Any(), with(func(e *EventData) { e.Data = json.RawMessage(`"` + strings.Repeat("x", 100) + `"`) }), "events"},
		{"empty type", "s", Any(), with(func(e *EventData) { e.Type = "" }), "events[0].type"},
		{"long type", "s", Any(), with(func(e *EventData) { e.Type = strings.Repeat("t", 201) }), "events[0].type"},
		{"control in type", "s", Any(), with(func(e *EventData) { e.Type = "a\tb" }), "events[0].type"},
		{"no data", "s", Any(), with(func(e *EventData) { e.Data = nil }), "events[0].data"},
		{"data not JSON", "s", Any(), with(func(e *EventData) { e.Data = json.RawMessage(`{"a":`) }), "events[0].data"},
		{"metadata not JSON", "s", Any(), with(func(e *EventData) { e.Metadata = json.RawMessage(`nope`) }), "events[0].metadata"},
		{"repeated id", "s", Any(), []EventData{dup, ok(), dup}, "events[2].id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The Store has no database: validation must answer first.
			_, err := s.Append(context.Background(), uuid.New(), tc.stream, tc.exp, tc.events)
			p := wantCode(t, err, problem.CodeInvalid)
			if _, ok := p.Fields[tc.field]; !ok {
				t.Fatalf("fields %v, want %q", p.Fields, tc.field)
			}
		})
	}
}

func TestAppend_NulCharacterIsInvalidNotInternal(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	_, err := s.Append(context.Background(), tenant, "s", Any(), []EventData{{Type: "A", Data: json.RawMessage(`"a\u0000b"`)}})
	wantCode(t, err, problem.CodeInvalid)
}

func TestExpectedVersion_ParseAndJSON(t *testing.T) {
	for _, in := range []string{`"any"`, `"no_stream"`, `"stream_exists"`, `7`, `"7"`, `null`} {
		var e ExpectedVersion
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
	}
	for _, in := range []string{`-1`, `"-1"`, `"x"`, `1.5`, `true`, `{}`} {
		var e ExpectedVersion
		if err := json.Unmarshal([]byte(in), &e); problem.Code(err) != problem.CodeInvalid {
			t.Fatalf("%s: err = %v, want invalid", in, err)
		}
	}
	var zero ExpectedVersion
	if zero != Any() {
		t.Fatal("the zero ExpectedVersion is not Any")
	}
}

func FuzzExpectedVersionJSON(f *testing.F) {
	for _, s := range []string{`"any"`, `"no_stream"`, `"stream_exists"`, `0`, `12`, `"12"`, `null`, `-3`, `"\u0061ny"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var e ExpectedVersion
		if err := json.Unmarshal([]byte(in), &e); err != nil {
			if problem.Code(err) != problem.CodeInvalid && !strings.Contains(err.Error(), "invalid character") && !strings.Contains(err.Error(), "unexpected end") {
				t.Fatalf("%q: unexpected error kind %v", in, err)
			}
			return
		}
		if e.kind == expectExact && e.version < 0 {
			t.Fatalf("%q decoded to a negative version", in)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back ExpectedVersion
		if err := json.Unmarshal(b, &back); err != nil || back != e {
			t.Fatalf("%q -> %s -> %v (%v)", in, b, back, err)
		}
	})
}
