package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// appendScopeSQL is scopeSQL plus the lock wait of the append, in ms.
const appendScopeSQL = `SELECT set_config('role', '` + database.AppRole + `', true), set_config('app.tenant_id', $1, true),
	set_config('lock_timeout', $2, true), ` + noSeqScanSQL

// appendSQL calls the migration's eventstore_append, which holds the logic so
// that an append is one statement.
const appendSQL = `SELECT outcome, current_version, first_version, last_version, last_position
	FROM eventstore_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

type appendArgs struct {
	args []any // eventstore_append's arguments but the last
	ids  []uuid.UUID
}

// call returns the arguments of eventstore_append.
func (a appendArgs) call(wait bool) []any {
	return append(append(make([]any, 0, len(a.args)+1), a.args...), wait)
}

func newAppendArgs(tenant uuid.UUID, stream string, expected ExpectedVersion, events []EventData) appendArgs {
	n := len(events)
	ids := make([]uuid.UUID, n)
	pgIDs := make([]pgtype.UUID, n)
	types := make([]string, n)
	data := make([]string, n)
	meta := make([]*string, n)
	for i, e := range events {
		ids[i] = e.ID
		pgIDs[i] = pgtype.UUID{Bytes: e.ID, Valid: true}
		types[i] = e.Type
		data[i] = string(e.Data)
		if len(e.Metadata) > 0 {
			m := string(e.Metadata)
			meta[i] = &m
		}
	}
	kind := "any"
	switch expected.kind {
	case expectNoStream:
		kind = "no_stream"
	case expectStreamExists:
		kind = "stream_exists"
	case expectExact:
		kind = "exact"
	}
	return appendArgs{
		// pgtype.UUID rather than uuid.UUID: uuid.UUID goes through
		// driver.Valuer, which costs an error value per id on every call.
		args: []any{pgUUID(tenant), stream, CategoryOf(stream), kind, expected.version, pgIDs, types, data, meta},
		ids:  ids,
	}
}

type appendRow struct {
	outcome                string
	current                int64
	first, last, lastPosit *int64
}

func (r *appendRow) scan(row pgx.Row) error {
	return row.Scan(&r.outcome, &r.current, &r.first, &r.last, &r.lastPosit)
}

// Append appends events to stream atomically if the stream is in the state
// expected: all of them or none. It returns the versions the events got.
//
// A mismatch is a problem.CodeConflict naming the stream's current version.
// Appending events whose ids are all stored already, with the same type,
// data and metadata, contiguously in this stream, succeeds again and returns
// the original versions (Duplicate is set); reusing an id for anything else
// is a conflict. A hard-deleted stream is a conflict too.
//
// Append does not wait for the sequencer: the events have their versions
// (and are visible to ReadStream) when it returns, and get their log
// positions moments later. AwaitPosition waits for one.
//
// Appends to different streams share no lock. An append is one round trip:
// the tenant scope and the call of eventstore_append travel in one pipeline,
// run as one implicit transaction. Small appends of one tenant that arrive
// together share that round trip and its commit (see group.go). If ctx ends
// while the append is in flight, it may or may not have committed; retrying
// it with the same ids is safe.
func (s *Store) Append(ctx context.Context, tenant uuid.UUID, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	events = append([]EventData(nil), events...) // ids may be filled in
	if err := s.validateAppend(stream, expected, events); err != nil {
		return AppendResult{}, err
	}
	req := &appendReq{tenant: tenant, stream: stream, expected: expected, args: newAppendArgs(tenant, stream, expected, events)}
	if dl, ok := ctx.Deadline(); ok {
		req.deadline = dl
	}
	if s.groupable(events) {
		if res, done, err := s.appendGrouped(ctx, req); done {
			return res, err
		}
		// Its stream was busy, or its group failed: go alone.
	}
	wait := s.lockWait(req.deadline)
	if wait < time.Millisecond {
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream, context.DeadlineExceeded)
	}
	res, _, err := s.appendAlone(ctx, req, wait, true)
	if err != nil && ctx.Err() != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream, ctx.Err())
	}
	return res, err
}

// lockWait is how long an append may wait for its stream's lock.
func (s *Store) lockWait(deadline time.Time) time.Duration {
	wait := s.cfg.AppendLockWait
	if !deadline.IsZero() {
		wait = min(wait, time.Until(deadline))
	}
	return wait
}

// appendAlone runs one append in its own transaction. Unless block is set it
// does not wait for the stream's lock and reports busy instead.
func (s *Store) appendAlone(ctx context.Context, req *appendReq, wait time.Duration, block bool) (res AppendResult, busy bool, err error) {
	b := &pgx.Batch{}
	b.Queue(appendScopeSQL, req.tenant.String(), strconv.FormatInt(wait.Milliseconds(), 10))
	b.Queue(appendSQL, req.args.call(block)...)
	br := s.db.Pool.SendBatch(ctx, b)
	var r appendRow
	_, err = br.Exec()
	if err == nil {
		err = r.scan(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if database.IsUniqueViolation(err, "events_event_id") {
		// Some id is stored already: a retry, or a reuse. Ask which.
		r, err = s.duplicate(ctx, req.tenant, req.stream, req.args)
	}
	if err != nil {
		return AppendResult{}, false, s.appendError(req.stream, err)
	}
	if r.outcome == "busy" {
		return AppendResult{}, true, nil
	}
	res, err = r.result(req.stream, req.expected, req.args.ids)
	if err == nil && !res.Duplicate {
		s.kickSequencer()
	}
	return res, false, err
}

// duplicateSQL classifies a batch whose ids clash with stored events.
const duplicateSQL = `SELECT outcome, current_version, first_version, last_version, last_position
	FROM eventstore_duplicate($1, $2, $3, $4, $5, $6)`

func (s *Store) duplicate(ctx context.Context, tenant uuid.UUID, stream string, a appendArgs) (appendRow, error) {
	var r appendRow
	err := s.inTenant(ctx, tenant, duplicateSQL, []any{pgUUID(tenant), stream, a.args[5], a.args[6], a.args[7], a.args[8]},
		func(rows pgx.Rows) error { return r.scan(rows) })
	if err != nil {
		return appendRow{}, fmt.Errorf("check for a duplicate append: %w", err)
	}
	if r.outcome == "none" {
		r.outcome = "id_conflict" // the clash is gone already; the client retries
	}
	return r, nil
}

// appendInTx is Append inside a transaction the caller controls, which must
// already be scoped to tenant. Tests use it to hold an append open.
func (s *Store) appendInTx(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error) {
	events = append([]EventData(nil), events...)
	if err := s.validateAppend(stream, expected, events); err != nil {
		return AppendResult{}, err
	}
	a := newAppendArgs(tenant, stream, expected, events)
	var r appendRow
	if err := r.scan(tx.QueryRow(ctx, appendSQL, a.call(true)...)); err != nil {
		return AppendResult{}, s.appendError(stream, err)
	}
	return r.result(stream, expected, a.ids)
}

func (s *Store) appendError(stream string, err error) error {
	if database.IsUniqueViolation(err, "events_event_id") {
		return problem.Errorf(problem.CodeConflict, "an event id in the batch for stream %q is already used by another stream", stream)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
		p := problem.Errorf(problem.CodeUnavailable, "stream %q is busy with other appends; retry", stream)
		p.RetryAfter = 1
		return p
	}
	if err = mapPgError(err, "events"); problem.Code(err) != problem.CodeInternal {
		return err
	}
	return fmt.Errorf("append to %s: %w", stream, err)
}

func (r appendRow) result(stream string, expected ExpectedVersion, ids []uuid.UUID) (AppendResult, error) {
	switch r.outcome {
	case "ok", "duplicate":
		res := AppendResult{FirstVersion: *r.first, LastVersion: *r.last, EventIDs: ids, Duplicate: r.outcome == "duplicate"}
		if r.lastPosit != nil {
			res.Position = *r.lastPosit
		}
		return res, nil
	case "wrong_version":
		at := fmt.Sprintf("version %d", r.current)
		if r.current < 0 {
			at += " (no events)"
		}
		return AppendResult{}, problem.Errorf(problem.CodeConflict,
			"stream %q is at %s, expected %s", stream, at, describeExpected(expected))
	case "id_conflict":
		return AppendResult{}, problem.Errorf(problem.CodeConflict,
			"the batch reuses event ids already stored with other content or in another stream (stream %q is at version %d)", stream, r.current)
	case "tombstoned":
		return AppendResult{}, problem.Errorf(problem.CodeConflict, "stream %q was deleted permanently and cannot be written again", stream)
	}
	return AppendResult{}, fmt.Errorf("append to %s: unknown outcome %q", stream, r.outcome)
}

func describeExpected(e ExpectedVersion) string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "an existing stream"
	case expectExact:
		return fmt.Sprintf("version %d", e.version)
	}
	return "any version"
}

func pgUUID(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: true} }

// kickSequencer wakes the sequencer without blocking: this Store's own
// if it leads, else the one of another replica, through notifyAppends.
func (s *Store) kickSequencer() {
	ch := s.wake
	if !s.leading.Load() {
		ch = s.notify
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notifyAppends tells the sequencer of another replica that appends
// committed through this Store. The notification is a statement of its own,
// after the appends committed, rather than part of each append: a
// transaction that notifies holds a lock, one per database, from just before
// its commit record until its end, so notifying appends would queue on each
// other's commits. Kicks that arrive while one notification is in flight
// are folded into the next.
func (s *Store) notifyAppends(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.notify:
		}
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.db.Pool.Exec(nctx, `SELECT pg_notify('`+appendChannel+`', '')`)
		cancel()
		if err != nil && ctx.Err() == nil {
			// The sequencer's poll finds the events anyway.
			s.log.Warn("notify the event store sequencer", "err", err)
		}
	}
}
