package lockd

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Benchmarks run on loopback clusters of real nodes; every log write is
// fsynced, so a commit waits for the leader's fsync and then a follower's,
// and on a slow disk the fsyncs, not Raft, bound the latency. Most run with
// the default timeouts (defaultTimeouts). benchTweak is the tuned variant
// BenchmarkFailover compares them with: heartbeats every 250ms detect a dead
// leader within 250-750ms and an election takes little more, while leaving
// room for scheduling hiccups on a busy machine.
func benchTweak() func(*Config) {
	return func(cfg *Config) {
		cfg.HeartbeatTimeout = 250 * time.Millisecond
		cfg.ElectionTimeout = 250 * time.Millisecond
		cfg.LeaderLeaseTimeout = 150 * time.Millisecond
		cfg.CommitTimeout = 5 * time.Millisecond
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cycles runs b.N acquire+release cycles from `clients` goroutines, each on
// its own lock, and reports throughput and cycle latency.
func cycles(b *testing.B, n *Node, clients int) {
	ctx := context.Background()
	ten := uuid.New()
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("lock-%d", w)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				l, err := n.Acquire(ctx, ten, name, "bench", 10*time.Second, 0)
				if err != nil {
					b.Error(err)
					return
				}
				if err := n.Release(ctx, ten, name, l.Token); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "cycles/s")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
}

// handoff measures how long a released lock takes to reach the next queued
// waiter: from the start of Release to the waiter's Acquire returning.
func handoff(b *testing.B, n *Node, contenders int) {
	ctx := context.Background()
	ten := uuid.New()
	var releasedAt atomic.Int64 // UnixNano of the last Release call, 0 before the first
	var next atomic.Int64
	var mu sync.Mutex // guards lat
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	for range contenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				l, err := n.Acquire(ctx, ten, "hot", "bench", 10*time.Second, 30*time.Second)
				if err != nil {
					b.Error(err)
					return
				}
				if at := releasedAt.Load(); at != 0 {
					mu.Lock()
					lat = append(lat, time.Since(time.Unix(0, at)))
					mu.Unlock()
				}
				releasedAt.Store(time.Now().UnixNano())
				if err := n.Release(ctx, ten, "hot", l.Token); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(ms(percentile(lat, 0.50)), "handoff-p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "handoff-p99-ms")
}

// defaultTimeouts undoes the test timeouts: every Raft timeout is the
// Config zero value, so the node runs with the defaults a server gets.
func defaultTimeouts(cfg *Config) {
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 0, 0, 0, 0
}

// BenchmarkLocks: 32 clients on distinct locks, one client alone, and a hot
// lock handed between 4 waiters, on a single node and on a 3-node group,
// with the default timeouts; each once with concurrent commands batched
// into shared log entries (what nodes do) and once with one entry per
// command, to show what batching buys.
func BenchmarkLocks(b *testing.B) {
	for _, size := range []int{1, 3} {
		for _, batched := range []bool{true, false} {
			name := fmt.Sprintf("%d-nodes", size)
			if size == 1 {
				name = "1-node"
			}
			if !batched {
				name += "-unbatched"
			}
			b.Run(name, func(b *testing.B) {
				c := newClusterOpts(b, size, defaultTimeouts, nodeOptions{unbatched: !batched})
				n := c.leader()
				b.Run("uncontended-32-clients", func(b *testing.B) { cycles(b, n, 32) })
				b.Run("single-client", func(b *testing.B) { cycles(b, n, 1) })
				b.Run("handoff-4-waiters", func(b *testing.B) { handoff(b, n, 4) })
				c.closeAll()
			})
		}
	}
}

// BenchmarkFailover kills the leader of a 3-node cluster and times until a
// new leader is elected, has applied its barrier and promote entries, and
// grants a lock. The killed node is restarted between iterations. It runs
// with the default timeouts and with the tuned ones of benchTweak.
func BenchmarkFailover(b *testing.B) {
	b.Run("default-timeouts", func(b *testing.B) { benchFailover(b, defaultTimeouts) })
	b.Run("tuned", func(b *testing.B) { benchFailover(b, benchTweak()) })
}

func benchFailover(b *testing.B, tweak func(*Config)) {
	c := newCluster(b, 3, tweak)
	ctx := context.Background()
	ten := uuid.New()
	var times []time.Duration
	b.ResetTimer()
	for i := range b.N {
		old := c.leaderIndex()
		start := time.Now()
		c.stop(old)
		for {
			if li := c.leaderIndex(); li >= 0 {
				if _, err := c.node(li).Acquire(ctx, ten, fmt.Sprintf("after-%d", i), "bench", time.Minute, 0); err == nil {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("no leader after 30s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		c.start(old, false)
		c.waitConverged(30 * time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	var sum time.Duration
	for _, d := range times {
		sum += d
	}
	b.ReportMetric(ms(sum/time.Duration(len(times))), "failover-mean-ms")
	b.ReportMetric(ms(slices.Max(times)), "failover-max-ms")
}
