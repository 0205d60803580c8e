package database

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RightsChannel is the channel on which the triggers of
// migrations/00008_rights_changed.sql announce, when a transaction commits,
// whose rights may have changed (see RightsChange).
const RightsChannel = "switchboard_auth"

// RightsChange says whose rights may have changed; a zero field matches
// anyone: a policy change names only its tenant, a session's end only its
// user.
type RightsChange struct {
	Tenant, User, Token uuid.UUID
}

// ParseRightsChange reads a RightsChannel payload, "tenant:user:token". A
// part that is not a uuid matches anyone, so a malformed payload reaches
// more, never fewer.
func ParseRightsChange(s string) RightsChange {
	parts := strings.SplitN(s, ":", 3)
	var ch RightsChange
	ids := []*uuid.UUID{&ch.Tenant, &ch.User, &ch.Token}
	for i, p := range parts {
		if id, err := uuid.Parse(p); err == nil {
			*ids[i] = id
		}
	}
	return ch
}

// Matches reports whether the change may concern a principal of tenant,
// user and token (token zero for a person).
func (ch RightsChange) Matches(tenant, user, token uuid.UUID) bool {
	return (ch.Tenant == uuid.Nil || ch.Tenant == tenant) &&
		(ch.User == uuid.Nil || ch.User == user) &&
		(ch.Token == uuid.Nil || ch.Token == token)
}

// Notifier is the server's one PostgreSQL listener: it LISTENs on every
// channel a handler was registered for, on a connection of its own, and
// hands each notification to its channel's handlers, in the order
// PostgreSQL sends them (commit order). Whatever was sent while it was not
// listening is lost, so it tells OnConnect handlers each time it
// (re)connects: they must assume anything changed. Connected reports
// whether it is listening now; a cache kept current by notifications is only
// to be trusted while it is.
type Notifier struct {
	db  *DB
	log *slog.Logger

	mu        sync.Mutex // guards handlers, onConnect, connected
	handlers  map[string][]func(payload string)
	onConnect []func()
	connected bool

	stop context.CancelFunc
	done chan struct{}
}

// NewNotifier returns a Notifier on db; register handlers, then Start.
func NewNotifier(db *DB, log *slog.Logger) *Notifier {
	return &Notifier{db: db, log: log, handlers: map[string][]func(string){}}
}

// Handle calls fn with the payload of every notification on channel. fn
// runs on the listener's goroutine and must not block. Call before Start.
func (n *Notifier) Handle(channel string, fn func(payload string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[channel] = append(n.handlers[channel], fn)
}

// OnConnect calls fn each time the listener (re)connects, and each time it
// loses its connection (fn must then assume anything changed). Call before
// Start.
func (n *Notifier) OnConnect(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onConnect = append(n.onConnect, fn)
}

// Connected reports whether the listener is listening now.
func (n *Notifier) Connected() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.connected
}

// Start listens until Close, reconnecting after a failure.
func (n *Notifier) Start() {
	ctx, stop := context.WithCancel(context.Background())
	n.stop, n.done = stop, make(chan struct{})
	go func() {
		defer close(n.done)
		delay := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := n.listen(ctx)
			n.setConnected(false)
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("notification listener stopped; reconnecting", "err", err, "in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Second)
		}
	}()
}

// Close stops listening and waits for the listener.
func (n *Notifier) Close() {
	if n.stop != nil {
		n.stop()
		<-n.done
	}
}

func (n *Notifier) setConnected(on bool) {
	n.mu.Lock()
	was := n.connected
	n.connected = on
	fns := n.onConnect
	n.mu.Unlock()
	if was != on {
		for _, fn := range fns {
			fn()
		}
	}
}

func (n *Notifier) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, n.db.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx) // closing a listener: nothing to keep
	}()
	n.mu.Lock()
	var channels []string
	for ch := range n.handlers {
		channels = append(channels, ch)
	}
	n.mu.Unlock()
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	n.setConnected(true)
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		n.mu.Lock()
		fns := n.handlers[note.Channel]
		n.mu.Unlock()
		for _, fn := range fns {
			fn(note.Payload)
		}
	}
}
