package eventstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The sequencer's session advisory lock. The two-int form lives in a key
// space of its own, apart from the bigint keys appends lock streams with.
const (
	sequencerLockClass = 0x53574254 // "SWBT"
	sequencerLockObj   = 1
)

// notifyChannel carries "<tenant>/<store instance>" after the sequencer
// positions events of tenant.
const notifyChannel = "eventstore"

// appendChannel carries an empty notification after appends through a
// Store that does not run the sequencer commit: the sequencer, on whichever
// replica it runs, wakes on it (see wakeSequencer).
const appendChannel = "eventstore_append"

// sequenceSQL positions, in one statement (one transaction), the committed
// events of up to $1 transactions below the horizon, in (txid, id) order,
// continuing each tenant's contiguous count in event_log_heads, and notifies
// per tenant. It writes one event_commits row per transaction and tenant,
// however many events the transaction appended: a transaction is never split,
// so its events of a tenant hold consecutive positions, in id order.
//
// The horizon is the xmin of this statement's own snapshot: every
// transaction with a smaller xid has ended, so the set of committed events
// below it is final and all of it is visible here. No event can join that
// set later, which is why positions handed out in (txid, id) order are never
// preceded by a later one. doc.go has the whole argument. It also shows that
// the positioned transactions are a prefix of the txid order, so the
// statement resumes after the last transaction positioned (event_sequencer)
// and moves that mark in the same transaction.
const sequenceSQL = `WITH horizon AS MATERIALIZED (
	SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
), mark AS MATERIALIZED (
	SELECT txid FROM event_sequencer WHERE singleton
), txns AS MATERIALIZED (
	SELECT DISTINCT e.txid FROM events e
	WHERE e.txid > (SELECT txid FROM mark) AND e.txid < (SELECT xmin FROM horizon)
	ORDER BY e.txid
	LIMIT $1
), pending AS MATERIALIZED (
	SELECT e.txid, e.tenant_id, count(*) AS n FROM events e
	WHERE e.txid > (SELECT txid FROM mark) AND e.txid <= (SELECT max(txid) FROM txns)
	GROUP BY e.txid, e.tenant_id
), numbered AS (
	SELECT txid, tenant_id, n, sum(n) OVER (PARTITION BY tenant_id ORDER BY txid) AS upto FROM pending
), counts AS (
	SELECT tenant_id, sum(n)::bigint AS n FROM pending GROUP BY tenant_id
), heads AS (
	INSERT INTO event_log_heads AS h (tenant_id, position)
	SELECT tenant_id, n FROM counts
	ON CONFLICT (tenant_id) DO UPDATE SET position = h.position + EXCLUDED.position
	RETURNING h.tenant_id, h.position
), assigned AS (
	INSERT INTO event_commits (tenant_id, txid, first_position, events)
	SELECT numbered.tenant_id, numbered.txid, heads.position - counts.n + numbered.upto - numbered.n + 1, numbered.n
	FROM numbered JOIN counts USING (tenant_id) JOIN heads USING (tenant_id)
	RETURNING tenant_id, events
), moved AS (
	UPDATE event_sequencer SET txid = (SELECT max(txid) FROM txns)
	WHERE singleton AND EXISTS (SELECT 1 FROM txns)
	RETURNING 1
), tenants AS (
	SELECT DISTINCT tenant_id FROM assigned
), notified AS (
	SELECT pg_notify('` + notifyChannel + `', tenant_id::text || '/' || $2) FROM tenants
)
SELECT coalesce((SELECT sum(events) FROM assigned), 0)::bigint,
	(SELECT count(*) FROM txns),
	coalesce((SELECT array_agg(tenant_id) FROM tenants), '{}'),
	(SELECT count(*) FROM notified),
	(SELECT count(*) FROM moved),
	coalesce((SELECT max(txid) FROM events) >= (SELECT xmin FROM horizon), false)`

// heldBackWait is the longest the sequencer waits before it looks again
// at committed events held back by an older open transaction (backing off
// from a millisecond while it stays open). Nothing notifies when that
// transaction ends, so this is the one wait on a clock.
const heldBackWait = 20 * time.Millisecond

