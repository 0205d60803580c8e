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

// The position of a stream read's event comes from a scalar subquery: the
// event may not have one yet.
const streamPositionSQL = `(SELECT p.position FROM event_positions p WHERE p.event = e.id)`

const streamForwardSQL = `SELECT s.version, e.event_id, e.type, e.version, e.position, e.data, e.metadata, e.created_at
	FROM event_streams s
	LEFT JOIN LATERAL (
		SELECT e.event_id, e.type, e.version, ` + streamPositionSQL + ` AS position, e.data, e.metadata, e.created_at
		FROM events e
		WHERE e.tenant_id = s.tenant_id AND e.stream_id = s.id AND e.version >= $3 AND ` + visibleSQL + `
		ORDER BY e.version LIMIT $4
	) e ON true
	WHERE s.tenant_id = $1 AND s.name = $2 AND s.deleted_at IS NULL AND NOT s.tombstoned AND s.version >= 0
	ORDER BY e.version`

const streamBackwardSQL = `SELECT s.version, e.event_id, e.type, e.version, e.position, e.data, e.metadata, e.created_at
	FROM event_streams s
	LEFT JOIN LATERAL (
		SELECT e.event_id, e.type, e.version, ` + streamPositionSQL + ` AS position, e.data, e.metadata, e.created_at
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

// Log reads walk event_positions in order and fetch each event by its id.
const logSQL = `SELECT e.event_id, e.stream, e.type, e.version, p.position, e.data, e.metadata, e.created_at
	FROM event_positions p JOIN events e ON e.id = p.event
	WHERE p.tenant_id = $1 AND p.position >= $2 AND ` + visibleSubSQL + `
	ORDER BY p.position LIMIT $3`

const categorySQL = `SELECT e.event_id, e.stream, e.type, e.version, p.position, e.data, e.metadata, e.created_at
	FROM event_positions p JOIN events e ON e.id = p.event
	WHERE p.tenant_id = $1 AND p.category = $4 AND p.position >= $2 AND ` + visibleSubSQL + `
	ORDER BY p.position LIMIT $3`

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
	f := problem.Fields{}
	if from < 0 {
		f.Add("from_position", "must not be negative")
	}
	limit = s.checkLimit(f, limit)
	if err := f.Err(); err != nil {
		return nil, err
	}
	q, args := logSQL, []any{pgUUID(tenant), from, limit}
	if category != "" {
		q, args = categorySQL, append(args, category)
	}
	out := make([]Event, 0, min(limit, 64))
	err := s.inTenant(ctx, tenant, q, args, func(r pgx.Rows) error {
		var e Event
		var id pgtype.UUID
		if err := r.Scan(&id, &e.Stream, &e.Type, &e.Version, &e.Position, &e.Data, &e.Metadata, &e.CreatedAt); err != nil {
			return err
		}
		e.ID = id.Bytes
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
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
		err := s.inTenant(ctx, tenant, `SELECT p.position FROM events e LEFT JOIN event_positions p ON p.event = e.id
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
