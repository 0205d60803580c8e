package catalog

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DeadLetterQueue is a queue or topic the catalog names as where others
// dead-letter: a queue's dead_letter_queue, a topic's dead_letter_topic,
// or the target of a dead_letters_to relation.
type DeadLetterQueue struct {
	Tenant    uuid.UUID
	Ref       string // queue:NAME or topic:NAME
	Kind      string // queue or topic
	Name      string
	Broker    string
	VHost     string
	OwnerTeam string
	Labels    map[string]string
	// For lists what dead-letters into it.
	For []string
}

const deadLettersSQL = `WITH dl AS (
	SELECT tenant_id, 'queue:' || (spec->>'dead_letter_queue') AS ref, ref AS from_ref FROM catalog_entities
		WHERE kind = 'queue' AND coalesce(spec->>'dead_letter_queue', '') <> '' %[1]s
	UNION ALL
	SELECT tenant_id, 'topic:' || (spec->>'dead_letter_topic'), ref FROM catalog_entities
		WHERE kind = 'topic' AND coalesce(spec->>'dead_letter_topic', '') <> '' %[1]s
	UNION ALL
	SELECT tenant_id, to_ref, from_ref FROM catalog_relations WHERE type = 'dead_letters_to' %[1]s)
SELECT e.tenant_id, e.ref, e.kind, e.name, coalesce(e.spec->>'broker', ''), coalesce(e.spec->>'vhost', ''), e.owner_team, e.labels,
	array_agg(DISTINCT dl.from_ref ORDER BY dl.from_ref)
FROM dl JOIN catalog_entities e ON e.tenant_id = dl.tenant_id AND e.ref = dl.ref
WHERE e.kind IN ('queue', 'topic') %[2]s
GROUP BY e.tenant_id, e.ref, e.kind, e.name, e.spec, e.owner_team, e.labels
ORDER BY e.tenant_id, e.ref`

func scanDeadLetter(rows pgx.Rows) (DeadLetterQueue, error) {
	var d DeadLetterQueue
	err := rows.Scan(&d.Tenant, &d.Ref, &d.Kind, &d.Name, &d.Broker, &d.VHost, &d.OwnerTeam, &d.Labels, &d.For)
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	return d, err
}

// DeadLetterQueues lists tenant's dead-letter queues and topics.
func (s *Store) DeadLetterQueues(ctx context.Context, tenant uuid.UUID) ([]DeadLetterQueue, error) {
	var out []DeadLetterQueue
	err := s.db.ReadTenant(ctx, tenant, fmt.Sprintf(deadLettersSQL, "AND tenant_id = $1", ""), []any{tenant}, func(rows pgx.Rows) error {
		d, err := scanDeadLetter(rows)
		out = append(out, d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead-letter queues: %w", err)
	}
	return out, nil
}

// DeadLetterQueue returns tenant's dead-letter queue or topic ref (queue:NAME
// or topic:NAME); ok is false when the catalog names no such DLQ.
func (s *Store) DeadLetterQueue(ctx context.Context, tenant uuid.UUID, ref string) (d DeadLetterQueue, ok bool, err error) {
	err = s.db.ReadTenant(ctx, tenant, fmt.Sprintf(deadLettersSQL, "AND tenant_id = $1", "AND e.ref = $2"), []any{tenant, ref}, func(rows pgx.Rows) error {
		var serr error
		d, serr = scanDeadLetter(rows)
		ok = true
		return serr
	})
	if err != nil {
		return DeadLetterQueue{}, false, fmt.Errorf("read dead-letter queue: %w", err)
	}
	return d, ok, nil
}

// AllDeadLetterQueues lists every tenant's dead-letter queues and topics.
// It reads across tenants, as the server (capture), not for a request.
func (s *Store) AllDeadLetterQueues(ctx context.Context) ([]DeadLetterQueue, error) {
	rows, err := s.db.Pool.Query(ctx, fmt.Sprintf(deadLettersSQL, "", ""))
	if err != nil {
		return nil, fmt.Errorf("list dead-letter queues: %w", err)
	}
	defer rows.Close()
	var out []DeadLetterQueue
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
