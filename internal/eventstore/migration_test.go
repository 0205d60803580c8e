package eventstore

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"switchboard/internal/database/dbtest"
)

// TestMigration00010_KeepsEveryPosition: a log positioned the old way (a row
// per event, the sequencer stopped inside a transaction) keeps every
// position through migration 00010, the rest of the half-positioned
// transaction is positioned after its tenant's head, and appends after the
// migration continue the count.
func TestMigration00010_KeepsEveryPosition(t *testing.T) {
	ctx := context.Background()
	db, migrateRest := dbtest.NewAt(t, 9)
	a, b := newTenant(t, db), newTenant(t, db)
	// Four transactions, in this order: a's order-1 (3 events), b's
	// invoice-1 (2), a's order-2 (3), a's order-1 again (1).
	appendTx := func(tenant uuid.UUID, stream string, n int) {
		t.Helper()
		ids := make([]uuid.UUID, n)
		types, data, meta := make([]string, n), make([]string, n), make([]*string, n)
		for i := range ids {
			ids[i], types[i], data[i] = uuid.New(), "T", `{"i":1}`
		}
		var outcome string
		err := db.Pool.QueryRow(ctx, `SELECT outcome FROM eventstore_append($1, $2, $3, 'any', 0, $4, $5, $6, $7, true)`,
			tenant, stream, CategoryOf(stream), ids, types, data, meta).Scan(&outcome)
		if err != nil || outcome != "ok" {
			t.Fatalf("append: %s %v", outcome, err)
		}
	}
	appendTx(a, "order-1", 3)
	appendTx(b, "invoice-1", 2)
	appendTx(a, "order-2", 3)
	appendTx(a, "order-1", 1)
	// The old sequencer positioned everything up to the second event of
	// a's order-2 transaction, and stopped there.
	_, err := db.Pool.Exec(ctx, `
		WITH ordered AS (
			SELECT id, tenant_id, category, txid, row_number() OVER (ORDER BY txid, id) AS k,
				row_number() OVER (PARTITION BY tenant_id ORDER BY txid, id) AS pos
			FROM events
		), done AS (SELECT * FROM ordered WHERE k <= 7), pos AS (
			INSERT INTO event_positions (tenant_id, position, event, category) SELECT tenant_id, pos, id, category FROM done
		), heads AS (
			INSERT INTO event_log_heads (tenant_id, position) SELECT tenant_id, max(pos) FROM done GROUP BY tenant_id
		)
		UPDATE event_sequencer SET txid = d.txid, event = d.id FROM (SELECT txid, id FROM done WHERE k = 7) d`)
	if err != nil {
		t.Fatal(err)
	}
	var before []int64 // a's positioned events' ids, in position order
	rows, err := db.Pool.Query(ctx, `SELECT event FROM event_positions WHERE tenant_id = $1 ORDER BY position`, a)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		before = append(before, id)
	}
	if rows.Err() != nil || len(before) != 5 {
		t.Fatalf("a had %d positioned events before the migration, want 5 (%v)", len(before), rows.Err())
	}

	migrateRest()
	s := startStore(t, db, testConfig())
	mustAppend(t, s, a, "order-3", Any(), ev("After", 0))
	got := readAllN(t, s, a, 8)
	checkContiguous(t, "tenant a", got, 1)
	var ids []int64 // a's events' ids in log order
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY txid, id) FROM events WHERE tenant_id = $1`, a).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	for i, id := range before {
		if ids[i] != id {
			t.Fatalf("position %d holds event %d after the migration, %d before", i+1, ids[i], id)
		}
	}
	streams := []string{"order-1", "order-1", "order-1", "order-2", "order-2", "order-2", "order-1", "order-3"}
	for i, e := range got {
		if e.Stream != streams[i] {
			t.Fatalf("position %d is in %s, want %s", e.Position, e.Stream, streams[i])
		}
	}
	gotB := readAllN(t, s, b, 2)
	checkContiguous(t, "tenant b", gotB, 1)
	if len(gotB) != 2 {
		t.Fatalf("tenant b has %d events, want 2", len(gotB))
	}
	// Stream reads see the same positions.
	es, err := s.ReadStream(ctx, a, "order-2", 0, Forward, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if e.Position != int64(4+i) {
			t.Fatalf("order-2 event %d at position %d, want %d", i, e.Position, 4+i)
		}
	}
}

// TestDeletingATenantRemovesItsEvents: events have no foreign key to their
// stream (00010); the streams' trigger removes them with their tenant.
func TestDeletingATenantRemovesItsEvents(t *testing.T) {
	s, db := newStore(t, testConfig())
	ctx := context.Background()
	a, b := newTenant(t, db), newTenant(t, db)
	mustAppend(t, s, a, "order-1", Any(), evs("E", 0, 3)...)
	mustAppend(t, s, b, "order-1", Any(), evs("E", 0, 2)...)
	readAllN(t, s, a, 3)
	if _, err := db.Pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	var left [4]int
	err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events WHERE tenant_id = $1), (SELECT count(*) FROM event_commits WHERE tenant_id = $1),
			(SELECT count(*) FROM event_streams WHERE tenant_id = $1), (SELECT count(*) FROM events WHERE tenant_id = $2)`, a, b).
		Scan(&left[0], &left[1], &left[2], &left[3])
	if err != nil {
		t.Fatal(err)
	}
	if left != [4]int{0, 0, 0, 2} {
		t.Fatalf("after deleting tenant a: a's events, runs, streams = %d, %d, %d; b's events = %d; want 0, 0, 0, 2", left[0], left[1], left[2], left[3])
	}
}
