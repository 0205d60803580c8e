package live

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/web"
)

// Config tunes the hub; zero values take the defaults.
type Config struct {
	// Origin is the one browser origin (scheme://host[:port]) that may open
	// a stream; a request with another Origin header is refused. Clients
	// that send no Origin (not browsers) are let through.
	Origin string
	// PingInterval is how often each connection is pinged (default 20s);
	// one that has not answered for two intervals is closed.
	PingInterval time.Duration
	// WriteTimeout bounds one write (default 5s): a client that cannot take
	// a message in that time is too slow and is dropped.
	WriteTimeout time.Duration
	// TopicBuffer is how many published messages a subscriber may have
	// unread before it is dropped (default 256).
	TopicBuffer int
	// RecheckEvery re-checks every open stream's credential and rights even
	// without a notification (default 1m): it ends streams whose access
	// token expired, and covers a notification lost with its connection.
	RecheckEvery time.Duration
	Log          *slog.Logger
	Registry     prometheus.Registerer
}

func (c *Config) defaults() {
	if c.PingInterval <= 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.TopicBuffer <= 0 {
		c.TopicBuffer = 256
	}
	if c.RecheckEvery <= 0 {
		c.RecheckEvery = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Hub serves every WebSocket stream of one server.
type Hub struct {
	cfg   Config
	web   *web.Server
	rbac  *rbac.Service
	db    *database.DB
	log   *slog.Logger
	met   *metrics
	ctx   context.Context // ends when the hub closes
	stop  context.CancelFunc
	wg    sync.WaitGroup // the listener, rechecks and open streams
	check chan struct{}  // limits concurrent rechecks

	mu     sync.Mutex // guards conns, topics and closed
	conns  map[*conn]struct{}
	topics map[topicKey]map[*topicSub]struct{}
	closed bool
}

// New returns a hub that learns of rights changes and published messages
// from notifier (the caller starts it); Start begins the periodic re-check.
func New(cfg Config, w *web.Server, authz *rbac.Service, db *database.DB, notifier *database.Notifier) *Hub {
	cfg.defaults()
	ctx, stop := context.WithCancel(context.Background())
	h := &Hub{cfg: cfg, web: w, rbac: authz, db: db, log: cfg.Log, ctx: ctx, stop: stop,
		check: make(chan struct{}, 4), conns: map[*conn]struct{}{}, topics: map[topicKey]map[*topicSub]struct{}{}}
	h.met = newMetrics(cfg.Registry)
	h.listen(notifier)
	return h
}

// Start runs the hub's periodic re-check of every stream until Close.
func (h *Hub) Start() {
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.recheckLoop(h.ctx) }()
}

// Close ends every open stream (1001) and stops the hub, waiting for its
// goroutines.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.stop()
	h.wg.Wait()
}

// Stream is one subscription a client asks for: what it needs the right to
// (Action on Object), and how to open its source once it has.
type Stream struct {
	// Kind names the stream in metrics ("events", "locks", ...).
	Kind   string
	Action string
	Object rbac.Object
	// Open starts the source. It runs before the upgrade, so an error it
	// returns is answered as a problem document. ctx ends with the stream.
	Open func(ctx context.Context, resume Resume) (Source, error)
}

// Resume is where a reconnecting client asks to pick up: after the message
// with seq After.
type Resume struct {
	After uint64
	Set   bool
}

// Source is an open subscription feeding one connection.
type Source struct {
	// C carries the stream's messages; it is closed when the source ends.
	C <-chan Message
	// Err says why C was closed (nil: a clean end). Called once C is closed.
	Err func() error
	// Close releases the subscription; called once, when the stream ends.
	Close func()
	// Resumed reports that the source picked up after Resume.After.
	Resumed bool
}

// Message is one message of a stream.
type Message struct {
	Type string
	Data any
	Seq  uint64
	// At is when the source learned of it, for the lag metric; zero: not
	// measured.
	At time.Time
}

// Encoded is a Message's Data already encoded as one JSON value, for a
// message that goes to many connections: the hub writes it into each
// envelope as it is, with no encoding or validation per connection. The
// source vouches that it is valid JSON (encoding/json's output).
type Encoded []byte

// wire is the envelope every message travels in.
type wire struct {
	Type string `json:"type"`
	Data any    `json:"data,omitempty"`
	Seq  uint64 `json:"seq,omitempty"`
}

// ErrTooSlow ends a source whose client fell behind its bounded buffer.
var ErrTooSlow = problem.Errorf(problem.CodeUnavailable, "the client read too slowly and fell behind; reconnect and resume")

// Close codes of the application range (4000-4999), mirroring HTTP.
const (
	CloseUnauthenticated = 4401
	CloseForbidden       = 4403
	CloseTooSlow         = 4408
)

// checkHandshake refuses, as a problem document, what the upgrade would
// refuse in plain text: a request that is not a WebSocket handshake, and a
// page of another origin (the session cookie must not work cross-site).
// The Origin must match scheme, host and port exactly.
func (h *Hub) checkHandshake(req *http.Request) error {
	hd := req.Header
	if !strings.EqualFold(hd.Get("Upgrade"), "websocket") || !headerHasToken(hd, "Connection", "upgrade") {
		return problem.Errorf(problem.CodeInvalid, "this endpoint speaks WebSocket: connect with an Upgrade: websocket request")
	}
	if hd.Get("Sec-WebSocket-Version") != "13" {
		return problem.Invalid(map[string]string{"Sec-WebSocket-Version": "must be 13"})
	}
	if hd.Get("Sec-WebSocket-Key") == "" {
		return problem.Invalid(map[string]string{"Sec-WebSocket-Key": "is required"})
	}
	if origin := hd.Get("Origin"); origin != "" && !strings.EqualFold(origin, h.cfg.Origin) {
		return problem.Errorf(problem.CodeForbidden, "a page from %q may not open this stream; only pages of %s may", origin, h.cfg.Origin)
	}
	return nil
}

