package live

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/web"
)

// conn is one open stream.
type conn struct {
	hub      *Hub
	kind     string
	action   string
	object   rbac.Object
	cred     web.Credential
	slug     string
	closeReq chan closeRequest // buffered 1: the first request wins

	mu        sync.Mutex // guards principal
	principal auth.Principal
}

type closeRequest struct {
	code websocket.StatusCode
	err  error
}

// requestClose asks the stream to end with code, telling the client err.
// It never blocks.
func (cn *conn) requestClose(code int, err error) {
	select {
	case cn.closeReq <- closeRequest{websocket.StatusCode(code), err}:
	default:
	}
}

// run upgrades and pumps src to the client until one of them ends, the hub
// closes, or the stream is closed for a reason (closeReq).
func (cn *conn) run(ctx context.Context, c echo.Context, src Source) error {
	h := cn.hub
	ws, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		// The Origin was checked exactly (scheme, host and port) before.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil // Accept has written the refusal
	}
	c.Response().Committed = true
	ws.SetReadLimit(4 << 10)
	h.add(cn)
	defer h.remove(cn)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lastPong atomic.Int64
	lastPong.Store(time.Now().UnixNano())
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var m struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(data, &m) == nil && m.Type == "pong" {
				lastPong.Store(time.Now().UnixNano())
			}
		}
	}()
	defer func() { <-readDone }()

	// One timer bounds every write: armed before it, stopped after it. A
	// write that outlasts WriteTimeout closes the connection, which ends
	// the write. (A context with a deadline per write would cost a timer
	// and a cancellation hook each time, on every connection.)
	watchdog := time.AfterFunc(time.Hour, func() { ws.CloseNow() })
	watchdog.Stop()
	defer watchdog.Stop()
	write := func(m wire) error {
		b, err := encodeWire(m)
		if err != nil {
			return err
		}
		watchdog.Reset(h.cfg.WriteTimeout)
		err = ws.Write(context.Background(), websocket.MessageText, b)
		watchdog.Stop()
		return err
	}
	lag := h.met.lag.WithLabelValues(cn.kind)
	end := func(code websocket.StatusCode, reason string, cause error) error {
		if cause != nil {
			_ = write(wire{Type: "error", Data: web.ProblemFor(ctx, h.log, cause, c.Request().URL.Path)})
		}
		_ = ws.Close(code, closeReason(reason))
		return nil
	}
	if err := write(wire{Type: "ready", Data: map[string]bool{"resumed": src.Resumed}}); err != nil {
		ws.CloseNow()
		return nil
	}
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			if h.ctx.Err() != nil {
				return end(websocket.StatusGoingAway, "the server is shutting down", nil)
			}
			ws.CloseNow() // the client went away
			return nil
		case r := <-cn.closeReq:
			h.met.closed.WithLabelValues(cn.kind, closeLabel(r.code)).Inc()
			msg := "closed"
			if pe, ok := problem.As(r.err); ok {
				msg = pe.Message
			}
			return end(r.code, msg, r.err)
		case <-ping.C:
			if time.Since(time.Unix(0, lastPong.Load())) > 2*h.cfg.PingInterval+h.cfg.WriteTimeout {
				h.met.closed.WithLabelValues(cn.kind, "no_pong").Inc()
				return end(CloseTooSlow, "no answer to pings", nil)
			}
			if err := write(wire{Type: "ping"}); err != nil {
				h.met.closed.WithLabelValues(cn.kind, "too_slow").Inc()
				ws.CloseNow()
				return nil
			}
		case m, ok := <-src.C:
			if !ok {
				err := src.Err()
				switch {
				case err == nil || isClosing(err):
					return end(websocket.StatusNormalClosure, "the stream ended", nil)
				case errors.Is(err, ErrTooSlow):
					h.met.closed.WithLabelValues(cn.kind, "too_slow").Inc()
					return end(CloseTooSlow, "too slow: fell behind the stream", err)
				default:
					h.met.closed.WithLabelValues(cn.kind, "failed").Inc()
					return end(websocket.StatusInternalError, "the stream failed", err)
				}
			}
			if err := write(wire{Type: m.Type, Data: m.Data, Seq: m.Seq}); err != nil {
				if ctx.Err() == nil {
					h.met.closed.WithLabelValues(cn.kind, "too_slow").Inc()
				}
				ws.CloseNow()
				return nil
			}
			if !m.At.IsZero() {
				lag.Observe(time.Since(m.At).Seconds())
			}
		}
	}
}

// closeReason fits a reason into a close frame (at most 123 bytes).
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	s = s[:123]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func closeLabel(code websocket.StatusCode) string {
	switch code {
	case CloseUnauthenticated:
		return "unauthenticated"
	case CloseForbidden:
		return "forbidden"
	case CloseTooSlow:
		return "too_slow"
	}
	return "other"
}

// encodeWire encodes the envelope of m; Encoded data goes in as it is.
func encodeWire(m wire) ([]byte, error) {
	raw, ok := m.Data.(Encoded)
	if !ok {
		return json.Marshal(m)
	}
	typ, err := json.Marshal(m.Type)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(raw)+len(typ)+48)
	b = append(b, `{"type":`...)
	b = append(b, typ...)
	if len(raw) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, raw...)
	}
	if m.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, m.Seq, 10)
	}
	return append(b, '}'), nil
}
