package eventstore

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// broker fans wake-ups out to the subscriptions of a tenant. A wake-up
// carries no events: it only says "read again", so a full wake channel can
// drop it (one pending wake-up is as good as many).
type broker struct {
	mu   sync.Mutex // guards subs
	subs map[uuid.UUID]map[chan struct{}]struct{}
}

// subscribe registers a wake channel for tenant; call the returned func to
// unregister it.
func (b *broker) subscribe(tenant uuid.UUID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	set := b.subs[tenant]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		b.subs[tenant] = set
	}
	set[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs[tenant], ch)
		if len(b.subs[tenant]) == 0 {
			delete(b.subs, tenant)
		}
		b.mu.Unlock()
	}
}

func (b *broker) wake(tenant uuid.UUID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[tenant] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (b *broker) wakeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, set := range b.subs {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Subscription delivers a tenant's log (or one category of it) from a
// position: first the stored events (catch-up), then new ones as the
// sequencer positions them (live), each exactly once and in position order.
type Subscription struct {
	events chan Event // Subscribe's channel; nil for SubscribeTo
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// Events returns the channel of events. It is closed when the subscription
// ends; Err then says why.
func (sub *Subscription) Events() <-chan Event { return sub.events }

// Err returns nil when the subscription ended because its context ended or
// Close was called, and otherwise the reason it failed. It is meaningful
// once Events is closed.
func (sub *Subscription) Err() error {
	select {
	case <-sub.done:
		return sub.err
	default:
		return nil
	}
}

// Close ends the subscription and waits for its goroutine to stop.
func (sub *Subscription) Close() {
	sub.cancel()
	<-sub.done
}

// Subscribe delivers the tenant's events from position from (inclusive; 0 or
// 1 for the whole log) in position order, restricted to category unless it
// is "". To resume after a checkpoint c (the last position handled), pass
// c+1.
//
// Delivery reads positioned events from the database, so it never skips an
// event committed late (see the package documentation), and the channel
// holds at most Config.SubscriptionBuffer events: a consumer that does not
// keep up holds its own subscription back and nothing else. It ends when
// ctx ends, on Close, or when the Store closes.
func (s *Store) Subscribe(ctx context.Context, tenant uuid.UUID, from int64, category string) (*Subscription, error) {
	sub, events, err := subscribe(s, ctx, tenant, from, category, func(e Event) (Event, error) { return e, nil })
	if sub != nil {
		sub.events = events
	}
	return sub, err
}

// SubscribeTo is Subscribe delivering each event converted by conv into a
// channel of the caller's type, with no goroutine between the store and
// that channel: a subscriber at the head of the log gets conv's value
// straight from the shared read. conv runs on the store's goroutines, once
// per event and subscription; it must be quick and must not block. An
// error from conv ends the subscription with that error. The channel is
// closed when the subscription ends.
func SubscribeTo[T any](s *Store, ctx context.Context, tenant uuid.UUID, from int64, category string, conv func(Event) (T, error)) (*Subscription, <-chan T, error) {
	sub, out, err := subscribe(s, ctx, tenant, from, category, conv)
	if err != nil {
		return nil, nil, err
	}
	return sub, out, nil
}

func subscribe[T any](s *Store, ctx context.Context, tenant uuid.UUID, from int64, category string, conv func(Event) (T, error)) (*Subscription, chan T, error) {
	f := problem.Fields{}
	if from < 0 {
		f.Add("from_position", "must not be negative")
	}
	if category != "" {
		if msg := checkName(category); msg != "" {
			f.Add("category", msg)
		}
	}
	if err := f.Err(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan T, s.cfg.SubscriptionBuffer)
	sub := &Subscription{cancel: cancel, done: make(chan struct{})}
	s.startMu.Lock()
	if s.closed.Load() {
		s.startMu.Unlock()
		cancel()
		return nil, nil, problem.Errorf(problem.CodeUnavailable, "the event store is shutting down")
	}
	s.wg.Add(1)
	s.startMu.Unlock()
	stopWithStore := context.AfterFunc(s.life, cancel)
	d := newDelivery(ctx, cancel, out, conv)
	go func() {
		defer s.wg.Done()
		// Deferred calls run last first: done is closed, with err set,
		// before out, so a reader that sees out closed finds Err's answer.
		defer close(out)
		defer close(sub.done)
		defer stopWithStore()
		sub.err = s.deliver(ctx, d, tenant, from, category)
		if err := d.failed(); err != nil {
			sub.err = err
		}
		if sub.err == nil && s.life.Err() != nil {
			sub.err = problem.Errorf(problem.CodeUnavailable, "the event store is shutting down")
		}
	}()
	return sub, out, nil
}

// delivery puts a subscription's events into its channel, converted: send
// waits for room (the subscription's own reads), offer does not (the
// shared tail, which must not be held up by one subscriber).
type delivery struct {
	send  func(Event) bool // false: the subscription ends
	offer func(Event) bool
	// failed is conv's error, once it failed (the subscription ends).
	failed func() error
}

func newDelivery[T any](ctx context.Context, cancel context.CancelFunc, out chan T, conv func(Event) (T, error)) *delivery {
	var mu sync.Mutex // guards convErr
	var convErr error
	fail := func(err error) {
		mu.Lock()
		if convErr == nil {
			convErr = err
		}
		mu.Unlock()
		cancel()
	}
	// put converts e and puts it into out; wait says whether to wait for
	// room (until ctx ends) or give up at once.
	put := func(e Event, wait bool) bool {
		v, err := conv(e)
		if err != nil {
			fail(err)
			return false
		}
		if !wait {
			select {
			case out <- v:
				return true
			default:
				return false
			}
		}
		select {
		case out <- v:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return &delivery{
		send:  func(e Event) bool { return put(e, true) },
		offer: func(e Event) bool { return put(e, false) },
		failed: func() error {
			mu.Lock()
			defer mu.Unlock()
			return convErr
		},
	}
}

// deliver runs a subscription until ctx ends (nil) or reads keep failing.
// It catches up on its own reads and, at the head, follows its tenant's
// tail (fanout.go), which is woken by new positions; let go by the tail,
// it reads on its own again.
func (s *Store) deliver(ctx context.Context, d *delivery, tenant uuid.UUID, next int64, category string) error {
	page := min(s.cfg.SubscriptionBuffer, s.cfg.MaxPageSize)
	failures := 0
	for {
		events, head, err := s.readLogHead(ctx, tenant, category, next, page)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// A database hiccup: retry a few times before giving up, so a
			// failover does not end every subscription at once.
			failures++
			if failures > 5 {
				return err
			}
			s.log.Warn("event store subscription read failed; retrying", "tenant", tenant, "err", err)
			if !sleep(ctx, time.Duration(failures)*200*time.Millisecond) {
				return nil
			}
			continue
		}
		failures = 0
		for _, e := range events {
			if !d.send(e) {
				return nil
			}
			next = e.Position + 1
		}
		if len(events) == page {
			continue // more is stored: keep catching up
		}
		// Everything up to the head this read saw is delivered.
		next = max(next, head+1)
		f := s.follow(tenant, category, next, d)
		if f == nil {
			if s.life.Err() != nil {
				return nil
			}
			continue // the tail has read past next: read the difference
		}
		next = f.wait(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}