// connect opens a connection of its own (outside the pool) with the pool's
// settings, for the sequencer's session lock and the listener.
func (s *Store) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, s.db.Pool.Config().ConnConfig.Copy())
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx) // the connection is being dropped; nothing to do on error
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runSequencer campaigns for the sequencer lock and, once it holds it,
// positions events until ctx ends; after an error it starts over.
func (s *Store) runSequencer(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.sequence(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("event store sequencer stopped; retrying", "err", err)
		sleep(ctx, s.cfg.LeaderRetry)
	}
}

// sequence holds one connection: it takes the session lock on it and runs
// every sequencer statement on it, so if the connection dies the lock and the
// statements go together and a standby can take over without overlap.
func (s *Store) sequence(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer closeConn(conn)
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, sequencerLockClass, sequencerLockObj).Scan(&got); err != nil {
			return fmt.Errorf("sequencer lock: %w", err)
		}
		if got {
			break
		}
		if !sleep(ctx, s.cfg.LeaderRetry) {
			return ctx.Err()
		}
	}
	// Positions are a function of the committed events alone (each event's
	// rank in its tenant's (txid, id) order), so a sequencer commit lost in
	// a crash is redone after recovery with the very same positions: the
	// sequencer need not wait for its WAL to reach disk.
	//
	// Its statements are planned once for the session, maybe while the
	// tables are nearly empty: keep those plans on ordered index scans (see
	// noSeqScanSQL).
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off; SET enable_seqscan = off; SET enable_bitmapscan = off; SET jit = off`); err != nil {
		return fmt.Errorf("sequencer session: %w", err)
	}
	s.leading.Store(true)
	defer s.leading.Store(false)
	s.log.Info("event store sequencer started")
	return s.lead(ctx, conn)
}

// lead runs a step whenever appends committed (an append through this Store
// kicks it, one through another replica notifies appendChannel) and, as a
// safety net, every Config.SequencerPoll. Appends that commit while a step
// runs are taken by the next one, so under load each step positions the
// transactions of many appends without any timer spacing them.
func (s *Store) lead(ctx context.Context, conn *pgx.Conn) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var backoff time.Duration
	for {
		txns, more, err := s.step(ctx, conn)
		if err != nil {
			return err
		}
		var wait time.Duration
		switch {
		case txns >= int64(s.cfg.SequencerBatch):
			backoff = 0
			continue // a backlog: keep going
		case more:
			// Committed events wait behind an older open transaction:
			// look again soon, backing off while it stays open.
			if txns > 0 || backoff == 0 {
				backoff = time.Millisecond
			} else {
				backoff = min(2*backoff, heldBackWait)
			}
			wait = backoff
		default:
			backoff = 0
			wait = s.cfg.SequencerPoll
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// step runs sequenceSQL once and wakes local subscribers of the tenants that
// got positions. It reports how many transactions it positioned and whether
// committed events wait above the horizon.
func (s *Store) step(ctx context.Context, conn *pgx.Conn) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		n, txns, notified, marked int64
		tenants                   []uuid.UUID
		more                      bool
	)
	err := conn.QueryRow(ctx, sequenceSQL, s.cfg.SequencerBatch, s.instance).
		Scan(&n, &txns, &tenants, &notified, &marked, &more)
	if err != nil {
		return 0, false, fmt.Errorf("position events: %w", err)
	}
	for _, t := range tenants {
		s.subs.wake(t)
	}
	return txns, more, nil
}

// runListener listens for the sequencers' notifications (from any replica)
// and wakes this Store's subscriptions of the tenant named.
func (s *Store) runListener(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("event store listener stopped; retrying", "err", err)
		sleep(ctx, time.Second)
	}
}

func (s *Store) listen(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel+"; LISTEN "+appendChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Notifications sent while this connection was not listening are lost:
	// wake everyone (and the sequencer) once to cover them.
	s.subs.wakeAll()
	s.kickSequencer()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if n.Channel == appendChannel {
			s.kickSequencer() // a no-op unless this Store leads
			continue
		}
		tenant, from, _ := strings.Cut(n.Payload, "/")
		if from == s.instance {
			continue // our own sequencer woke our subscriptions already
		}
		if t, err := uuid.Parse(tenant); err == nil {
			s.subs.wake(t)
		}
	}
}
