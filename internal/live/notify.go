package live

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/problem"
)

// The PostgreSQL channels the hub listens on.
const (
	// authChannel carries "tenant:user:token" (uuids, empty for any) from
	// the triggers of migrations/00008: whose rights may have changed.
	authChannel = "switchboard_auth"
	// topicChannel carries published messages (note, as JSON).
	topicChannel = "switchboard_live"
)

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

// runListener listens for rights changes and published messages until ctx
// ends, reconnecting after a failure. Whatever was sent while it was not
// listening is lost, so every (re)connection re-checks every stream.
func (h *Hub) runListener(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := h.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("live: notification listener stopped; reconnecting", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (h *Hub) listen(ctx context.Context) error {
	cfg := h.db.Pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx) // closing a listener: nothing to keep
	}()
	for _, ch := range []string{authChannel, topicChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	h.changed(change{})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		h.met.notes.Inc()
		switch n.Channel {
		case authChannel:
			h.changed(parseChange(n.Payload))
		case topicChannel:
			var nt note
			if err := json.Unmarshal([]byte(n.Payload), &nt); err != nil {
				h.log.Warn("live: a published message could not be read", "err", err)
				continue
			}
			h.deliver(nt)
		}
	}
}

// parseChange reads "tenant:user:token"; a part that is not a uuid matches
// any (so a malformed payload re-checks more, never less).
func parseChange(s string) change {
	parts := strings.SplitN(s, ":", 3)
	var ch change
	ids := []*uuid.UUID{&ch.tenant, &ch.user, &ch.token}
	for i, p := range parts {
		if id, err := uuid.Parse(p); err == nil {
			*ids[i] = id
		}
	}
	return ch
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
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	b, err := json.Marshal(note{Topic: topic, Tenant: tenant, Type: typ, Seq: seq, Data: raw})
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if len(b) > maxNote {
		return problem.Errorf(problem.CodeTooLarge, "a published message is at most %d bytes; this one is %d", maxNote, len(b))
	}
	if _, err := h.db.Pool.Exec(ctx, `SELECT pg_notify($1, $2)`, topicChannel, string(b)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
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
