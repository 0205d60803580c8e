package eventstore

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

func ptr[T any](v T) *T { return &v }

func TestMetadata_HidesEventsOnEveryRead(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", NoStream(), evs("E", 0, 6)...) // versions 0..5
	mustAppend(t, s, tenant, "order-2", NoStream(), evs("E", 0, 2)...)
	readAllN(t, s, tenant, 8)

	streamVersions := func() []int64 {
		t.Helper()
		got, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 100)
		if err != nil {
			t.Fatal(err)
		}
		return versions(got)
	}
	logVersions := func() []int64 {
		t.Helper()
		got, err := s.ReadCategory(ctx, tenant, "order", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var v []int64
		for _, e := range got {
			if e.Stream == "order-1" {
				v = append(v, e.Version)
			}
		}
		return v
	}
	cases := []struct {
		name string
		m    StreamMetadata
		want []int64
	}{
		{"max_count", StreamMetadata{MaxCount: ptr[int64](2)}, []int64{4, 5}},
		{"truncate_before", StreamMetadata{TruncateBefore: ptr[int64](3)}, []int64{3, 4, 5}},
		{"both: the stricter wins", StreamMetadata{MaxCount: ptr[int64](4), TruncateBefore: ptr[int64](3)}, []int64{3, 4, 5}},
		{"truncate past the end", StreamMetadata{TruncateBefore: ptr[int64](100)}, nil},
		{"max_age keeps recent events", StreamMetadata{MaxAgeSeconds: ptr[int64](3600)}, []int64{0, 1, 2, 3, 4, 5}},
		{"max_age beyond any date", StreamMetadata{MaxAgeSeconds: ptr[int64](math.MaxInt64)}, []int64{0, 1, 2, 3, 4, 5}},
		{"max_count beyond any version", StreamMetadata{MaxCount: ptr[int64](math.MaxInt64), TruncateBefore: ptr[int64](math.MaxInt64)}, nil},
		{"cleared", StreamMetadata{}, []int64{0, 1, 2, 3, 4, 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.SetMetadata(ctx, tenant, "order-1", tc.m); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetMetadata(ctx, tenant, "order-1"); err != nil || !metaEqual(got, tc.m) {
				t.Fatalf("GetMetadata = %+v, %v", got, err)
			}
			if v := streamVersions(); !slices.Equal(v, tc.want) && !(len(v) == 0 && len(tc.want) == 0) {
				t.Fatalf("stream read versions %v, want %v", v, tc.want)
			}
			if v := logVersions(); !slices.Equal(v, tc.want) {
				t.Fatalf("log read versions %v, want %v", v, tc.want)
			}
			// The other stream is untouched, and the stream's version too.
			if got, err := s.ReadStream(ctx, tenant, "order-2", 0, Forward, 10); err != nil || len(got) != 2 {
				t.Fatalf("order-2 = %v, %v", got, err)
			}
			if si, err := s.GetStream(ctx, tenant, "order-1"); err != nil || si.Version != 5 {
				t.Fatalf("GetStream = %+v, %v", si, err)
			}
		})
	}

	// max_age: age the first three events by an hour (as the owner, outside
	// the app role), then keep 60 seconds.
	if _, err := db.Pool.Exec(ctx, `UPDATE events SET created_at = created_at - interval '1 hour' WHERE tenant_id = $1 AND stream = 'order-1' AND version < 3`, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMetadata(ctx, tenant, "order-1", StreamMetadata{MaxAgeSeconds: ptr[int64](60)}); err != nil {
		t.Fatal(err)
	}
	if v := streamVersions(); !slices.Equal(v, []int64{3, 4, 5}) {
		t.Fatalf("max_age: stream read versions %v", v)
	}
	if v := logVersions(); !slices.Equal(v, []int64{3, 4, 5}) {
		t.Fatalf("max_age: log read versions %v", v)
	}

	for _, bad := range []StreamMetadata{{MaxCount: ptr[int64](0)}, {MaxAgeSeconds: ptr[int64](-1)}, {TruncateBefore: ptr[int64](-1)}} {
		if _, err := s.SetMetadata(ctx, tenant, "order-1", bad); problem.Code(err) != problem.CodeInvalid {
			t.Fatalf("SetMetadata(%+v) = %v, want invalid", bad, err)
		}
	}
	if _, err := s.GetMetadata(ctx, tenant, "order-9"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("GetMetadata of a missing stream = %v", err)
	}
}

func metaEqual(a, b StreamMetadata) bool {
	eq := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.MaxCount, b.MaxCount) && eq(a.MaxAgeSeconds, b.MaxAgeSeconds) && eq(a.TruncateBefore, b.TruncateBefore)
}

