package api

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
)

// A follower forwards what only the Raft leader can serve (lock, election
// and KV writes, linearizable reads, membership changes) to the leader's
// Switchboard server, before it authenticates, authorizes or decodes
// anything: the leader does all of that once, on the request as the caller
// sent it (same credential, same body). Forwarding rather than redirecting
// keeps one address per deployment working for clients behind a load
// balancer that cannot reach each node, and every follower keeps its
// connections to the leader alive, so a forwarded request costs one
// loopback or LAN hop, not a new connection and a second authentication.

// forwardedHeader marks a request one node forwarded to another. A node
// never forwards such a request again: when leadership moved meanwhile it
// answers for itself (503 naming the leader), so a request is forwarded at
// most once and never loops.
const forwardedHeader = "Switchboard-Forwarded-By"

// leaderForwarder sends requests to the leader over kept-alive connections.
type leaderForwarder struct {
	proxies map[string]*httputil.ReverseProxy // by node id
}

func newLeaderForwarder(self string, peers map[string]string) *leaderForwarder {
	tr := peerTransport()
	f := &leaderForwarder{proxies: map[string]*httputil.ReverseProxy{}}
	buffers := &bufferPool{}
	for id, base := range peers {
		if id == self {
			continue
		}
		u, err := url.Parse(base)
		if err != nil || u.Host == "" {
			continue // the server's configuration check refuses such URLs
		}
		f.proxies[id] = &httputil.ReverseProxy{
			Transport:  tr,
			BufferPool: buffers,
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(u)
				r.Out.Host = r.In.Host // the leader checks origins against the shared public URL
				r.SetXForwarded()
				r.Out.Header.Set(forwardedHeader, self)
			},
			ErrorHandler: func(_ http.ResponseWriter, r *http.Request, _ error) {
				c, _ := r.Context().Value(echoContextKey{}).(echo.Context)
				if c == nil || r.Context().Err() != nil {
					return // the caller went away; nobody reads an answer
				}
				c.Error(&problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1,
					Message: "this node is not the lock service's leader and could not reach the leader's server (node " + id + "); retry"})
			},
		}
	}
	return f
}

func peerTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // peers are dialled directly, never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
}

// bufferPool keeps the proxy's copy buffers: without it every forwarded
// answer allocates 32 KiB.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// echoContextKey carries the echo context to the proxy's error handler, so
// an unreachable leader is answered like every other problem.
type echoContextKey struct{}

// toLeader wraps h: on a follower that knows the leader's server, the
// request goes there untouched; anywhere else (the leader, a node without
// peer URLs, during an election, a request already forwarded) h serves it.
func (a *API) toLeader(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.locks == nil || a.forward == nil {
			return h(c)
		}
		id, self := a.locks.LeaderID()
		if self || id == "" {
			return h(c)
		}
		p, ok := a.forward.proxies[id]
		if !ok || c.Request().Header.Get(forwardedHeader) != "" {
			return h(c)
		}
		// The body (at most MaxRequestBytes, within the body deadline) is
		// read first and sent from memory: a streamed body makes the hop
		// write headers and body apart, and costs the leader half a
		// millisecond to reassemble.
		req := c.Request()
		if req.Body != nil && req.ContentLength != 0 {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		p.ServeHTTP(c.Response(), req.WithContext(context.WithValue(req.Context(), echoContextKey{}, c)))
		return nil
	}
}

// needsLeader tells the routes only the Raft leader serves: every lock,
// election and KV route but the WebSocket streams (served from each node's
// applied state), and membership changes.
func needsLeader(r route) bool {
	switch r.Tag {
	case "locks", "elections", "kv":
		return r.Status != http.StatusSwitchingProtocols
	case "cluster":
		return r.Method != http.MethodGet
	}
	return false
}
