package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"switchboard/internal/problem"
)

// visibleSQL is the one rule for which stored events reads return, with e an
// events row and s its stream incarnation: the incarnation is live (not soft
// deleted, not tombstoned) and the event is inside the stream's retention.
// Every read applies it: stream reads, log reads and subscriptions. The
// event's age is compared in seconds, not as now() - max_age: any max_age a
// client may set must work, and that timestamp would leave the calendar.
const visibleSQL = `s.deleted_at IS NULL AND NOT s.tombstoned
	AND (s.truncate_before IS NULL OR e.version >= s.truncate_before)
	AND (s.max_count IS NULL OR e.version > s.version - s.max_count)
	AND (s.max_age_seconds IS NULL OR extract(epoch FROM now() - e.created_at) <= s.max_age_seconds)`

// positionSQL is the log position of the events row e, NULL until the
// sequencer positioned its transaction: the first position of the run its
// transaction got (event_commits), plus the number of the tenant's events
// of that transaction before it. A run is a transaction's events of one
// tenant, numbered in id order.
const positionSQL = `(SELECT c.first_position
		+ (SELECT count(*) FROM events x WHERE x.txid = e.txid AND x.tenant_id = e.tenant_id AND x.id < e.id)
	FROM event_commits c WHERE c.tenant_id = e.tenant_id AND c.txid = e.txid)`

const streamForwardSQL = `SELECT s.version, e.event_id, e.type, e.version, e.position, e.data, e.metadata, e.created_at
	FROM event_streams s
	LEFT JOIN LATERAL (
		SELECT e.event_id, e.type, e.version, ` + positionSQL + ` AS position, e.data, e.metadata, e.created_at
		FROM events e
		WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.id AND e.version >= $3 AND ` + visibleSQL + `
		ORDER BY e.version LIMIT $4
	) e ON true
	WHERE s.tenant_id = $1 AND s.name = $2 AND s.deleted_at IS NULL AND NOT s.tombstoned AND s.version >= 0
	ORDER BY e.version`

const streamBackwardSQL = `SELECT s.version, e.event_id, e.type, e.version, e.position, e.data, e.metadata, e.created_at
	FROM event_streams s
	LEFT JOIN LATERAL (
		SELECT e.event_id, e.type, e.version, ` + positionSQL + ` AS position, e.data, e.metadata, e.created_at
		FROM events e
		WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.id AND e.version <= $3 AND ` + visibleSQL + `
		ORDER BY e.version DESC LIMIT $4
	) e ON true
	WHERE s.tenant_id = $1 AND s.name = $2 AND s.deleted_at IS NULL AND NOT s.tombstoned AND s.version >= 0
	ORDER BY e.version DESC`