func TestMetadata_SetBeforeTheFirstAppend(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	if _, err := s.SetMetadata(ctx, tenant, "order-1", StreamMetadata{MaxCount: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 10); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("a stream with metadata and no events reads as %v, want not found", err)
	}
	if si, err := s.GetStream(ctx, tenant, "order-1"); err != nil || si.Version != -1 {
		t.Fatalf("GetStream = %+v, %v; want version -1", si, err)
	}
	if _, err := s.Append(ctx, tenant, "order-1", StreamExists(), evs("E", 0, 1)); problem.Code(err) != problem.CodeConflict {
		t.Fatalf("stream_exists on a stream without events = %v, want conflict", err)
	}
	mustAppend(t, s, tenant, "order-1", NoStream(), evs("E", 0, 3)...)
	got, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 10)
	if err != nil || !slices.Equal(versions(got), []int64{2}) {
		t.Fatalf("read = %v, %v; want only version 2", versions(got), err)
	}
}

func TestDeleteStream_SoftDeleteThenReuse(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	old := evs("Old", 0, 3)
	mustAppend(t, s, tenant, "order-1", NoStream(), old...)
	mustAppend(t, s, tenant, "order-2", NoStream(), evs("Other", 0, 1)...)
	if err := s.SaveSnapshot(ctx, tenant, "order-1", 2, json.RawMessage(`{"old":true}`)); err != nil {
		t.Fatal(err)
	}
	readAllN(t, s, tenant, 4)

	if err := s.DeleteStream(ctx, tenant, "order-1"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"read":     func() error { _, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 10); return err }(),
		"get":      func() error { _, err := s.GetStream(ctx, tenant, "order-1"); return err }(),
		"snapshot": func() error { _, err := s.LoadSnapshot(ctx, tenant, "order-1"); return err }(),
		"delete":   s.DeleteStream(ctx, tenant, "order-1"),
	} {
		if problem.Code(err) != problem.CodeNotFound {
			t.Fatalf("%s after delete = %v, want not found", name, err)
		}
	}
	if list, _, err := s.ListStreams(ctx, tenant, "", 10); err != nil || len(list) != 1 || list[0].Name != "order-2" {
		t.Fatalf("list after delete = %+v, %v", list, err)
	}
	if got, err := s.ReadAll(ctx, tenant, 0, 10); err != nil || len(got) != 1 || got[0].Stream != "order-2" {
		t.Fatalf("log after delete = %+v, %v; want only order-2", got, err)
	}

	// Reuse: a new incarnation starting at version 0 with no_stream.
	res := mustAppend(t, s, tenant, "order-1", NoStream(), ev("New", 0))
	if res.FirstVersion != 0 {
		t.Fatalf("reused stream starts at version %d", res.FirstVersion)
	}
	got, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 10)
	if err != nil || len(got) != 1 || got[0].Type != "New" {
		t.Fatalf("reused stream reads %+v, %v", got, err)
	}
	if _, err := s.LoadSnapshot(ctx, tenant, "order-1"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("old snapshot visible in the new incarnation: %v", err)
	}
	// The log keeps its order: the new event comes after everything before.
	all := readAllN(t, s, tenant, 2)
	if len(all) != 2 || all[1].Type != "New" || all[1].Position != 5 {
		t.Fatalf("log = %+v; want order-2's event then the new one at position 5", all)
	}
	// The old incarnation's ids stay used.
	if _, err := s.Append(ctx, tenant, "order-1", Any(), old[:1]); problem.Code(err) != problem.CodeConflict {
		t.Fatalf("re-append of a deleted event = %v, want conflict", err)
	}
	// The audit log recorded the delete.
	entries, _, err := audit.NewLog(db).List(ctx, tenant, "", 10)
	if err != nil || len(entries) == 0 || entries[0].Action != "stream.deleted" {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
}

