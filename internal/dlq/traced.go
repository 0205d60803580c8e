package dlq

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
)

// TracedMessage is a dead letter that carried a trace's context.
type TracedMessage struct {
	DLQ    string    `json:"dlq"`
	ID     int64     `json:"id"`
	Status string    `json:"status"`
	Reason string    `json:"reason"`
	At     time.Time `json:"captured_at"`
	// SpanID is the span that sent the message (its traceparent's parent
	// id).
	SpanID      string `json:"span_id"`
	Traceparent string `json:"traceparent"`
}

// maxTraced bounds what a trace's page lists of its dead letters.
const maxTraced = 200

// TracedMessages lists the captured dead letters whose traceparent names
// traceID (32 lower-case hex digits), in the DLQs the caller may read,
// oldest first.
func (s *Store) TracedMessages(ctx context.Context, tenant uuid.UUID, traceID string, allow access.Check) ([]TracedMessage, error) {
	if len(traceID) != 32 || strings.Trim(strings.ToLower(traceID), "0123456789abcdef") != "" {
		return nil, nil
	}
	dlqs, err := s.list(ctx, tenant, allow, "", false)
	if err != nil || len(dlqs) == 0 {
		return nil, err
	}
	refs := make([]string, len(dlqs))
	for i, d := range dlqs {
		refs[i] = d.Ref
	}
	var out []TracedMessage
	err = s.db.ReadTenant(ctx, tenant, `SELECT dlq, id, `+statusSQL+`, reason, captured_at, traceparent FROM dlq_messages
		WHERE tenant_id = $1 AND traceparent <> '' AND traceparent LIKE $2 AND dlq = ANY($3) ORDER BY id LIMIT $4`,
		[]any{tenant, "00-" + strings.ToLower(traceID) + "-%", refs, maxTraced}, func(rows pgx.Rows) error {
			var m TracedMessage
			if err := rows.Scan(&m.DLQ, &m.ID, &m.Status, &m.Reason, &m.At, &m.Traceparent); err != nil {
				return err
			}
			if parts := strings.Split(m.Traceparent, "-"); len(parts) >= 3 {
				m.SpanID = parts[2]
			}
			out = append(out, m)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read a trace's dead letters: %w", err)
	}
	return out, nil
}
