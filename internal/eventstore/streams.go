package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

const streamCols = `name, category, version, created_at, last_write_at, max_count, max_age_seconds, truncate_before`

func scanStream(r pgx.Row) (StreamInfo, error) {
	var si StreamInfo
	m := &si.Metadata
	err := r.Scan(&si.Name, &si.Category, &si.Version, &si.CreatedAt, &si.LastWriteAt, &m.MaxCount, &m.MaxAgeSeconds, &m.TruncateBefore)
	return si, err
}

// GetStream describes a live stream: one with events, or with metadata set
// before its first event (Version -1). Deleted streams are not found.
func (s *Store) GetStream(ctx context.Context, tenant uuid.UUID, stream string) (StreamInfo, error) {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if err := f.Err(); err != nil {
		return StreamInfo{}, err
	}
	var si StreamInfo
	found := false
	err := s.inTenant(ctx, tenant, `SELECT `+streamCols+` FROM event_streams
		WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL AND NOT tombstoned`, []any{tenant, stream},
		func(r pgx.Rows) error {
			var err error
			si, err = scanStream(r)
			found = true
			return err
		})
	if err != nil {
		return StreamInfo{}, fmt.Errorf("get stream %s: %w", stream, err)
	}
	if !found {
		return StreamInfo{}, problem.NotFound("stream", stream)
	}
	return si, nil
}

// ListStreams returns a page of the tenant's streams that hold events,
// ordered by name, starting after cursor ("" for the first page), and the
// cursor of the next page ("" after the last).
func (s *Store) ListStreams(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]StreamInfo, string, error) {
	f := problem.Fields{}
	limit = s.checkLimit(f, limit)
	if err := f.Err(); err != nil {
		return nil, "", err
	}
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]StreamInfo, 0, min(limit+1, 64))
	err = s.inTenant(ctx, tenant, `SELECT `+streamCols+` FROM event_streams
		WHERE tenant_id = $1 AND deleted_at IS NULL AND NOT tombstoned AND version >= 0 AND name > $2
		ORDER BY name LIMIT $3`, []any{tenant, after, limit + 1},
		func(r pgx.Rows) error {
			si, err := scanStream(r)
			out = append(out, si)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list streams: %w", err)
	}
	out, next := database.Page(out, limit, func(si StreamInfo) string { return si.Name })
	return out, next, nil
}

// lockStreamSQL takes the lock eventstore_append takes, with the same key, so
// a change to a stream's row never interleaves with an append to it.
const lockStreamSQL = `SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || '/' || $2, 0)), ` + noSeqScanSQL

type liveRow struct {
	id         int64
	tombstoned bool
	info       StreamInfo
}

// lockLive locks stream and returns its live (or tombstoned) incarnation, if
// any.
func lockLive(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, stream string) (*liveRow, error) {
	if _, err := tx.Exec(ctx, lockStreamSQL, tenant, stream); err != nil {
		return nil, fmt.Errorf("lock stream: %w", err)
	}
	var lr liveRow
	m := &lr.info.Metadata
	err := tx.QueryRow(ctx, `SELECT id, tombstoned, `+streamCols+` FROM event_streams
		WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL`, tenant, stream).
		Scan(&lr.id, &lr.tombstoned, &lr.info.Name, &lr.info.Category, &lr.info.Version, &lr.info.CreatedAt, &lr.info.LastWriteAt,
			&m.MaxCount, &m.MaxAgeSeconds, &m.TruncateBefore)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	return &lr, nil
}

// GetMetadata returns the metadata of a live stream.
func (s *Store) GetMetadata(ctx context.Context, tenant uuid.UUID, stream string) (StreamMetadata, error) {
	si, err := s.GetStream(ctx, tenant, stream)
	return si.Metadata, err
}

// SetMetadata replaces the metadata of stream; nil fields clear a limit.
// Setting it on a stream without events creates the stream with no events,
// so limits can be in place before the first append. A hard-deleted stream
// is a conflict.
func (s *Store) SetMetadata(ctx context.Context, tenant uuid.UUID, stream string, m StreamMetadata) (StreamMetadata, error) {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if err := f.Err(); err != nil {
		return StreamMetadata{}, err
	}
	if err := checkMetadata(m); err != nil {
		return StreamMetadata{}, err
	}
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		lr, err := lockLive(ctx, tx, tenant, stream)
		if err != nil {
			return err
		}
		var before any
		switch {
		case lr == nil:
			_, err = tx.Exec(ctx, `INSERT INTO event_streams (tenant_id, name, category, max_count, max_age_seconds, truncate_before)
				VALUES ($1, $2, $3, $4, $5, $6)`, tenant, stream, CategoryOf(stream), m.MaxCount, m.MaxAgeSeconds, m.TruncateBefore)
		case lr.tombstoned:
			return problem.Errorf(problem.CodeConflict, "stream %q was deleted permanently", stream)
		default:
			before = lr.info.Metadata
			_, err = tx.Exec(ctx, `UPDATE event_streams SET max_count = $3, max_age_seconds = $4, truncate_before = $5
				WHERE tenant_id = $1 AND id = $2`, tenant, lr.id, m.MaxCount, m.MaxAgeSeconds, m.TruncateBefore)
		}
		if err != nil {
			return fmt.Errorf("set metadata of %s: %w", stream, err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "stream.metadata_set", ObjectKind: "stream", ObjectID: stream, Before: before, After: m})
	})
	if err != nil {
		return StreamMetadata{}, err
	}
	return m, nil
}

// DeleteStream soft-deletes stream: it reads as not found from now on and
// its events leave every read, the log included, but stay stored and keep
// their positions. The name can be written again; the new stream starts at
// version 0 and never shows the old events. Deleting a stream that does not
// exist (or was hard-deleted) is not found.
func (s *Store) DeleteStream(ctx context.Context, tenant uuid.UUID, stream string) error {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if err := f.Err(); err != nil {
		return err
	}
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		lr, err := lockLive(ctx, tx, tenant, stream)
		if err != nil {
			return err
		}
		if lr == nil || lr.tombstoned {
			return problem.NotFound("stream", stream)
		}
		if _, err := tx.Exec(ctx, `UPDATE event_streams SET deleted_at = now() WHERE tenant_id = $1 AND id = $2`, tenant, lr.id); err != nil {
			return fmt.Errorf("delete stream %s: %w", stream, err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "stream.deleted", ObjectKind: "stream", ObjectID: stream, Before: lr.info})
	})
}

// TombstoneStream hard-deletes stream: it reads as not found and its name
// can never be written again (appends and SetMetadata are conflicts). It
// works on a name that is not live too (never used, or soft-deleted), to
// reserve it, and is a no-op on a tombstone.
func (s *Store) TombstoneStream(ctx context.Context, tenant uuid.UUID, stream string) error {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if err := f.Err(); err != nil {
		return err
	}
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		lr, err := lockLive(ctx, tx, tenant, stream)
		if err != nil {
			return err
		}
		var before any
		switch {
		case lr == nil:
			_, err = tx.Exec(ctx, `INSERT INTO event_streams (tenant_id, name, category, tombstoned) VALUES ($1, $2, $3, true)`,
				tenant, stream, CategoryOf(stream))
		case lr.tombstoned:
			return nil
		default:
			before = lr.info
			_, err = tx.Exec(ctx, `UPDATE event_streams SET tombstoned = true WHERE tenant_id = $1 AND id = $2`, tenant, lr.id)
		}
		if err != nil {
			return fmt.Errorf("tombstone stream %s: %w", stream, err)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "stream.tombstoned", ObjectKind: "stream", ObjectID: stream, Before: before})
	})
}
