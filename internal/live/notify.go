package live

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// topicChannel is the PostgreSQL channel that carries published messages
// (note, as JSON); rights changes come on database.RightsChannel.
const topicChannel = "switchboard_live"

// listen registers the hub's handlers with the server's notifier: rights
// changes re-check the streams they may concern, published messages go to
// their topic's subscribers, and a (re)connected listener re-checks every
// stream (what was sent meanwhile is lost).
func (h *Hub) listen(n *database.Notifier) {
	n.Handle(database.RightsChannel, func(payload string) {
		h.met.notes.Inc()
		h.changed(database.ParseRightsChange(payload))
	})
	n.Handle(topicChannel, func(payload string) {
		h.met.notes.Inc()
		var nt note
		if err := json.Unmarshal([]byte(payload), &nt); err != nil {
			h.log.Warn("live: a published message could not be read", "err", err)
			return
		}
		h.deliver(nt)
	})
	n.OnConnect(func() {
		if n.Connected() {
			h.changed(database.RightsChange{})
		}
	})
}

// maxNote is what fits in one notification payload (PostgreSQL's limit is
// 8000 bytes).
const maxNote = 7800

// note is a published message on the wire between replicas.
type note struct {
	Topic  string          `json:"t"`
	Tenant uuid.UUID       `json:"n"`
	Type   string          `json:"y"`
	Seq    uint64          `json:"s,omitempty"`
	Data   json.RawMessage `json:"d"`
}

type topicKey struct {
	topic  string
	tenant uuid.UUID
}

// topicSub is one local subscriber of a topic.
type topicSub struct {
	ch   chan Message
	err  error // set before ch is closed
	done bool  // ch is closed; guarded by Hub.mu
}

// Publish sends data to every subscriber of topic in tenant, on every
// replica, as a message of type typ with seq. data must marshal to at most
// about 7.8 kB: publish a summary and let subscribers read the rest.
func (h *Hub) Publish(ctx context.Context, topic string, tenant uuid.UUID, typ string, seq uint64, data any) error {
	return h.PublishAll(ctx, []Note{{Topic: topic, Tenant: tenant, Type: typ, Seq: seq, Data: data}})
}

// Note is one message of PublishAll.
type Note struct {
	Topic  string
	Tenant uuid.UUID
	Type   string
	Seq    uint64
	Data   any
}

// PublishAll publishes notes as Publish does, in one round trip, in order.
func (h *Hub) PublishAll(ctx context.Context, notes []Note) error {
	payloads := make([]string, 0, len(notes))
	for _, n := range notes {
		raw, err := json.Marshal(n.Data)
		if err != nil {
			return fmt.Errorf("publish %s: %w", n.Topic, err)
		}
		b, err := json.Marshal(note{Topic: n.Topic, Tenant: n.Tenant, Type: n.Type, Seq: n.Seq, Data: raw})
		if err != nil {
			return fmt.Errorf("publish %s: %w", n.Topic, err)
		}
		if len(b) > maxNote {
			return problem.Errorf(problem.CodeTooLarge, "a published message is at most %d bytes; this one is %d", maxNote, len(b))
		}
		payloads = append(payloads, string(b))
	}
	if len(payloads) == 0 {
		return nil
	}
	if _, err := h.db.Pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i`, topicChannel, payloads); err != nil {
		return fmt.Errorf("publish %s: %w", notes[0].Topic, err)
	}
	return nil
}

// Subscribe returns a Source of topic's messages in tenant, from now on. A
// subscriber that lets Config.TopicBuffer messages pile up is ended with
// ErrTooSlow. Close the source to unsubscribe.
func (h *Hub) Subscribe(topic string, tenant uuid.UUID) Source {
	s := &topicSub{ch: make(chan Message, h.cfg.TopicBuffer)}
	k := topicKey{topic, tenant}
	h.mu.Lock()
	set := h.topics[k]
	if set == nil {
		set = map[*topicSub]struct{}{}
		h.topics[k] = set
	}
	set[s] = struct{}{}
	h.mu.Unlock()
	return Source{
		C: s.ch,
		Err: func() error {
			h.mu.Lock()
			defer h.mu.Unlock()
			return s.err
		},
		Close: func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.topics[k], s)
			if len(h.topics[k]) == 0 {
				delete(h.topics, k)
			}
			if !s.done {
				s.done = true
				close(s.ch)
			}
		},
	}
}

// deliver hands a published message to the local subscribers of its topic,
// never blocking: one that is full is ended.
func (h *Hub) deliver(nt note) {
	m := Message{Type: nt.Type, Data: nt.Data, Seq: nt.Seq, At: time.Now()}
	k := topicKey{nt.Topic, nt.Tenant}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.topics[k] {
		select {
		case s.ch <- m:
		default:
			delete(h.topics[k], s)
			s.err = ErrTooSlow
			s.done = true
			close(s.ch)
		}
	}
}
