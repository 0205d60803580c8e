package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/connectors"
)

// Runner runs replay jobs: it claims running jobs (a lease, so one replica
// runs each and another takes over when it stops) and publishes their
// messages in batches, each batch confirmed by the broker before its
// messages leave the DLQ store (status replayed), in one transaction with
// the job's counts.
type Runner struct {
	Store   *Store
	Brokers *Brokers
	Log     *slog.Logger
	// Node names this replica in leases (default: host name and pid).
	Node string
	// Every is how often it looks for jobs to run (default 500ms).
	Every time.Duration
	// Lease is how long a claim lasts without renewal (default 15s).
	Lease time.Duration
	// ReturnThreshold pauses a job once this many of its replayed messages
	// came back, and at least half of those it confirmed (default 20).
	ReturnThreshold int
	// Tracer records a job's trace (see tracing.go); nil: none.
	Tracer trace.Tracer

	mu       sync.Mutex
	running  map[uuid.UUID]bool
	limiters map[uuid.UUID]*rate.Limiter // kept across a pause, so a resume keeps the pace
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	wake     chan struct{}
}

// Start runs jobs until Close.
func (r *Runner) Start() {
	if r.Node == "" {
		host, _ := os.Hostname()
		r.Node = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if r.Every <= 0 {
		r.Every = 500 * time.Millisecond
	}
	if r.Lease <= 0 {
		r.Lease = 15 * time.Second
	}
	if r.ReturnThreshold <= 0 {
		r.ReturnThreshold = 20
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	r.running = map[uuid.UUID]bool{}
	r.limiters = map[uuid.UUID]*rate.Limiter{}
	r.wake = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Go(func() { r.loop(ctx) })
}

// Wake makes the runner look for jobs now (a replay was started or resumed).
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops the runner; jobs it ran stay running for the next to claim.
func (r *Runner) Close() {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
}

func (r *Runner) loop(ctx context.Context) {
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		if err := r.claim(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("dlq: claiming replay jobs failed", "err", err)
		}
		if err := r.releaseCancelled(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("dlq: giving back what cancelled replays held failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

type jobKey struct {
	tenant uuid.UUID
	id     uuid.UUID
}

// claim takes the running jobs no replica holds (or this one does) and
// runs those not already running here.
func (r *Runner) claim(ctx context.Context) error {
	keys, err := r.jobs(ctx, `UPDATE dlq_replays SET runner = $1, lease_until = now() + $2::interval
		WHERE state = 'running' AND (lease_until IS NULL OR lease_until < now() OR runner = $1)
		RETURNING tenant_id, id`, r.Node, r.Lease.String())
	if err != nil {
		return err
	}
	for _, k := range keys {
		r.mu.Lock()
		if r.running[k.id] {
			r.mu.Unlock()
			continue
		}
		r.running[k.id] = true
		r.mu.Unlock()
		r.wg.Go(func() {
			defer func() { r.mu.Lock(); delete(r.running, k.id); r.mu.Unlock() }()
			if err := r.run(ctx, k.tenant, k.id); err != nil && ctx.Err() == nil {
				r.Log.Warn("dlq: a replay stopped", "replay", k.id, "err", err)
			}
		})
	}
	return nil
}

// jobs runs query, across tenants, and returns the jobs it names (tenant_id, id).
func (r *Runner) jobs(ctx context.Context, query string, args ...any) ([]jobKey, error) {
	rows, err := r.Store.db.Pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobKey, error) {
		var k jobKey
		return k, row.Scan(&k.tenant, &k.id)
	})
}

// releaseCancelled gives back to their DLQs the batches cancelled jobs
// had in flight when their runners stopped: once a cancelled job's lease
// ran out, and as long again for a publish under way to end, no runner
// records them. Each job in one transaction, so a job's lease ends only
// with its items given back.
func (r *Runner) releaseCancelled(ctx context.Context) error {
	keys, err := r.jobs(ctx, `SELECT tenant_id, id FROM dlq_replays WHERE state = 'cancelled' AND lease_until < now() - $1::interval`, r.Lease.String())
	if err != nil {
		return err
	}
	var first error
	for _, k := range keys {
		var after Replay
		err := r.Store.db.InTenant(ctx, k.tenant, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `UPDATE dlq_replays SET lease_until = NULL
				WHERE tenant_id = $1 AND id = $2 AND state = 'cancelled' AND lease_until < now() - $3::interval RETURNING id`,
				k.tenant, k.id, r.Lease.String()).Scan(new(uuid.UUID))
			if errors.Is(err, pgx.ErrNoRows) { // another replica gave it back
				return nil
			}
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE dlq_replay_items SET state = 'skipped', error = 'cancelled'
				WHERE tenant_id = $1 AND replay_id = $2 AND state = 'pending'`, k.tenant, k.id)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			after, err = scanReplay(tx.QueryRow(ctx, `UPDATE dlq_replays SET skipped = skipped + $3, updated_at = now()
				WHERE tenant_id = $1 AND id = $2 RETURNING `+replayColumns, k.tenant, k.id, tag.RowsAffected()))
			return err
		})
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		if after.ID != uuid.Nil {
			r.Store.emit(k.tenant, after.DLQ, progressEvent(&after))
		}
	}
	return first
}

// item is one message of a job to publish.
type item struct {
	seq  int
	msg  Message
	dest Destination
}

// run publishes job id's pending messages until none is left, the job is
// paused or cancelled, or this replica loses its lease.
func (r *Runner) run(ctx context.Context, tenant, id uuid.UUID) error {
	job, ok, err := r.hold(ctx, tenant, id)
	if err != nil || !ok {
		if err == nil && job.State != Paused {
			r.forget(id)
		}
		return err
	}
	// The DLQ as the catalog has it now, read once a run.
	d, err := r.Store.dlq(ctx, tenant, job.DLQ)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Three stages, so that reading the next batch, publishing one and
	// recording the one before overlap: the producer (this goroutine)
	// paces and reads batches, the publisher publishes them in order, the
	// recorder commits each outcome.
	p := &pipeline{toPublish: make(chan *batch, 1), toRecord: make(chan *batch, 1), made: map[string]bool{}, cancel: cancel}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(p.toRecord)
		for b := range p.toPublish {
			b.confirmed, b.err = r.publish(ctx, tenant, p, d, b.job, b.groups, b.failed)
			p.toRecord <- b
		}
	})
	wg.Go(func() {
		for b := range p.toRecord {
			r.settle(ctx, tenant, p, b)
		}
	})
	err = r.produce(ctx, tenant, job, d, p)
	close(p.toPublish)
	wg.Wait()
	if err == nil {
		err = p.err()
	}
	return err
}

// batch is one round of a job through its pipeline.
type batch struct {
	job       Replay
	items     []item
	groups    []sendGroup
	confirmed []int
	failed    map[int]string
	err       error // the broker's: the batch goes back to pending
}

// pipeline is what a job's stages share.
type pipeline struct {
	toPublish, toRecord chan *batch
	inflight            atomic.Int32 // batches read and not yet settled
	failingSince        atomic.Int64 // unix nanos of the first broker failure in a row; 0: none
	// rewind: a batch failed; once none is in flight, what is still
	// pending is read again from the start.
	rewind atomic.Bool
	// conn is the broker's connector, kept by the publisher between
	// batches and dropped after a failure.
	conn     connectors.Connector
	connKind string
	made     map[string]bool // retry topics made this run
	cancel   context.CancelFunc
	mu       sync.Mutex
	first    error
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first == nil {
		p.first = err
		p.cancel()
	}
}

func (p *pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

// settle records a published batch, or gives it back when the broker
// failed it.
func (r *Runner) settle(ctx context.Context, tenant uuid.UUID, p *pipeline, b *batch) {
	defer p.inflight.Add(-1)
	if b.err != nil {
		p.failingSince.CompareAndSwap(0, time.Now().UnixNano())
		p.rewind.Store(true)
		seqs := make([]int32, len(b.items))
		for i, it := range b.items {
			seqs[i] = int32(it.seq)
		}
		if err := r.release(ctx, tenant, b.job, seqs); err != nil {
			p.fail(err)
			return
		}
		r.note(ctx, tenant, b.job, "retrying: "+b.err.Error())
		return
	}
	p.failingSince.Store(0)
	if err := r.record(ctx, tenant, b.job, b.items, b.confirmed, b.failed); err != nil {
		p.fail(err)
	}
}

// produce paces the job and hands its batches to the pipeline until none
// is left, the job is paused or cancelled, or this replica loses it.
func (r *Runner) produce(ctx context.Context, tenant uuid.UUID, job Replay, d DLQ, p *pipeline) error {
	lim := r.limiter(job)
	kind, _, _ := ParseRef(d.Ref)
	cursor := 0 // the last seq read; a run starts over, sending again what a stopped one had in flight
	for ctx.Err() == nil {
		// Wait for the batch's turn first: next reads the job again, so a
		// pause or a cancel meanwhile is honoured before anything is sent.
		if err := lim.WaitN(ctx, job.Request.BatchSize); err != nil {
			return nil
		}
		if since := p.failingSince.Load(); since != 0 {
			if time.Since(time.Unix(0, since)) > 30*time.Second {
				return r.pause(ctx, tenant, job, "paused itself: the broker has not taken messages for 30 s; resume when it is back")
			}
			if !sleep(ctx, time.Second) { // the broker fails: do not spin
				return nil
			}
		}
		if p.rewind.Load() {
			if !drain(ctx, p) {
				return nil
			}
			p.rewind.Store(false)
			cursor = 0
		}
		items, now, ok, err := r.next(ctx, tenant, d, job, cursor)
		if err != nil {
			return err
		}
		if !ok {
			if now.State != Paused {
				r.forget(job.ID)
			}
			return nil
		}
		job = now
		if job.Counts.Returned >= r.ReturnThreshold && job.Counts.Returned*2 >= job.Counts.Confirmed {
			return r.pause(ctx, tenant, job, fmt.Sprintf("paused itself: %d of the %d messages it replayed dead-lettered again; fix the consumer, then resume",
				job.Counts.Returned, job.Counts.Confirmed))
		}
		if len(items) == 0 {
			// Nothing left to read: done once what is in flight is
			// recorded, unless some of it failed and is read again.
			if !drain(ctx, p) {
				return nil
			}
			if p.rewind.Load() {
				continue
			}
			r.forget(job.ID)
			return r.finish(ctx, tenant, job)
		}
		cursor = items[len(items)-1].seq
		b := &batch{job: job, items: items, failed: map[int]string{}}
		b.groups = prepare(job, kind, items, b.failed)
		p.inflight.Add(1)
		select {
		case p.toPublish <- b:
		case <-ctx.Done():
			p.inflight.Add(-1)
			return nil
		}
	}
	return nil
}

// drain waits until no batch is in flight; false when ctx ended first.
func drain(ctx context.Context, p *pipeline) bool {
	for p.inflight.Load() > 0 {
		if !sleep(ctx, 2*time.Millisecond) {
			return false
		}
	}
	return true
}

// sleep waits d or until ctx ends; false when ctx ended.
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

// limiter returns the pace of job, the same across its pauses.
func (r *Runner) limiter(job Replay) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	lim, ok := r.limiters[job.ID]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(job.Request.RatePerSecond), job.Request.BatchSize)
		r.limiters[job.ID] = lim
	}
	return lim
}

// forget drops the pace of a job that will not run again.
func (r *Runner) forget(id uuid.UUID) {
	r.mu.Lock()
	delete(r.limiters, id)
	r.mu.Unlock()
}

// hold renews the lease on job id and reads it; ok is false when it is no
// longer this replica's to run (paused, cancelled, done, or taken over).
func (r *Runner) hold(ctx context.Context, tenant, id uuid.UUID) (Replay, bool, error) {
	var job Replay
	err := r.Store.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var err error
		job, err = scanReplay(tx.QueryRow(ctx, `UPDATE dlq_replays SET lease_until = now() + $4::interval
			WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND runner = $3 RETURNING `+replayColumns, tenant, id, r.Node, r.Lease.String()))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		// Not this replica's to run now: say what it is instead.
		err = r.Store.db.ReadTenant(ctx, tenant, `SELECT state FROM dlq_replays WHERE tenant_id = $1 AND id = $2`, []any{tenant, id},
			func(rows pgx.Rows) error { return rows.Scan(&job.State) })
		return job, false, err
	}
	return job, err == nil, err
}

// dlq returns tenant's DLQ ref as the server sees it. A DLQ taken out of
// the catalog keeps its messages; replays of it go to their recorded
// destinations.
func (s *Store) dlq(ctx context.Context, tenant uuid.UUID, ref string) (DLQ, error) {
	all, err := s.list(ctx, tenant, func(context.Context, access.Object) error { return nil }, ref, false)
	if err != nil || len(all) == 0 {
		return DLQ{Ref: ref}, err
	}
	return all[0], nil
}

// next reads the job's next batch after cursor, renews the lease and
// moves the job's sent_through past the batch, in one transaction: from
// then on a cancel leaves the batch to this runner. ok is false when the
// job is no longer this replica's to run (now says its state). A batch a
// replica had in flight when it stopped is read again by the next run: the
// broker may get such a message twice, each with the same replay id; the
// store counts it once.
func (r *Runner) next(ctx context.Context, tenant uuid.UUID, d DLQ, job Replay, cursor int) (items []item, now Replay, ok bool, err error) {
	kind, _, _ := ParseRef(d.Ref)
	err = r.Store.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		// Step by step, each on its index: a plan joining the three can
		// go astray on tables a replay has just filled.
		rows, err := tx.Query(ctx, `SELECT seq, message_id FROM dlq_replay_items
			WHERE tenant_id = $1 AND replay_id = $2 AND seq > $3 AND state = 'pending' ORDER BY seq LIMIT $4`,
			tenant, job.ID, cursor, job.Request.BatchSize)
		if err != nil {
			return err
		}
		var ids []int64
		seqOf := map[int64]int{}
		hi := int32(cursor)
		for rows.Next() {
			var seq int32
			var id int64
			if err := rows.Scan(&seq, &id); err != nil {
				rows.Close()
				return err
			}
			ids, hi = append(ids, id), seq
			seqOf[id] = int(seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) > 0 {
			rows, err = tx.Query(ctx, `SELECT `+storedMessageColumns+` FROM dlq_messages WHERE tenant_id = $1 AND id = ANY($2)`, tenant, ids)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				m, err := scanMessage(rows)
				if err != nil {
					return err
				}
				items = append(items, item{seq: seqOf[m.ID], msg: m})
			}
			if err := rows.Err(); err != nil {
				return err
			}
			slices.SortFunc(items, func(a, b item) int { return a.seq - b.seq })
		}
		// The job's row last, so that the lock this takes on it (a
		// recorder waits for it) is held only to the commit.
		now, err = scanReplay(tx.QueryRow(ctx, `UPDATE dlq_replays SET lease_until = now() + $4::interval, sent_through = GREATEST(sent_through, $5)
			WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND runner = $3 RETURNING `+replayColumns,
			tenant, job.ID, r.Node, r.Lease.String(), hi))
		if errors.Is(err, pgx.ErrNoRows) {
			return tx.QueryRow(ctx, `SELECT state FROM dlq_replays WHERE tenant_id = $1 AND id = $2`, tenant, job.ID).Scan(&now.State)
		}
		ok = err == nil
		return err
	})
	if err != nil {
		return nil, now, false, err
	}
	if !ok {
		return nil, now, false, nil
	}
	for i := range items {
		items[i].dest, _ = destination(d, kind, now.Request.Target, &items[i].msg)
	}
	return items, now, true, nil
}

// sendGroup is what a batch sends to one destination: its items and, in
// the same order, their messages as published.
type sendGroup struct {
	dest  Destination
	items []item
	msgs  []connectors.Message
}

// prepare makes the messages of items as they are published (the job's
// edit and headers applied), grouped by destination in the order they
// come. A message the edit does not fit fails, with why, in failed. It runs
// before the batch's turn to publish, so the publisher only sends.
func prepare(job Replay, kind string, items []item, failed map[int]string) []sendGroup {
	kafka := kind == catalog.KindTopic
	var groups []sendGroup
	at := map[Destination]int{}
	for _, it := range items {
		body, headers, err := apply(it.msg, job.Request.Edit, job.ID)
		if err != nil {
			failed[it.seq] = err.Error()
			continue
		}
		key := it.dest.RoutingKey
		if kafka {
			headers, key = textHeaders(headers), it.msg.RoutingKey
		}
		i, seen := at[it.dest]
		if !seen {
			i = len(groups)
			at[it.dest] = i
			groups = append(groups, sendGroup{dest: it.dest})
		}
		g := &groups[i]
		g.items = append(g.items, it)
		g.msgs = append(g.msgs, connectors.Message{ID: it.msg.MessageID, Key: key, Body: body, Headers: headers,
			ContentType: it.msg.ContentType, Properties: replayProperties(it.msg.Properties)})
	}
	return groups
}

// publish sends a batch's groups and returns the seqs the broker confirmed
// and adds those it refused for good (no queue took them: a reason each)
// to failed. err is a broker failure that may pass: what was not
// confirmed stays pending.
func (r *Runner) publish(ctx context.Context, tenant uuid.UUID, p *pipeline, d DLQ, job Replay, groups []sendGroup, failed map[int]string) (ok []int, err error) {
	if p.conn == nil {
		if p.conn, p.connKind, err = r.Store.brokerOf(ctx, r.Brokers, tenant, d); err != nil {
			return nil, err
		}
	}
	c, typ := p.conn, p.connKind
	defer func() {
		if err != nil { // the broker may have changed: look it up again
			p.conn = nil
		}
	}()
	for _, g := range groups {
		dest := g.dest
		cd := connectors.Destination{Exchange: dest.Exchange, Topic: dest.Topic}
		if tm, can := c.(connectors.TopicMaker); can && dest.ConsumerGroup != "" && !p.made[dest.Topic] {
			if err := tm.EnsureTopic(ctx, dest.Topic); err != nil {
				return ok, err
			}
			p.made[dest.Topic] = true
		}
		bctx, span := r.startBatch(ctx, tenant, d, job, typ, dest, g.msgs)
		carry(span, g.msgs)
		perr := c.Publish(bctx, cd, g.msgs...)
		endBatch(span, perr)
		if perr == nil {
			for _, it := range g.items {
				ok = append(ok, it.seq)
			}
			continue
		}
		if !errors.Is(perr, connectors.ErrUnroutable) {
			return ok, perr
		}
		// Some message was not routed: find which, one at a time.
		for i, it := range g.items {
			err := c.Publish(ctx, cd, g.msgs[i])
			switch {
			case err == nil:
				ok = append(ok, it.seq)
			case errors.Is(err, connectors.ErrUnroutable):
				failed[it.seq] = "no queue took it: " + err.Error()
			default:
				return ok, err
			}
		}
	}
	return ok, nil
}

// brokerOf returns the connector of d's broker.
func (s *Store) brokerOf(ctx context.Context, b *Brokers, tenant uuid.UUID, d DLQ) (connectors.Connector, string, error) {
	if d.Broker == "" {
		return nil, "", fmt.Errorf("%s is no longer in the catalog, so its broker is unknown", d.Ref)
	}
	return b.Get(ctx, tenant, d.Broker)
}

// replayProperties are the recorded properties a publish carries again.
func replayProperties(p map[string]string) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		if k != "timestamp" {
			out[k] = v
		}
	}
	return out
}

// textHeaders makes headers Kafka can carry: strings and bytes as they
// are, anything else as its text.
func textHeaders(h map[string]any) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		switch v.(type) {
		case string, []byte:
			out[k] = v
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// record commits a batch's outcome: confirmed messages leave the DLQ store
// (status replayed, one more replay), refused ones go back to the DLQ
// (their items failed, with why).
func (r *Runner) record(ctx context.Context, tenant uuid.UUID, job Replay, items []item, ok []int, failed map[int]string) error {
	fseqs, ferrs := make([]int32, 0, len(failed)), make([]string, 0, len(failed))
	for s, e := range failed {
		fseqs, ferrs = append(fseqs, int32(s)), append(ferrs, e)
	}
	// Each confirmed message with how often it had come back when it was
	// read: one that came back since (a capture stored its return) stays
	// dead.
	sent := make(map[int]*item, len(items))
	for i := range items {
		sent[items[i].seq] = &items[i]
	}
	oseqs, ids, returns := make([]int32, len(ok)), make([]int64, len(ok)), make([]int32, len(ok))
	for i, s := range ok {
		oseqs[i], ids[i], returns[i] = int32(s), sent[s].msg.ID, int32(sent[s].msg.Returns)
	}
	var after Replay
	err := r.Store.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		// The job's row first: a cancel waits for this batch's record, or
		// this record for the cancel (which leaves the batch to it). A key
		// share lock, which the next batch's read (an update of the row's
		// lease) does not wait for; only the counts' update at the end
		// waits for a read in progress.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM dlq_replays WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE`, tenant, job.ID); err != nil {
			return err
		}
		// Only items still pending count: a cancel after the runner's
		// lease ran out may have skipped them, another replica may have
		// recorded them.
		var confirmed int64
		if len(oseqs) > 0 {
			lo, hi := span(oseqs)
			if err := tx.QueryRow(ctx, `WITH done AS (
					UPDATE dlq_replay_items SET state = 'confirmed'
					WHERE tenant_id = $1 AND replay_id = $2 AND seq BETWEEN $4 AND $5 AND seq = ANY($3) AND state = 'pending'
					RETURNING message_id),
				m AS (
					UPDATE dlq_messages m SET status = CASE WHEN m.returns = u.returns THEN 'replayed' ELSE m.status END,
						held = CASE WHEN m.returns = u.returns THEN m.held ELSE m.replays + 1 >= $8 END,
						replays = m.replays + 1, last_replay = $2, updated_at = now()
					FROM unnest($6::bigint[], $7::int[]) AS u(id, returns)
					WHERE m.tenant_id = $1 AND m.id = u.id AND m.id = ANY(ARRAY(SELECT message_id FROM done))
					RETURNING 1)
				SELECT count(*) FROM m`, tenant, job.ID, oseqs, lo, hi, ids, returns, r.Store.MaxReplays).Scan(&confirmed); err != nil {
				return err
			}
		}
		nfailed := int64(0)
		if len(fseqs) > 0 {
			tag, err := tx.Exec(ctx, `UPDATE dlq_replay_items i SET state = 'failed', error = u.err FROM unnest($3::int[], $4::text[]) AS u(seq, err)
				WHERE i.tenant_id = $1 AND i.replay_id = $2 AND i.seq = u.seq AND i.state = 'pending'`, tenant, job.ID, fseqs, ferrs)
			if err != nil {
				return err
			}
			nfailed = tag.RowsAffected()
		}
		var err error
		after, err = scanReplay(tx.QueryRow(ctx, `UPDATE dlq_replays SET published = published + $3, confirmed = confirmed + $4, failed = failed + $5,
				note = '', updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING `+replayColumns,
			tenant, job.ID, confirmed+nfailed, confirmed, nfailed))
		return err
	})
	if err != nil {
		return fmt.Errorf("record replay progress: %w", err)
	}
	r.Store.emit(tenant, job.DLQ, progressEvent(&after))
	return nil
}

// release settles a batch that could not be sent: it stays pending, to be
// sent again, unless the job was cancelled meanwhile: then it goes back to
// the DLQ.
func (r *Runner) release(ctx context.Context, tenant uuid.UUID, job Replay, seqs []int32) error {
	return r.Store.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM dlq_replays WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE`, tenant, job.ID).Scan(&state); err != nil {
			return err
		}
		if state != Cancelled {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE dlq_replay_items SET state = 'skipped', error = 'cancelled'
			WHERE tenant_id = $1 AND replay_id = $2 AND seq = ANY($3) AND state = 'pending'`, tenant, job.ID, seqs)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE dlq_replays SET skipped = skipped + $3 WHERE tenant_id = $1 AND id = $2`, tenant, job.ID, tag.RowsAffected())
		return err
	})
}

// span is the least and the greatest of seqs: a range the items' primary
// key narrows to, whatever the planner believes of a table a replay has
// just filled (seq = ANY alone is checked row by row over the job).
func span(seqs []int32) (lo, hi int32) {
	if len(seqs) == 0 {
		return 1, 0
	}
	return slices.Min(seqs), slices.Max(seqs)
}

// finish ends a job with nothing left to publish.
func (r *Runner) finish(ctx context.Context, tenant uuid.UUID, job Replay) error {
	if err := r.setState(ctx, tenant, job, Done, ""); err != nil {
		return err
	}
	r.traceDone(tenant, job, Done)
	return nil
}

// pause pauses a job by itself, saying why.
func (r *Runner) pause(ctx context.Context, tenant uuid.UUID, job Replay, why string) error {
	return r.setState(ctx, tenant, job, Paused, why)
}

func (r *Runner) setState(ctx context.Context, tenant uuid.UUID, job Replay, state, note string) error {
	var after Replay
	err := r.Store.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var err error
		after, err = scanReplay(tx.QueryRow(ctx, `UPDATE dlq_replays SET state = $3, note = $4, updated_at = now(), lease_until = NULL,
				finished_at = CASE WHEN $3 = 'done' THEN now() END
			WHERE tenant_id = $1 AND id = $2 AND state = 'running' RETURNING `+replayColumns, tenant, job.ID, state, note))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || after.ID == uuid.Nil {
		return err
	}
	r.Store.emit(tenant, job.DLQ, progressEvent(&after))
	return nil
}

// note records why a running job is waiting.
func (r *Runner) note(ctx context.Context, tenant uuid.UUID, job Replay, note string) {
	_ = r.Store.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE dlq_replays SET note = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2`, tenant, job.ID, note)
		return err
	})
	job.Note = note
	r.Store.emit(tenant, job.DLQ, progressEvent(&job))
}
