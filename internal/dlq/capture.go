package dlq

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"switchboard/internal/catalog"
	"switchboard/internal/connectors"
)

// Capture consumes every DLQ the catalog names (not paused) into the
// store: a delivery is acknowledged only after the transaction holding it
// committed, so a crash or a dropped connection loses nothing (the broker
// delivers it again, and the store folds the redelivery).
type Capture struct {
	Store   *Store
	Brokers *Brokers
	Log     *slog.Logger
	// SizeCap is the most of a body kept (default 1 MiB); a longer one is
	// stored truncated and marked so.
	SizeCap int
	// Prefetch is how many deliveries are in flight per DLQ (default
	// 2000); Batch is the most stored in one transaction (default 500), so
	// the broker keeps delivering while a batch is being stored.
	Prefetch int
	Batch    int
	// Every is how often the set of DLQs is read again (default 5s).
	Every time.Duration
	// Tracer records a span of each batch captured (nil: none).
	Tracer trace.Tracer

	mu      sync.Mutex
	workers map[captureKey]*captureWorker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{}
}

type captureKey struct {
	tenant uuid.UUID
	ref    string
}

type captureWorker struct {
	dlq catalog.DeadLetterQueue
	// originalHeader names a Kafka DLQ's original-topic header ("": the
	// known ones).
	originalHeader string
	cancel         context.CancelFunc
	done           chan struct{}
	state          CaptureState
}

// Start captures until Close.
func (c *Capture) Start() {
	if c.SizeCap <= 0 {
		c.SizeCap = 1 << 20
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 2000
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Every <= 0 {
		c.Every = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.workers = map[captureKey]*captureWorker{}
	c.wake = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { c.loop(ctx) })
}

// Wake makes the capture read the set of DLQs now (the catalog or a
// DLQ's settings changed).
func (c *Capture) Wake() {
	if c.wake == nil {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close stops capturing; deliveries not stored go back to their brokers.
func (c *Capture) Close() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
}

// State says how capturing tenant's DLQ ref goes on this replica.
func (c *Capture) State(tenant uuid.UUID, ref string) CaptureState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.workers[captureKey{tenant, ref}]; ok {
		return w.state
	}
	return CaptureState{State: "stopped"}
}

func (c *Capture) loop(ctx context.Context) {
	t := time.NewTicker(c.Every)
	defer t.Stop()
	for {
		if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
			c.Log.Warn("dlq: reading the DLQs to capture failed", "err", err)
		}
		select {
		case <-ctx.Done():
			c.mu.Lock()
			stop := slices.Collect(maps.Values(c.workers))
			clear(c.workers)
			c.mu.Unlock()
			stopAll(stop)
			return
		case <-t.C:
		case <-c.wake:
		}
	}
}

