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
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Actor is who makes a change and from where; the HTTP layer puts it in the
// request context with WithActor, and authentication names the caller in it
// (RequestActor).
type Actor struct {
	ID         uuid.UUID // user id; zero for system changes
	Name       string    // email, "token:<name>", or "system"
	RemoteAddr string
	RequestID  string
}

type actorKey struct{}

// actorCtx carries an actor: one allocation for the context and the value.
type actorCtx struct {
	context.Context
	a Actor
}

func (c *actorCtx) Value(key any) any {
	if _, ok := key.(actorKey); ok {
		return &c.a
	}
	return c.Context.Value(key)
}

// WithActor returns ctx carrying a copy of a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return &actorCtx{Context: ctx, a: a}
}

// RequestActor is the actor ctx carries, to be filled in place by a
// request's authentication before its handler runs (so that naming the
// caller costs no new context); nil when ctx carries none. Nothing else may
// change it.
func RequestActor(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// ActorFrom returns the actor in ctx, or the system actor.
func ActorFrom(ctx context.Context) Actor {
	if a := RequestActor(ctx); a != nil {
		return *a
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
	// ID names the entry; it is random, not a count of anything.
	ID         uuid.UUID       `json:"id"`
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

// Filter narrows a search of the audit log; zero fields match everything.
type Filter struct {
	Action string    // entries whose action starts with this ("member." for every member change)
	Actor  string    // entries whose actor contains this, in any case
	Since  time.Time // at or after
	Until  time.Time // before
}

// List returns up to limit entries of tenant, newest first, starting after
// cursor (empty for the first page), and the cursor of the next page ("" at
// the end).
func (l *Log) List(ctx context.Context, tenant uuid.UUID, cursor string, limit int) ([]Entry, string, error) {
	return l.Search(ctx, tenant, Filter{}, cursor, limit)
}

// Search is List of the entries f matches, filtered in the database: a page
// is full whenever that many entries match, however far back they are.
func (l *Log) Search(ctx context.Context, tenant uuid.UUID, f Filter, cursor string, limit int) ([]Entry, string, error) {
	// The key orders newest first: at, then the entry's id, both
	// descending.
	beforeAt := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	beforeID := uuid.Max
	if cursor != "" {
		raw, err := database.DecodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		at, id, ok := strings.Cut(raw, "|")
		t, err1 := time.Parse(time.RFC3339Nano, at)
		u, err2 := uuid.Parse(id)
		if !ok || err1 != nil || err2 != nil {
			return nil, "", problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
		}
		beforeAt, beforeID = t, u
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	var out []Entry
	err := l.db.ReadTenant(ctx, tenant, `SELECT ref, at, actor_id, actor, action, object_kind, object_id, remote_addr, request_id, before, after
		FROM audit_log WHERE tenant_id = $1 AND (at, ref) < ($2, $3)
			AND left(action, length($5)) = $5
			AND ($6 = '' OR strpos(lower(actor), lower($6)) > 0)
			AND ($7::timestamptz IS NULL OR at >= $7)
			AND ($8::timestamptz IS NULL OR at < $8)
		ORDER BY at DESC, ref DESC LIMIT $4`,
		[]any{tenant, beforeAt, beforeID, limit + 1, f.Action, f.Actor, since, until}, func(r pgx.Rows) error {
			var e Entry
			if err := r.Scan(&e.ID, &e.At, &e.ActorID, &e.Actor, &e.Action, &e.ObjectKind, &e.ObjectID, &e.RemoteAddr, &e.RequestID, &e.Before, &e.After); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	if err != nil {
		return nil, "", fmt.Errorf("search audit: %w", err)
	}
	out, next := database.Page(out, limit, func(e Entry) string { return e.At.Format(time.RFC3339Nano) + "|" + e.ID.String() })
	return out, next, nil
}