// ReadStream returns up to limit events of stream, starting at version from
// (inclusive) and going in direction dir. Backward from a version past the
// end starts at the last event (pass End); forward from past the end is an
// empty page. A stream that does not exist, has no events, or was deleted is
// not found; one whose events are all hidden by its metadata gives empty
// pages.
//
// Stream reads see an append as soon as it committed, before the event has a
// log position (Position 0 until then).
func (s *Store) ReadStream(ctx context.Context, tenant uuid.UUID, stream string, from int64, dir Direction, limit int) ([]Event, error) {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if from < 0 {
		f.Add("from", "must not be negative")
	}
	if dir != Forward && dir != Backward {
		f.Add("direction", `must be "forward" or "backward"`)
	}
	limit = s.checkLimit(f, limit)
	if err := f.Err(); err != nil {
		return nil, err
	}
	q := streamForwardSQL
	if dir == Backward {
		q = streamBackwardSQL
	}
	found := false
	out := make([]Event, 0, min(limit, 64))
	err := s.inTenant(ctx, tenant, q, []any{pgUUID(tenant), stream, from, limit}, func(r pgx.Rows) error {
		var (
			version   int64
			id        *uuid.UUID
			typ       *string
			ver, pos  *int64
			data, md  json.RawMessage
			createdAt *time.Time
		)
		if err := r.Scan(&version, &id, &typ, &ver, &pos, &data, &md, &createdAt); err != nil {
			return err
		}
		found = true
		if id == nil {
			return nil // the stream exists; the page is empty
		}
		e := Event{ID: *id, Stream: stream, Type: *typ, Version: *ver, Data: data, Metadata: md, CreatedAt: *createdAt}
		if pos != nil {
			e.Position = *pos
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	if !found {
		return nil, problem.NotFound("stream", stream)
	}
	return out, nil
}

// visibleSubSQL applies visibleSQL to the events row e through a scalar
// subquery, which the planner cannot turn into a join: log reads then always
// walk the position index in order and stop at the limit.
const visibleSubSQL = `(SELECT ` + visibleSQL + ` FROM event_streams s WHERE s.tenant_id = e.tenant_id AND s.id = e.stream_id)`

// startRunSQL is the first position of the run that holds position $2 (the
// first run when $2 is before it; NULL, so nothing, while the log is
// empty). With coalesce in its place the planner would no longer use it as
// an index condition under row-level security.
const startRunSQL = `(SELECT c0.first_position FROM event_commits c0
	WHERE c0.tenant_id = $1 AND c0.first_position <= greatest($2::bigint, 1) ORDER BY c0.first_position DESC LIMIT 1)`

// startTxnSQL is the transaction of that run.
const startTxnSQL = `(SELECT c0.txid FROM event_commits c0
	WHERE c0.tenant_id = $1 AND c0.first_position <= greatest($2::bigint, 1) ORDER BY c0.first_position DESC LIMIT 1)`

// headSQL wraps a log read ($1 tenant, $2 from, $3 limit) so that it also
// returns the tenant's head, the last position handed out, as of the same
// snapshot: a row with a NULL event when the page is empty. A reader that
// got fewer events than it asked for has seen the whole log up to there.
const headSQL = `SELECT h.head, l.event_id, l.stream, l.type, l.version, l.position, l.data, l.metadata, l.created_at
	FROM (SELECT coalesce((SELECT hd.position FROM event_log_heads hd WHERE hd.tenant_id = $1), 0) AS head) h
	LEFT JOIN LATERAL (%s) l ON true
	ORDER BY l.position`

// Log reads walk the runs in position order from the one holding the first
// position asked for, and each run's events in id order, which is their
// order in the log, until the page is full: a run whose events are all
// hidden (by retention or deletion) must not end the page early, since a
// short page tells the reader it has reached the head.
var logSQL = fmt.Sprintf(headSQL, `SELECT e.event_id, e.stream, e.type, e.version, c.first_position + e.rn - 1 AS position,
			e.data, e.metadata, e.created_at
		FROM (SELECT c.txid, c.first_position FROM event_commits c
			WHERE c.tenant_id = $1 AND c.first_position >= `+startRunSQL+`
			ORDER BY c.first_position) c
		CROSS JOIN LATERAL (
			SELECT e.*, row_number() OVER (ORDER BY e.id) AS rn FROM events e
			WHERE e.txid = c.txid AND e.tenant_id = $1 ORDER BY e.id) e
		WHERE c.first_position + e.rn - 1 >= $2 AND `+visibleSubSQL+`
		ORDER BY c.first_position, e.rn LIMIT $3`)

// Category reads walk the category's events in (txid, id) order (their log
// order) from the run holding the first position asked for, and take each
// one's position from a scalar subquery, so that the walk stays an ordered
// index scan that stops at the limit. Events not positioned yet have none
// and come last.
var categorySQL = fmt.Sprintf(headSQL, `SELECT p.event_id, p.stream, p.type, p.version, p.position, p.data, p.metadata, p.created_at
		FROM (SELECT e.txid, e.id, e.event_id, e.stream, e.type, e.version, e.data, e.metadata, e.created_at,
				`+positionSQL+` AS position
			FROM events e
			WHERE e.tenant_id = $1 AND e.category = $4
				AND e.txid >= `+startTxnSQL+`
				AND `+visibleSubSQL+`
			ORDER BY e.txid, e.id) p
		WHERE p.position >= $2
		ORDER BY p.txid, p.id LIMIT $3`)

// ReadAll returns up to limit events of the tenant's log ($all) from
// position from (inclusive), in position order. Only positioned events are
// returned, so a page never holds an event that commits after a later one
// was read: see the package documentation. Past the end is an empty page.
func (s *Store) ReadAll(ctx context.Context, tenant uuid.UUID, from int64, limit int) ([]Event, error) {
	return s.readLog(ctx, tenant, "", from, limit)
}

// ReadCategory is ReadAll restricted to the streams of one category (see
// CategoryOf).
func (s *Store) ReadCategory(ctx context.Context, tenant uuid.UUID, category string, from int64, limit int) ([]Event, error) {
	if msg := checkName(category); msg != "" {
		return nil, problem.Invalid(map[string]string{"category": msg})
	}
	return s.readLog(ctx, tenant, category, from, limit)
}

func (s *Store) readLog(ctx context.Context, tenant uuid.UUID, category string, from int64, limit int) ([]Event, error) {
	events, _, err := s.readLogHead(ctx, tenant, category, from, limit)
	return events, err
}

// readLogHead is readLog that also returns the tenant's head as of the
// read: when the page is short, every event up to the head was seen.
func (s *Store) readLogHead(ctx context.Context, tenant uuid.UUID, category string, from int64, limit int) ([]Event, int64, error) {
	f := problem.Fields{}
	if from < 0 {
		f.Add("from_position", "must not be negative")
	}
	limit = s.checkLimit(f, limit)
	if err := f.Err(); err != nil {
		return nil, 0, err
	}
	q, args := logSQL, []any{pgUUID(tenant), from, limit}
	if category != "" {
		q, args = categorySQL, append(args, category)
	}
	s.logReads.Add(1)
	out := make([]Event, 0, min(limit, 64))
	var head int64
	err := s.inTenant(ctx, tenant, q, args, func(r pgx.Rows) error {
		var (
			id       pgtype.UUID
			stream   pgtype.Text
			typ      pgtype.Text
			ver, pos pgtype.Int8
			e        Event
			at       pgtype.Timestamptz
		)
		if err := r.Scan(&head, &id, &stream, &typ, &ver, &pos, &e.Data, &e.Metadata, &at); err != nil {
			return err
		}
		if !id.Valid {
			return nil // an empty page
		}
		e.ID, e.Stream, e.Type, e.Version, e.Position, e.CreatedAt = id.Bytes, stream.String, typ.String, ver.Int64, pos.Int64, at.Time
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read log: %w", err)
	}
	return out, head, nil
}

// AwaitPosition waits until the event with id has its log position and
// returns it; ctx bounds the wait. An id the tenant does not have is not
// found.
func (s *Store) AwaitPosition(ctx context.Context, tenant, id uuid.UUID) (int64, error) {
	wake, cancel := s.subs.subscribe(tenant)
	defer cancel()
	poll := time.NewTimer(s.cfg.SequencerPoll)
	defer poll.Stop()
	for {
		var pos *int64
		found := false
		err := s.inTenant(ctx, tenant, `SELECT `+positionSQL+` FROM events e
			WHERE e.tenant_id = $1 AND e.event_id = $2`, []any{pgUUID(tenant), pgUUID(id)},
			func(r pgx.Rows) error { found = true; return r.Scan(&pos) })
		if err != nil {
			return 0, fmt.Errorf("await position: %w", err)
		}
		if !found {
			return 0, problem.NotFound("event", id.String())
		}
		if pos != nil {
			return *pos, nil
		}
		poll.Reset(s.cfg.SequencerPoll)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.life.Done():
			return 0, problem.Errorf(problem.CodeUnavailable, "the event store is shutting down")
		case <-wake:
		case <-poll.C:
		}
	}
}
