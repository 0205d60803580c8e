package tracing

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
)

// Gate bounds the ingest: how many requests are decoded and written at
// once (more wait a moment for a slot, then are told to retry: the
// database is the bottleneck, and a long queue in front of it would only
// add latency), and how many spans a second each tenant may send.
type Gate struct {
	// PerSecond is each tenant's rate of spans, with a burst of twice it.
	PerSecond int
	slots     chan struct{}

	mu      sync.Mutex
	tenants map[uuid.UUID]*rate.Limiter
}

// NewGate returns a gate letting inFlight requests in at once and each
// tenant perSecond spans a second.
func NewGate(inFlight, perSecond int) *Gate {
	return &Gate{PerSecond: perSecond, slots: make(chan struct{}, inFlight), tenants: map[uuid.UUID]*rate.Limiter{}}
}

// Acquire takes a slot, waiting at most wait for one; false: none came
// free (or ctx ended). Release gives it back.
func (g *Gate) Acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Release gives back a slot TryAcquire took.
func (g *Gate) Release() { <-g.slots }

// Allow takes n spans from tenant's rate; when it cannot, it takes none
// and says after how many seconds to retry.
func (g *Gate) Allow(tenant uuid.UUID, n int) (retryAfter int, ok bool) {
	g.mu.Lock()
	l := g.tenants[tenant]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(g.PerSecond), 2*g.PerSecond)
		g.tenants[tenant] = l
	}
	g.mu.Unlock()
	now := time.Now()
	r := l.ReserveN(now, n)
	if !r.OK() {
		return int(math.Ceil(float64(n) / float64(g.PerSecond))), false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return int(math.Ceil(d.Seconds())), false
	}
	return 0, true
}