// headerHasToken reports whether the comma-separated header name holds
// token (case-insensitively).
func headerHasToken(hd http.Header, name, token string) bool {
	for _, v := range hd.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// RequireHandshake runs next only for a WebSocket handshake from an allowed
// origin, so a plain GET is told what the endpoint speaks before anything
// else runs.
func (h *Hub) RequireHandshake(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := h.checkHandshake(c.Request()); err != nil {
			return err
		}
		return next(c)
	}
}

func resumeParam(c echo.Context) (Resume, error) {
	s := c.QueryParam("resume_after")
	if s == "" {
		return Resume{}, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return Resume{}, problem.Invalid(map[string]string{"resume_after": "must be the seq of a message this stream sent (a whole number)"})
	}
	return Resume{After: n, Set: true}, nil
}

// Serve authorizes st for the request's principal (set by
// web.RequireTenantStream), opens its source, upgrades, and runs the stream
// until it ends. Errors before the upgrade are returned for the server to
// answer; after it, they end the stream.
func (h *Hub) Serve(c echo.Context, st Stream) error {
	req := c.Request()
	if err := h.checkHandshake(req); err != nil {
		return err
	}
	p := web.PrincipalOf(c)
	if err := h.rbac.Authorize(req.Context(), p, st.Action, st.Object); err != nil {
		return err
	}
	resume, err := resumeParam(c)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return problem.Errorf(problem.CodeUnavailable, "the server is shutting down")
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	stopOnClose := context.AfterFunc(h.ctx, cancel)
	defer stopOnClose()
	src, err := st.Open(ctx, resume)
	if err != nil {
		return err
	}
	defer src.Close()
	cn := &conn{hub: h, kind: st.Kind, action: st.Action, object: st.Object, cred: web.CredentialOf(c), slug: p.TenantSlug,
		principal: p, closeReq: make(chan closeRequest, 1)}
	return cn.run(ctx, c, src)
}

// add registers an open connection for rechecks.
func (h *Hub) add(cn *conn) {
	h.mu.Lock()
	h.conns[cn] = struct{}{}
	h.mu.Unlock()
	h.met.open.WithLabelValues(cn.kind).Inc()
}

func (h *Hub) remove(cn *conn) {
	h.mu.Lock()
	delete(h.conns, cn)
	h.mu.Unlock()
	h.met.open.WithLabelValues(cn.kind).Dec()
}

// changed re-checks every stream ch matches, one derivation of the
// principal per distinct credential and tenant.
func (h *Hub) changed(ch database.RightsChange) {
	groups := map[recheckKey][]*conn{}
	h.mu.Lock()
	for cn := range h.conns {
		if p := cn.currentPrincipal(); ch.Matches(p.Tenant, p.UserID, p.TokenID) {
			k := recheckKey{cn.cred, cn.slug}
			groups[k] = append(groups[k], cn)
		}
	}
	closed := h.closed
	if !closed {
		h.wg.Add(len(groups))
	}
	h.mu.Unlock()
	if closed {
		return
	}
	for k, conns := range groups {
		go func() {
			defer h.wg.Done()
			select {
			case h.check <- struct{}{}:
			case <-h.ctx.Done():
				return
			}
			defer func() { <-h.check }()
			h.recheck(k, conns)
		}()
	}
}

type recheckKey struct {
	cred web.Credential
	slug string
}

// recheck derives the principal of k again and closes each stream whose
// credential or right is gone.
func (h *Hub) recheck(k recheckKey, conns []*conn) {
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	p, err := h.web.PrincipalFor(ctx, k.cred, k.slug)
	if err != nil {
		code := CloseForbidden
		switch problem.Code(err) {
		case problem.CodeUnauthenticated:
			code = CloseUnauthenticated
		case problem.CodeNotFound:
			err = problem.Errorf(problem.CodeForbidden, "you are no longer a member of this organisation")
		case problem.CodeForbidden:
		default:
			// The database did not answer: keep the streams; the next
			// recheck decides.
			h.log.Warn("live: re-check of a stream's rights failed; keeping it open", "err", err)
			return
		}
		for _, cn := range conns {
			cn.requestClose(code, err)
		}
		return
	}
	for _, cn := range conns {
		if err := h.rbac.Authorize(ctx, p, cn.action, cn.object); err != nil {
			if problem.Code(err) == problem.CodeInternal {
				h.log.Warn("live: re-authorization of a stream failed; keeping it open", "err", err)
				continue
			}
			cn.requestClose(CloseForbidden, err)
			continue
		}
		cn.setPrincipal(p)
	}
}

// recheckLoop re-checks every stream now and then (see Config.RecheckEvery).
func (h *Hub) recheckLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.RecheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.changed(database.RightsChange{})
		}
	}
}

// OpenStreams returns how many streams are open on this hub.
func (h *Hub) OpenStreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// isClosing reports whether err is only the end of the hub or the request.
func isClosing(err error) bool {
	return errors.Is(err, context.Canceled)
}

// principal helpers guard cn.principal, which rechecks replace.
func (cn *conn) currentPrincipal() auth.Principal {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.principal
}

func (cn *conn) setPrincipal(p auth.Principal) {
	cn.mu.Lock()
	cn.principal = p
	cn.mu.Unlock()
}