func TestTombstoneStream_NameCanNeverBeWrittenAgain(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", NoStream(), evs("E", 0, 2)...)
	if err := s.TombstoneStream(ctx, tenant, "order-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.TombstoneStream(ctx, tenant, "order-1"); err != nil {
		t.Fatalf("second tombstone: %v", err)
	}
	for _, exp := range []ExpectedVersion{Any(), NoStream(), Exact(1)} {
		_, err := s.Append(ctx, tenant, "order-1", exp, evs("E", 0, 1))
		if p := wantCode(t, err, problem.CodeConflict); !strings.Contains(p.Message, "deleted permanently") {
			t.Fatalf("message %q", p.Message)
		}
	}
	if _, err := s.SetMetadata(ctx, tenant, "order-1", StreamMetadata{}); problem.Code(err) != problem.CodeConflict {
		t.Fatalf("metadata on a tombstone = %v", err)
	}
	if _, err := s.ReadStream(ctx, tenant, "order-1", 0, Forward, 10); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("read of a tombstone = %v", err)
	}
	if err := s.DeleteStream(ctx, tenant, "order-1"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("soft delete of a tombstone = %v", err)
	}
	// A soft-deleted name, and a never-used one, can be tombstoned too.
	mustAppend(t, s, tenant, "order-2", NoStream(), evs("E", 0, 1)...)
	if err := s.DeleteStream(ctx, tenant, "order-2"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"order-2", "order-3"} {
		if err := s.TombstoneStream(ctx, tenant, name); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, tenant, name, Any(), evs("E", 0, 1)); problem.Code(err) != problem.CodeConflict {
			t.Fatalf("append to tombstoned %s = %v", name, err)
		}
	}
}

