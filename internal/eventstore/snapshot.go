package eventstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/problem"
)

// SaveSnapshot stores data as the state of stream at version, which must
// not be past the stream's last event. Saving a version again replaces it;
// older snapshots of the stream are dropped.
func (s *Store) SaveSnapshot(ctx context.Context, tenant uuid.UUID, stream string, version int64, data json.RawMessage) error {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if version < 0 {
		f.Add("version", "must not be negative")
	}
	if !validJSON(data, true) {
		f.Add("data", "must be JSON")
	}
	if len(data) > s.cfg.MaxBatchBytes {
		f.Add("data", fmt.Sprintf("must be at most %d bytes", s.cfg.MaxBatchBytes))
	}
	if err := f.Err(); err != nil {
		return err
	}
	// One statement: find the live incarnation, store the snapshot if the
	// version exists, drop older ones, and say what happened.
	var streamVersion *int64
	var saved bool
	found := false
	err := s.inTenant(ctx, tenant, `WITH st AS (
			SELECT id, version FROM event_streams
			WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL AND NOT tombstoned AND version >= 0
		), ins AS (
			INSERT INTO event_snapshots (tenant_id, stream_id, version, data)
			SELECT $1, st.id, $3, $4::text::jsonb FROM st WHERE st.version >= $3
			ON CONFLICT (tenant_id, stream_id, version) DO UPDATE SET data = EXCLUDED.data, created_at = now()
			RETURNING stream_id
		), del AS (
			DELETE FROM event_snapshots x USING ins
			WHERE x.tenant_id = $1 AND x.stream_id = ins.stream_id AND x.version < $3
		)
		SELECT (SELECT version FROM st), EXISTS (SELECT 1 FROM ins)`, []any{tenant, stream, version, string(data)},
		func(r pgx.Rows) error { found = true; return r.Scan(&streamVersion, &saved) })
	if err != nil {
		return fmt.Errorf("save snapshot of %s: %w", stream, mapPgError(err, "data"))
	}
	switch {
	case !found || streamVersion == nil:
		return problem.NotFound("stream", stream)
	case !saved:
		return problem.Invalid(map[string]string{"version": fmt.Sprintf("is past the stream's last version %d", *streamVersion)})
	}
	return nil
}

// LoadSnapshot returns the snapshot of stream with the highest version. A
// stream without one, or a deleted stream, is not found.
func (s *Store) LoadSnapshot(ctx context.Context, tenant uuid.UUID, stream string) (Snapshot, error) {
	f := problem.Fields{}
	checkStream(f, "stream", stream)
	if err := f.Err(); err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Stream: stream}
	found := false
	err := s.inTenant(ctx, tenant, `SELECT x.version, x.data, x.created_at
		FROM event_streams s JOIN event_snapshots x ON x.tenant_id = s.tenant_id AND x.stream_id = s.id
		WHERE s.tenant_id = $1 AND s.name = $2 AND s.deleted_at IS NULL AND NOT s.tombstoned
		ORDER BY x.version DESC LIMIT 1`, []any{tenant, stream},
		func(r pgx.Rows) error { found = true; return r.Scan(&snap.Version, &snap.Data, &snap.CreatedAt) })
	if err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot of %s: %w", stream, err)
	}
	if !found {
		return Snapshot{}, problem.NotFound("snapshot of stream", stream)
	}
	return snap, nil
}
