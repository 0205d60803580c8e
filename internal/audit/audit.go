// Package audit records every change in a tenant — who, what, when, from
// where, before and after — in the same transaction as the change, and lists
// the record per tenant.
//
// Invariant: Record is only ever called with the transaction that makes the
// change, so an audit entry exists if and only if the change committed.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Actor is who makes a change and from where; the HTTP layer puts it in the
// request context with WithActor.
type Actor struct {
	ID         uuid.UUID // user id; zero for system changes
	Name       string    // email, "token:<name>", or "system"
	RemoteAddr string
	RequestID  string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or the system actor.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Name: "system"}
}

// Change describes one change to record.
type Change struct {
	Action     string // e.g. "team.created"
	ObjectKind string // e.g. "team"
	ObjectID   string // e.g. the team slug
	Before     any    // nil when created
	After      any    // nil when deleted
}

// Record writes c for tenant in tx, with the actor from ctx.
func Record(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, c Change) error {
	a := ActorFrom(ctx)
	before, err := toJSON(c.Before)
	if err != nil {
		return err
	}
	after, err := toJSON(c.After)
	if err != nil {
		return err
	}
	var actorID *uuid.UUID
	if a.ID != uuid.Nil {
		actorID = &a.ID
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (tenant_id, actor_id, actor, action, object_kind, object_id, remote_addr, request_id, before, after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		tenant, actorID, a.Name, c.Action, c.ObjectKind, c.ObjectID, a.RemoteAddr, a.RequestID, before, after)
	if err != nil {
		return fmt.Errorf("record audit %s: %w", c.Action, err)
	}
	return nil
}

func toJSON(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: encode: %w", err)
	}
	return b, nil
}

// Entry is one recorded change.
type Entry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	ActorID    *uuid.UUID      `json:"actor_id,omitempty"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	ObjectKind string          `json:"object_kind"`
	ObjectID   string          `json:"object_id"`
	RemoteAddr string          `json:"remote_addr"`
	RequestID  string          `json:"request_id"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
}

// Log reads the audit log.
type Log struct {
	db *database.DB
}

// NewLog returns a Log on db.
func NewLog(db *database.DB) *Log { return &Log{db: db} }

// Add records c for tenant in a transaction of its own, for a change made
// outside PostgreSQL (the Raft group's state, say). Record in the change's
// own transaction wherever there is one.
func (l *Log) Add(ctx context.Context, tenant uuid.UUID, c Change) error {
	return l.db.InTenant(ctx, tenant, func(tx pgx.Tx) error { return Record(ctx, tx, tenant, c) })
}

// List returns up to limit entries of tenant, newest first, starting after
// cursor (empty for the first page), and the cursor of the next page ("" at
// the end).
func (l *Log) List(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]Entry, string, error) {
	before := int64(1<<63 - 1)
	if cursor != "" {
		raw, err := database.DecodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		if before, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return nil, "", problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
		}
	}
	var out []Entry
	err := l.db.ReadTenant(ctx, tenant, `SELECT id, at, actor_id, actor, action, object_kind, object_id, remote_addr, request_id, before, after
		FROM audit_log WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		[]any{tenant, before, limit + 1}, func(r pgx.Rows) error {
			var e Entry
			if err := r.Scan(&e.ID, &e.At, &e.ActorID, &e.Actor, &e.Action, &e.ObjectKind, &e.ObjectID, &e.RemoteAddr, &e.RequestID, &e.Before, &e.After); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, next := database.Page(out, limit, func(e Entry) string { return strconv.FormatInt(e.ID, 10) })
	return out, next, nil
}