func TestSnapshots_SaveAndLoadLatest(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	if _, err := s.LoadSnapshot(ctx, tenant, "order-1"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("load without stream = %v", err)
	}
	if err := s.SaveSnapshot(ctx, tenant, "order-1", 0, json.RawMessage(`{}`)); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("save without stream = %v", err)
	}
	mustAppend(t, s, tenant, "order-1", NoStream(), evs("E", 0, 5)...)
	if _, err := s.LoadSnapshot(ctx, tenant, "order-1"); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("load without snapshot = %v", err)
	}
	for _, v := range []int64{1, 3, 2} {
		if err := s.SaveSnapshot(ctx, tenant, "order-1", v, json.RawMessage(`{"v":`+string(rune('0'+v))+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.LoadSnapshot(ctx, tenant, "order-1")
	if err != nil || snap.Version != 3 || string(snap.Data) != `{"v": 3}` || snap.Stream != "order-1" {
		t.Fatalf("latest = %+v (%s), %v; want version 3", snap, snap.Data, err)
	}
	if err := s.SaveSnapshot(ctx, tenant, "order-1", 3, json.RawMessage(`{"v":"again"}`)); err != nil {
		t.Fatal(err)
	}
	if snap, _ := s.LoadSnapshot(ctx, tenant, "order-1"); string(snap.Data) != `{"v": "again"}` {
		t.Fatalf("replaced snapshot = %s", snap.Data)
	}
	for name, err := range map[string]error{
		"past the end":  s.SaveSnapshot(ctx, tenant, "order-1", 5, json.RawMessage(`{}`)),
		"negative":      s.SaveSnapshot(ctx, tenant, "order-1", -1, json.RawMessage(`{}`)),
		"not JSON":      s.SaveSnapshot(ctx, tenant, "order-1", 1, json.RawMessage(`{`)),
		"no data":       s.SaveSnapshot(ctx, tenant, "order-1", 1, nil),
		"bad name":      s.SaveSnapshot(ctx, tenant, "", 1, json.RawMessage(`{}`)),
		"nul character": s.SaveSnapshot(ctx, tenant, "order-1", 1, json.RawMessage(`"\u0000"`)),
	} {
		if problem.Code(err) != problem.CodeInvalid {
			t.Fatalf("%s: %v, want invalid", name, err)
		}
	}
}

// One tenant never sees another's streams, events, positions, snapshots or
// metadata — through the Store, and through row-level security alone.
func TestTenantIsolation(t *testing.T) {
	s, db := newStore(t, testConfig())
	a, b := newTenant(t, db), newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, a, "order-1", NoStream(), evs("E", 0, 3)...)
	if _, err := s.SetMetadata(ctx, a, "order-1", StreamMetadata{MaxCount: ptr[int64](10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, a, "order-1", 1, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	readAllN(t, s, a, 3)

	sub, err := s.Subscribe(ctx, b, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for name, err := range map[string]error{
		"read stream":   func() error { _, err := s.ReadStream(ctx, b, "order-1", 0, Forward, 10); return err }(),
		"get stream":    func() error { _, err := s.GetStream(ctx, b, "order-1"); return err }(),
		"metadata":      func() error { _, err := s.GetMetadata(ctx, b, "order-1"); return err }(),
		"snapshot":      func() error { _, err := s.LoadSnapshot(ctx, b, "order-1"); return err }(),
		"delete":        s.DeleteStream(ctx, b, "order-1"),
		"save snapshot": s.SaveSnapshot(ctx, b, "order-1", 0, json.RawMessage(`{}`)),
	} {
		if problem.Code(err) != problem.CodeNotFound {
			t.Fatalf("tenant b %s: %v, want not found", name, err)
		}
	}
	if got, err := s.ReadAll(ctx, b, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("tenant b log = %v, %v", got, err)
	}
	if got, err := s.ReadCategory(ctx, b, "order", 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("tenant b category = %v, %v", got, err)
	}
	if got, _, err := s.ListStreams(ctx, b, "", 10); err != nil || len(got) != 0 {
		t.Fatalf("tenant b streams = %v, %v", got, err)
	}
	aRes := mustAppend(t, s, a, "order-1", Any(), ev("E", 9))
	if _, err := s.AwaitPosition(ctx, b, aRes.EventIDs[0]); problem.Code(err) != problem.CodeNotFound {
		t.Fatalf("tenant b awaiting a's event: %v", err)
	}
	// The same name in b is b's own stream, with b's own positions.
	res := mustAppend(t, s, b, "order-1", NoStream(), ev("B", 0))
	if res.FirstVersion != 0 {
		t.Fatalf("b's order-1 starts at %d", res.FirstVersion)
	}
	if got := receive(t, sub, 1, 5*time.Second); got[0].Position != 1 || got[0].Type != "B" {
		t.Fatalf("b's subscription got %+v", got[0])
	}
	select {
	case e := <-sub.Events():
		t.Fatalf("b's subscription got %+v", e)
	case <-time.After(100 * time.Millisecond):
	}

	// Row-level security alone, with no tenant filter in the query.
	count := func(tenant string) (n [5]int) {
		t.Helper()
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true)`, database.AppRole, tenant); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_streams),
				(SELECT count(*) FROM event_snapshots), (SELECT count(*) FROM event_log_heads),
				(SELECT count(*) FROM event_commits)`).Scan(&n[0], &n[1], &n[2], &n[3], &n[4])
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(b.String()); n != [5]int{1, 1, 0, 1, 1} {
		t.Fatalf("under RLS tenant b sees events, streams, snapshots, heads, commits = %v; want 1, 1, 0, 1, 1", n)
	}
	if n := count(""); n != [5]int{} {
		t.Fatalf("under RLS with no tenant: %v; want nothing", n)
	}
	// The app role cannot rewrite the log, not even its own tenant's.
	for _, q := range []string{
		`UPDATE events SET type = 'x' WHERE tenant_id = $1`,
		`DELETE FROM events WHERE tenant_id = $1`,
		`INSERT INTO event_commits (tenant_id, txid, first_position, events) SELECT $1, txid, 99, 1 FROM events WHERE tenant_id = $1 LIMIT 1`,
		`UPDATE event_commits SET first_position = 99 WHERE tenant_id = $1`,
		`UPDATE event_log_heads SET position = 0 WHERE tenant_id = $1`,
	} {
		err = db.InTenant(ctx, a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, q, a)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("app role running %q: %v, want permission denied", q, err)
		}
	}
}
