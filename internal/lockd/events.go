package lockd

import (
	"context"
	"sync"
)

// streamBuffer is how many events a subscriber may have unread before it is
// dropped. One more slot is kept for the event that tells it why.
const streamBuffer = 64

// hub fans state machine events out to subscribers. Delivery never blocks:
// Apply calls publish with the state locked, and a slow reader must not stall
// the state machine of its node.
//
// Lock order: fsm.mu before hub.mu (subscribe takes both so the first event
// of an Observe stream and the live ones that follow line up exactly).
type hub struct {
	mu     sync.Mutex // guards subs and closed
	subs   map[subscriber]struct{}
	closed bool
}

// subscriber is one stream. Its methods run with hub.mu held.
type subscriber interface {
	// deliver offers e; false means the subscriber fell behind and is done.
	deliver(e fsmEvent) bool
	// end sends the terminal event for err (if any) and closes the channel.
	end(err error)
}

func newHub() *hub { return &hub{subs: map[subscriber]struct{}{}} }

func (h *hub) publish(e fsmEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.deliver(e) {
			delete(h.subs, s)
			s.end(ErrSlowConsumer)
		}
	}
}

// addLocked registers s until ctx ends. The caller holds hub.mu, and
// fsm.mu first when the stream's first event comes from the state.
func (h *hub) addLocked(ctx context.Context, s subscriber) {
	if h.closed {
		s.end(errShuttingDown)
		return
	}
	h.subs[s] = struct{}{}
	context.AfterFunc(ctx, func() { h.remove(s, nil) })
}

// remove ends s with err unless it has ended already.
func (h *hub) remove(s subscriber, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		s.end(err)
	}
}

// endAll ends every subscriber with err; with shutdown set, later
// subscriptions end at once.
func (h *hub) endAll(err error, shutdown bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		delete(h.subs, s)
		s.end(err)
	}
	if shutdown {
		h.closed = true
	}
}

// stream is a subscriber with a typed bounded channel.
type stream[T any] struct {
	ch       chan T
	match    func(fsmEvent) (T, bool)
	terminal func(error) T
}

func newStream[T any](match func(fsmEvent) (T, bool), terminal func(error) T) *stream[T] {
	return &stream[T]{ch: make(chan T, streamBuffer+1), match: match, terminal: terminal}
}

func (s *stream[T]) deliver(e fsmEvent) bool {
	v, ok := s.match(e)
	if !ok {
		return true
	}
	if len(s.ch) >= streamBuffer { // senders (deliver, end, push) all hold hub.mu
		return false
	}
	s.ch <- v
	return true
}

func (s *stream[T]) end(err error) {
	if err != nil {
		s.ch <- s.terminal(err) // the reserved slot: never blocks
	}
	close(s.ch)
}

// push queues an initial event; the caller holds hub.mu and the stream is new.
func (s *stream[T]) push(v T) { s.ch <- v }
