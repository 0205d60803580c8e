// Package idempotency remembers the responses of requests sent with an
// Idempotency-Key so a client that retries (after a timeout, say) gets the
// first answer instead of a second change.
//
// Invariants:
//   - A key belongs to one caller in one tenant; the same key from another
//     caller is a different key.
//   - A key is bound to the request it first came with (method, path, body):
//     reusing it for a different request is a conflict.
//   - While the first request runs, a second with the same key is told to
//     retry later; a claim older than StaleAfter is taken over, so a crash
//     mid-request does not block the key for a day.
//   - Failures the server caused (5xx) are forgotten, so a retry runs again.
package idempotency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Lifetimes.
const (
	TTL        = 24 * time.Hour
	StaleAfter = time.Minute
)

// Response is a stored answer.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Store keeps idempotency records.
type Store struct {
	db *database.DB
}

// New returns a Store on db.
func New(db *database.DB) *Store { return &Store{db: db} }

// Claim reserves key for a request with hash. It returns the stored response
// when the key was already answered, nil when the caller now owns the key
// and must Complete or Release it, or an error (conflict while the first
// request runs, or when the key came with another request).
func (s *Store) Claim(ctx context.Context, tenant uuid.UUID, caller, key string, hash []byte) (*Response, error) {
	var resp *Response
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (tenant_id, caller, key, request_hash) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, caller, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, created_at = now()
			WHERE idempotency_keys.created_at < now() - $5::interval
			   OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < now() - $6::interval)`,
			tenant, caller, key, hash, TTL.String(), StaleAfter.String())
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var (
			stored []byte
			status *int
			r      Response
		)
		err = tx.QueryRow(ctx, `SELECT request_hash, status, content_type, body FROM idempotency_keys WHERE tenant_id = $1 AND caller = $2 AND key = $3`,
			tenant, caller, key).Scan(&stored, &status, &r.ContentType, &r.Body)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.Errorf(problem.CodeConflict, "the Idempotency-Key is being reused concurrently; retry")
		}
		if err != nil {
			return err
		}
		if string(stored) != string(hash) {
			return problem.Errorf(problem.CodeConflict, "this Idempotency-Key was used with a different request")
		}
		if status == nil {
			e := problem.Errorf(problem.CodeConflict, "a request with this Idempotency-Key is still in progress; retry shortly")
			e.RetryAfter = 1
			return e
		}
		r.Status = *status
		resp = &r
		return nil
	})
	return resp, err
}

// Complete stores the response for a claimed key.
func (s *Store) Complete(ctx context.Context, tenant uuid.UUID, caller, key string, r Response) error {
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET status = $4, content_type = $5, body = $6 WHERE tenant_id = $1 AND caller = $2 AND key = $3`,
			tenant, caller, key, r.Status, r.ContentType, r.Body)
		return err
	})
}

// Release forgets a claimed key, so a retry runs the request again.
func (s *Store) Release(ctx context.Context, tenant uuid.UUID, caller, key string) error {
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND caller = $2 AND key = $3`, tenant, caller, key)
		return err
	})
}

// Sweep deletes expired records of every tenant; run it now and then.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	tag, err := s.db.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval`, TTL.String())
	return tag.RowsAffected(), err
}
