// Package health runs the HTTP health checks services declare in the
// catalog, and reports each result.
//
// Invariants:
//   - Every check is bounded (Config.Timeout) and reads at most 64 KiB of
//     the answer; a 2xx answer is up, anything else down, with a short
//     reason that never holds the URL's user information or query.
//   - At most Config.Concurrency checks run at once; a target is checked
//     every interval (at least 5 s), its first check spread over that
//     interval so a restart does not check everything at once.
//   - Close stops every goroutine the Checker started and waits for them.
package health

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// Target is one service's check.
type Target struct {
	Tenant   uuid.UUID
	Service  string
	URL      string
	Interval time.Duration
}

// Result is one check's outcome.
type Result struct {
	Tenant    uuid.UUID
	Service   string
	Status    string // "up" or "down"
	CheckedAt time.Time
	Error     string
	Duration  time.Duration
}

// Config tunes a Checker; zero values take the defaults.
type Config struct {
	Client      *http.Client  // the egress guard's; nil: a plain one
	Timeout     time.Duration // per check, default 5s
	Reload      time.Duration // how often the targets are read again, default 10s
	Concurrency int           // default 8
	Log         *slog.Logger
}

// Checker checks its targets until Close.
type Checker struct {
	cfg     Config
	targets func(context.Context) ([]Target, error)
	report  func(context.Context, Result) error
	sem     chan struct{}
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex // guards running
	running map[key]*runner
}

type key struct {
	tenant  uuid.UUID
	service string
}

// runner checks one target until it changes or goes.
type runner struct {
	t    Target
	stop context.CancelFunc
}

// New returns a Checker over the targets targets lists; report is told of
// every check. Start starts it.
func New(cfg Config, targets func(context.Context) ([]Target, error), report func(context.Context, Result) error) *Checker {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 10 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Checker{cfg: cfg, targets: targets, report: report, sem: make(chan struct{}, cfg.Concurrency), ctx: ctx, stop: stop, running: map[key]*runner{}}
}

// Start reads the targets now and every Reload, and checks each on its
// interval.
func (c *Checker) Start() {
	c.wg.Go(func() {
		t := time.NewTicker(c.cfg.Reload)
		defer t.Stop()
		for {
			c.reload()
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Close stops every check and waits for them.
func (c *Checker) Close() {
	c.stop()
	c.wg.Wait()
}

func (c *Checker) reload() {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	ts, err := c.targets(ctx)
	if err != nil {
		if c.ctx.Err() == nil {
			c.cfg.Log.Warn("health: reading the checks failed", "err", err)
		}
		return
	}
	want := map[key]Target{}
	for _, t := range ts {
		t.Interval = max(t.Interval, 5*time.Second)
		want[key{t.Tenant, t.Service}] = t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, r := range c.running {
		if t, ok := want[k]; !ok || t != r.t {
			r.stop()
			delete(c.running, k)
		}
	}
	for k, t := range want {
		if _, ok := c.running[k]; ok {
			continue
		}
		ctx, stop := context.WithCancel(c.ctx)
		c.running[k] = &runner{t: t, stop: stop}
		c.wg.Go(func() { c.run(ctx, t) })
	}
}

// run checks t every interval, the first time after a delay spread by the
// target's name over the interval.
func (c *Checker) run(ctx context.Context, t Target) {
	h := fnv.New32a()
	h.Write([]byte(t.Tenant.String() + t.Service))
	wait := time.Duration(h.Sum32()%uint32(t.Interval/time.Millisecond)) * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r := c.CheckNow(ctx, t)
		<-c.sem
		if ctx.Err() != nil {
			return
		}
		if err := c.report(ctx, r); err != nil && ctx.Err() == nil {
			c.cfg.Log.Warn("health: recording a result failed", "service", t.Service, "err", err)
		}
		timer.Reset(t.Interval)
	}
}

// CheckNow checks t once.
func (c *Checker) CheckNow(ctx context.Context, t Target) Result {
	r := Result{Tenant: t.Tenant, Service: t.Service, CheckedAt: time.Now().UTC(), Status: "down"}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		r.Error = "the check's URL cannot be requested"
		return r
	}
	req.Header.Set("User-Agent", "Switchboard health check")
	res, err := c.cfg.Client.Do(req)
	if err != nil {
		r.Error = reason(err, c.cfg.Timeout)
		return r
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // the body is not looked at; read so the connection can be kept
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		r.Error = fmt.Sprintf("status %d", res.StatusCode)
		return r
	}
	r.Status = "up"
	return r
}

// reason says why a request failed in a few words, without its URL.
func reason(err error, timeout time.Duration) string {
	if pe, ok := problem.As(err); ok {
		return pe.Message
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "no such host"):
		return "no such host"
	case strings.Contains(err.Error(), "certificate"):
		return "TLS certificate not accepted"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	return "the request failed"
}
