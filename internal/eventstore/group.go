package eventstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Group commit. A commit costs a WAL flush and a round trip, which is most of
// the cost of a small append, so small appends of one tenant that are waiting
// at the same moment run together: one call of eventstore_append_group, one
// transaction, one commit. There is no timer and no extra wait. An append
// queues, then either some running flush takes it, or its own goroutine
// takes a flush slot and runs the queue's oldest group (its own or others').
// With few appends in flight every group holds one append and runs alone,
// exactly as without grouping.
//
// Each append keeps its own outcome: the group function checks every append
// on its own and writes only those that pass, so one append's version
// mismatch does not touch the others. Appends whose stream is locked by
// another transaction come back 'busy' (the group never waits for a lock,
// so one slow stream cannot hold up appends to others) and run alone. If the
// group fails as a whole (an event id used twice, say), every append in it
// runs alone and meets its own error.

const (
	// groupMaxEvents bounds the events of an append that may be grouped,
	// and maxGroupEvents those of a whole group: big batches gain nothing
	// from sharing a commit and would slow the small ones down.
	groupMaxEvents = 16
	maxGroupEvents = 256
	// flushTimeout bounds a flush, which runs for several callers and so
	// cannot use any one caller's context.
	flushTimeout = 30 * time.Second
)

type appendReq struct {
	tenant   uuid.UUID
	stream   string
	expected ExpectedVersion
	args     appendArgs
	deadline time.Time // the caller's, or zero

	// Set by the flush before done is closed.
	res   AppendResult
	err   error
	alone bool // run it alone: its stream was busy, or its group failed
	done  chan struct{}
}

// combiner queues appends for group commit.
type combiner struct {
	mu    sync.Mutex // guards queue
	queue []*appendReq
	// slots holds a token per running flush; its capacity is
	// Config.AppendFlushers.
	slots chan struct{}
}

func (c *combiner) push(r *appendReq) {
	c.mu.Lock()
	c.queue = append(c.queue, r)
	c.mu.Unlock()
}

// remove takes r out of the queue and reports whether it was still there.
func (c *combiner) remove(r *appendReq) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.queue {
		if q == r {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return true
		}
	}
	return false
}

// take removes and returns the oldest queued append with as many later ones
// of the same tenant as fit in a group.
func (c *combiner) take(maxReqs int) []*appendReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return nil
	}
	tenant := c.queue[0].tenant
	var group []*appendReq
	events := 0
	rest := c.queue[:0]
	for _, r := range c.queue {
		n := len(r.args.ids)
		if r.tenant == tenant && len(group) < maxReqs && events+n <= maxGroupEvents {
			group = append(group, r)
			events += n
		} else {
			rest = append(rest, r)
		}
	}
	clear(c.queue[len(rest):])
	c.queue = rest
	return group
}

func (s *Store) groupable(events []EventData) bool {
	return s.cfg.MaxGroupSize > 1 && len(events) <= groupMaxEvents
}

// appendGrouped queues req for group commit and returns its outcome, or
// done=false when req must run alone.
func (s *Store) appendGrouped(ctx context.Context, req *appendReq) (res AppendResult, done bool, err error) {
	c := &s.comb
	req.done = make(chan struct{})
	c.push(req)
	for {
		select {
		case <-req.done:
			return req.res, !req.alone, req.err
		case <-ctx.Done():
			return s.abandon(ctx, req)
		case c.slots <- struct{}{}:
			g := c.take(s.cfg.MaxGroupSize)
			if len(g) > 0 {
				s.flush(g)
				<-c.slots
				continue
			}
			<-c.slots
			// The queue is empty, so a running flush has req: wait for it.
			select {
			case <-req.done:
				return req.res, !req.alone, req.err
			case <-ctx.Done():
				return s.abandon(ctx, req)
			}
		}
	}
}

// abandon answers a caller whose context ended while its append waited.
func (s *Store) abandon(ctx context.Context, req *appendReq) (AppendResult, bool, error) {
	if !s.comb.remove(req) {
		// Already in a flush: it may still commit.
		select {
		case <-req.done:
			if !req.alone {
				return req.res, true, req.err
			}
		default:
		}
	}
	return AppendResult{}, true, fmt.Errorf("append to %s: %w", req.stream, ctx.Err())
}

// flush runs a group and completes each of its appends.
func (s *Store) flush(g []*appendReq) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	live := g[:0]
	for _, r := range g {
		if !r.deadline.IsZero() && time.Until(r.deadline) < time.Millisecond {
			r.err = fmt.Errorf("append to %s: %w", r.stream, context.DeadlineExceeded)
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		// Alone, but still without waiting for the stream's lock: a flush
		// never waits for one, or it would hold up the appends queued
		// behind it. A busy stream sends the append back to its caller.
		r := live[0]
		r.res, r.alone, r.err = s.appendAlone(ctx, r, s.lockWait(r.deadline), false)
		close(r.done)
		return
	}
	s.groupFlushes.Add(1)
	rows, err := s.appendGroup(ctx, live)
	wrote := false
	for i, r := range live {
		switch {
		case err != nil || rows[i].outcome == "busy":
			r.alone = true
		default:
			r.res, r.err = rows[i].result(r.stream, r.expected, r.args.ids)
			wrote = wrote || (r.err == nil && !r.res.Duplicate)
		}
		close(r.done)
	}
	if wrote {
		s.kickSequencer()
	}
}

const appendGroupSQL = `SELECT req, outcome, current_version, first_version, last_version, last_position
	FROM eventstore_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

// appendGroup runs the appends of g (one tenant) in one transaction and
// returns a row per append, in order.
func (s *Store) appendGroup(ctx context.Context, g []*appendReq) ([]appendRow, error) {
	var (
		streams, categories, expects []string
		versions                     []int64
		counts                       []int32
		ids                          []pgtype.UUID
		types, data                  []string
		meta                         []*string
	)
	for _, r := range g {
		a := r.args.args // as built by newAppendArgs
		streams = append(streams, r.stream)
		categories = append(categories, a[2].(string))
		expects = append(expects, a[3].(string))
		versions = append(versions, a[4].(int64))
		counts = append(counts, int32(len(r.args.ids)))
		ids = append(ids, a[5].([]pgtype.UUID)...)
		types = append(types, a[6].([]string)...)
		data = append(data, a[7].([]string)...)
		meta = append(meta, a[8].([]*string)...)
	}
	tenant := g[0].tenant
	b := &pgx.Batch{}
	b.Queue(appendScopeSQL, tenant.String(), fmt.Sprint(s.cfg.AppendLockWait.Milliseconds()))
	b.Queue(appendGroupSQL, pgUUID(tenant), streams, categories, expects, versions, counts, ids, types, data, meta)
	br := s.db.Pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	out := make([]appendRow, len(g))
	n := 0
	for rows.Next() {
		var i int32
		var r appendRow
		if err := rows.Scan(&i, &r.outcome, &r.current, &r.first, &r.last, &r.lastPosit); err != nil {
			rows.Close()
			return nil, err
		}
		if i < 1 || int(i) > len(out) {
			rows.Close()
			return nil, fmt.Errorf("append group: row for append %d of %d", i, len(out))
		}
		out[i-1] = r
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	if n != len(g) {
		return nil, fmt.Errorf("append group: %d rows for %d appends", n, len(g))
	}
	return out, nil
}