// reconcile starts a worker for each DLQ to capture and stops the others.
func (c *Capture) reconcile(ctx context.Context) error {
	all, err := c.Store.catalog.AllDeadLetterQueues(ctx)
	if err != nil {
		return err
	}
	paused := map[captureKey]bool{}
	header := map[captureKey]string{}
	rows, err := c.Store.db.Pool.Query(ctx, `SELECT tenant_id, dlq, paused, coalesce(kafka->>'original_topic_header', '') FROM dlq_settings
		WHERE paused OR coalesce(kafka->>'original_topic_header', '') <> ''`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k captureKey
		var p bool
		var h string
		if err := rows.Scan(&k.tenant, &k.ref, &p, &h); err != nil {
			rows.Close()
			return err
		}
		paused[k], header[k] = p, h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := map[captureKey]catalog.DeadLetterQueue{}
	for _, d := range all {
		want[captureKey{d.Tenant, d.Ref}] = d
	}
	// Workers are stopped outside the lock: a stopping worker may be
	// setting its state, which takes it.
	c.mu.Lock()
	var stop []*captureWorker
	for k, w := range c.workers {
		d, ok := want[k]
		if !ok || paused[k] || d.Broker != w.dlq.Broker || d.VHost != w.dlq.VHost || header[k] != w.originalHeader {
			stop = append(stop, w)
			delete(c.workers, k)
		}
	}
	c.mu.Unlock()
	stopAll(stop)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range want {
		if _, ok := c.workers[k]; ok {
			continue
		}
		if paused[k] {
			now := time.Now().UTC()
			c.workers[k] = &captureWorker{dlq: d, cancel: func() {}, done: closed(), state: CaptureState{State: "paused", Since: &now}}
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &captureWorker{dlq: d, originalHeader: header[k], cancel: cancel, done: make(chan struct{})}
		c.workers[k] = w
		c.wg.Go(func() {
			defer close(w.done)
			c.run(wctx, w)
		})
	}
	return nil
}

// stopAll stops workers and waits until each has.
func stopAll(workers []*captureWorker) {
	for _, w := range workers {
		w.cancel()
	}
	for _, w := range workers {
		<-w.done
	}
}

func closed() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (c *Capture) setState(w *captureWorker, state, errText string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.state.State == state && w.state.Error == errText {
		return
	}
	now := time.Now().UTC()
	w.state = CaptureState{State: state, Error: errText, Since: &now}
}

// run captures one DLQ until ctx ends, starting again after a failure.
func (c *Capture) run(ctx context.Context, w *captureWorker) {
	d := w.dlq
	wait := time.Second
	for ctx.Err() == nil {
		conn, _, err := c.Brokers.Get(ctx, d.Tenant, d.Broker)
		if err == nil {
			c.setState(w, "running", "")
			err = c.consume(ctx, conn, d, w.originalHeader)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.setState(w, "failing", err.Error())
			c.Log.Warn("dlq: capture stopped; starting again", "dlq", d.Ref, "tenant", d.Tenant, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// consume reads d's deliveries into batches, stores each batch, then
// acknowledges its deliveries.
func (c *Capture) consume(ctx context.Context, conn connectors.Connector, d catalog.DeadLetterQueue, originalHeader string) error {
	in := make(chan connectors.Delivery, c.Prefetch)
	var wg sync.WaitGroup
	var storeErr error
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		storeErr = c.store(cctx, d, originalHeader, in)
		if storeErr != nil {
			cancel()
		}
	})
	err := conn.Consume(cctx, d.Name, c.Prefetch, func(ctx context.Context, dl connectors.Delivery) {
		select {
		case in <- dl:
		case <-ctx.Done():
		}
	})
	cancel()
	wg.Wait()
	if storeErr != nil {
		return storeErr
	}
	return err
}

// savers is how many batches are stored at once: while one transaction
// commits the next is written.
const savers = 2

// store saves what arrives on in, in batches of up to Batch or what came
// within a few milliseconds, until ctx ends. Batches are stored by savers
// at once and acknowledged in the order they came, each only once it and
// every batch before it committed. After a failure nothing more is
// acknowledged: what was not is delivered again, and folded.
func (c *Capture) store(ctx context.Context, d catalog.DeadLetterQueue, originalHeader string, in <-chan connectors.Delivery) error {
	type job struct {
		batch []connectors.Delivery
		done  chan error
	}
	work := make(chan *job)
	order := make(chan *job, savers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range savers {
		wg.Go(func() {
			for j := range work {
				parsed := make([]captured, 0, len(j.batch))
				for _, dl := range j.batch {
					parsed = append(parsed, parse(dl, c.SizeCap, originalHeader))
				}
				sctx, done := c.traceCapture(ctx, d, j.batch)
				_, err := c.Store.Save(sctx, d.Tenant, d.Ref, parsed)
				done(err)
				j.done <- err
			}
		})
	}
	wg.Go(func() { // the batcher
		defer close(order)
		defer close(work)
		for {
			var batch []connectors.Delivery
			select {
			case <-ctx.Done():
				return
			case dl := <-in:
				batch = append(make([]connectors.Delivery, 0, c.Batch), dl)
			}
			linger := time.NewTimer(5 * time.Millisecond)
		fill:
			for len(batch) < c.Batch {
				select {
				case dl := <-in:
					batch = append(batch, dl)
				case <-linger.C:
					break fill
				}
			}
			linger.Stop()
			j := &job{batch: batch, done: make(chan error, 1)}
			select {
			case order <- j: // waits while savers batches are in flight
			case <-ctx.Done():
				return
			}
			work <- j
		}
	})
	defer wg.Wait()
	for j := range order {
		var err error
		select {
		case err = <-j.done:
		case <-ctx.Done():
			return nil
		}
		if err != nil {
			cancel()
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		if err := ackAll(j.batch); err != nil {
			// The broker delivers them again; the store folds them.
			c.Log.Info("dlq: an acknowledgement was lost; the messages will come again", "dlq", d.Ref, "err", err)
		}
	}
	return nil
}

// ackAll acknowledges a batch of deliveries taken in the order they came:
// at once through the last one when the connector can, else one by one.
func ackAll(batch []connectors.Delivery) error {
	if last := batch[len(batch)-1]; last.AckThrough != nil {
		return last.AckThrough()
	}
	var first error
	for _, dl := range batch {
		if err := dl.Ack(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
