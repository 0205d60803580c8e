package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter hands out one token bucket per key (an address, an email) and
// forgets idle buckets so memory stays bounded.
type limiter struct {
	every time.Duration
	burst int

	mu      sync.Mutex // guards buckets and lastGC
	buckets map[string]*rate.Limiter
	lastGC  time.Time
}

func newLimiter(every time.Duration, burst int) *limiter {
	return &limiter{every: every, burst: burst, buckets: map[string]*rate.Limiter{}}
}

// allow takes one token from key's bucket; when empty it returns false and
// how many seconds until a token is back.
func (l *limiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastGC) > time.Minute || len(l.buckets) > 100_000 {
		l.gc(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

// gc drops buckets that have refilled completely: they behave like new ones.
func (l *limiter) gc(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	l.lastGC = now
}
