package eventstore

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Shared reads at the head of the log. A subscription catches up on its
// own reads; once a read comes back short, it has seen the whole log up to
// the head that read returned, and it joins its tenant's tail: one reader
// per tenant that reads each newly positioned page once and hands every
// event to the subscriptions following it (in memory, filtered by
// category). So with a thousand subscriptions at the head, a commit costs
// one read, not a thousand.
//
// Ordering holds across the hand-offs because both sides count in
// positions. A subscription joins only when the tail has read no further
// than it has (tail.next <= its next); the tail then puts only events at or
// after its next into the subscription's channel, in the order it read
// them, and keeps the position after the last one it put there. When the
// tail is ahead, the subscription reads again on its own (the gap is the
// tail's last page or so). A follower whose channel is full does not keep
// up: the tail lets it go rather than wait, and the subscription goes back
// to its own reads from the position after the last event the tail gave it
// (behind those still in its channel): no gap, no duplicate, and no other
// follower held up. If a tail read fails, or the Store closes, the tail
// lets every follower go the same way. While it follows, a subscription's
// own goroutine only waits: the tail writes into its channel directly,
// converted to the subscriber's own type (SubscribeTo), so nothing stands
// between the shared read and the subscriber's channel.

// fanout holds the tails of the Store.
type fanout struct {
	mu    sync.Mutex // guards tails; taken before a tail's mu
	tails map[uuid.UUID]*tail
}

// tail reads one tenant's log at its head for its followers.
type tail struct {
	s      *Store
	tenant uuid.UUID

	mu        sync.Mutex // guards next and followers
	next      int64      // the first position the tail has not read past
	followers map[*follower]struct{}
}

// follower is a subscription that the tail feeds.
type follower struct {
	t        *tail
	category string
	d        *delivery // puts events into the subscription's channel
	// next is the position after the last event the tail put into out
	// (at first, where the subscription was): the tail hands it only
	// positions from here on. Guarded by t.mu while the follower is on the
	// tail's list; the subscription reads it once gone is closed.
	next int64
	// gone is closed by the tail (under t.mu, after taking the follower
	// off its list) when it lets the follower go.
	gone chan struct{}
}

// follow makes a subscription of tenant (for category, at position next)
// a follower of the tenant's tail, starting the tail if there is none. It
// returns nil when the tail has read past next (the subscription reads
// again) or the Store is closing.
func (s *Store) follow(tenant uuid.UUID, category string, next int64, d *delivery) *follower {
	s.fan.mu.Lock()
	defer s.fan.mu.Unlock()
	t := s.fan.tails[tenant]
	if t == nil {
		s.startMu.Lock()
		if s.closed.Load() {
			s.startMu.Unlock()
			return nil
		}
		s.wg.Add(1)
		s.startMu.Unlock()
		t = &tail{s: s, tenant: tenant, next: next, followers: map[*follower]struct{}{}}
		// Registered before the tail's first read: a wake-up that comes
		// while it reads is kept for the next wait.
		wake, unsubscribe := s.subs.subscribe(tenant)
		s.fan.tails[tenant] = t
		go func() {
			defer s.wg.Done()
			defer unsubscribe()
			t.run(wake)
		}()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next > next {
		return nil
	}
	f := &follower{t: t, category: category, d: d, next: next, gone: make(chan struct{})}
	t.followers[f] = struct{}{}
	return f
}

// leave takes f off its tail's list, unless the tail let it go already,
// and returns the position after the last event the tail gave it. Once it
// returns, the tail no longer writes into f.out.
func (f *follower) leave() int64 {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	delete(f.t.followers, f)
	return f.next
}

// run reads pages from the head whenever the tenant's log grows (or every
// Config.SubscriptionPoll, a safety net) until the tail has no follower
// left, a read fails, or the Store closes.
func (t *tail) run(wake <-chan struct{}) {
	s := t.s
	page := s.cfg.MaxPageSize
	poll := time.NewTimer(s.cfg.SubscriptionPoll)
	defer poll.Stop()
	for {
		if t.idle() {
			return
		}
		for {
			events, head, err := s.readLogHead(s.life, t.tenant, "", t.position(), page)
			if err != nil {
				if s.life.Err() == nil {
					s.log.Warn("event store shared read failed; its subscriptions read on their own", "tenant", t.tenant, "err", err)
				}
				t.stop()
				return
			}
			t.hand(events, head, len(events) < page)
			if len(events) < page {
				break
			}
		}
		poll.Reset(s.cfg.SubscriptionPoll)
		select {
		case <-s.life.Done():
			t.stop()
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

func (t *tail) position() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

// idle removes the tail from the Store when it has no follower, and
// reports whether it did.
func (t *tail) idle() bool {
	fan := &t.s.fan
	fan.mu.Lock()
	defer fan.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.followers) > 0 {
		return false
	}
	delete(fan.tails, t.tenant)
	return true
}

// stop removes the tail from the Store and lets every follower go.
func (t *tail) stop() {
	fan := &t.s.fan
	fan.mu.Lock()
	defer fan.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if fan.tails[t.tenant] == t {
		delete(fan.tails, t.tenant)
	}
	for f := range t.followers {
		delete(t.followers, f)
		close(f.gone)
	}
}

// hand gives a page read from t.next to the followers that want each
// event, and moves next past it: past the head the read saw when the page
// was its last (short) one.
func (t *tail) hand(events []Event, head int64, last bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range events {
		e := &events[i]
		e.shared = &sharedJSON{}
		cat := CategoryOf(e.Stream)
		for f := range t.followers {
			if e.Position < f.next || (f.category != "" && f.category != cat) {
				continue
			}
			if f.d.offer(*e) {
				f.next = e.Position + 1
				continue
			}
			// Too slow (or its conversion failed, which ends it): it
			// goes back to its own reads from where it is, and holds up
			// no one.
			delete(t.followers, f)
			close(f.gone)
		}
		t.next = e.Position + 1
	}
	if last {
		t.next = max(t.next, head+1)
	}
}

// wait blocks while f follows its tail: until the tail lets it go or ctx
// ends. It returns the position the subscription goes on from.
func (f *follower) wait(ctx context.Context) int64 {
	select {
	case <-f.gone:
	case <-ctx.Done():
	}
	return f.leave()
}
