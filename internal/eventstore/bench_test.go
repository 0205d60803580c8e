package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

var benchData = json.RawMessage(`{"order_id":"o-123","amount":4200,"currency":"EUR","lines":[{"sku":"a","qty":1}]}`)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runWriters calls op from `writers` goroutines until it ran n times in all,
// and returns the wall time and each call's latency.
func runWriters(b *testing.B, writers, n int, op func(w int) error) (time.Duration, []time.Duration) {
	b.Helper()
	var next atomic.Int64
	lats := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := op(w); err != nil {
					failed.Store(err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return elapsed, slices.Concat(lats...)
}

// BenchmarkAppend_Single16Writers: one event per append, 16 concurrent
// writers, each on its own stream.
func BenchmarkAppend_Single16Writers(b *testing.B) {
	s, db := newStore(b, Config{})
	tenant := newTenant(b, db)
	ctx := context.Background()
	b.ResetTimer()
	elapsed, lats := runWriters(b, 16, b.N, func(w int) error {
		_, err := s.Append(ctx, tenant, fmt.Sprintf("bench-%d", w), Any(), []EventData{{Type: "OrderPlaced", Data: benchData}})
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(percentile(lats, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lats, 0.99)), "p99-ms")
}

// BenchmarkAppend_Batch100: 100 events per append; b.N counts appends.
func BenchmarkAppend_Batch100(b *testing.B) {
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, db := newStore(b, Config{})
			tenant := newTenant(b, db)
			ctx := context.Background()
			batch := make([]EventData, 100)
			for i := range batch {
				batch[i] = EventData{Type: "LineAdded", Data: benchData}
			}
			b.ResetTimer()
			elapsed, lats := runWriters(b, writers, b.N, func(w int) error {
				_, err := s.Append(ctx, tenant, fmt.Sprintf("bench-%d", w), Any(), batch) // ids generated per call
				return err
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(batch))/elapsed.Seconds(), "events/s")
			b.ReportMetric(ms(percentile(lats, 0.99)), "p99-ms")
		})
	}
}

// BenchmarkSubscription_Lag: time from an append's commit (its return) to
// the delivery of its event to a live subscriber, with 16 writers at full
// speed, and with one writer paced at 500 appends/s.
func BenchmarkSubscription_Lag(b *testing.B) {
	for _, mode := range []string{"saturated-16-writers", "paced-500/s"} {
		b.Run(mode, func(b *testing.B) {
			s, db := newStore(b, Config{})
			tenant := newTenant(b, db)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub, err := s.Subscribe(ctx, tenant, 0, "")
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()

			var mu sync.Mutex // guards committed
			committed := make(map[uuid.UUID]time.Time, b.N)
			delivered := make(map[uuid.UUID]time.Time, b.N)
			got := make(chan struct{})
			go func() {
				defer close(got)
				for e := range sub.Events() {
					delivered[e.ID] = time.Now()
					if len(delivered) == b.N {
						return
					}
				}
			}()
			writers, pace := 16, time.Duration(0)
			if mode != "saturated-16-writers" {
				writers, pace = 1, 2*time.Millisecond
			}
			b.ResetTimer()
			elapsed, _ := runWriters(b, writers, b.N, func(w int) error {
				t0 := time.Now()
				res, err := s.Append(ctx, tenant, fmt.Sprintf("lag-%d", w), Any(), []EventData{{Type: "Tick", Data: benchData}})
				if err != nil {
					return err
				}
				now := time.Now()
				mu.Lock()
				committed[res.EventIDs[0]] = now
				mu.Unlock()
				if d := pace - now.Sub(t0); d > 0 {
					time.Sleep(d)
				}
				return nil
			})
			select {
			case <-got:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d", len(delivered), b.N)
			}
			b.StopTimer()
			lags := make([]time.Duration, 0, b.N)
			for id, at := range delivered {
				lags = append(lags, max(0, at.Sub(committed[id])))
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(ms(percentile(lags, 0.50)), "lag-p50-ms")
			b.ReportMetric(ms(percentile(lags, 0.99)), "lag-p99-ms")
		})
	}
}

// BenchmarkSubscription_FanOut: 1,000 live subscriptions of one tenant at
// the head of the log while one writer appends b.N single events as fast as
// it can. A sample is one delivery, from just before the append's call to
// the subscriber's receipt; every subscription must get every event once,
// in order. log-reads/commit counts the reads of the log per positioned
// transaction (1,000 if each subscription read on its own; at most about 1
// when they share).
func BenchmarkSubscription_FanOut(b *testing.B) {
	const subs = 1000
	s, db := newStore(b, Config{})
	tenant := newTenant(b, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make([]atomic.Int64, b.N) // unix ns, set before the append
	lats := make([][]time.Duration, subs)
	wrong := make([]string, subs)
	var wg sync.WaitGroup
	for i := range subs {
		sub, err := s.Subscribe(ctx, tenant, 0, "")
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		wg.Go(func() {
			for e := range sub.Events() {
				lats[i] = append(lats[i], time.Since(time.Unix(0, sent[e.Version].Load())))
				if e.Version != int64(len(lats[i])-1) {
					wrong[i] = fmt.Sprintf("version %d as delivery %d", e.Version, len(lats[i]))
					return
				}
				if len(lats[i]) == b.N {
					return
				}
			}
		})
	}
	reads := s.logReads.Load()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sent[i].Store(time.Now().UnixNano())
		if _, err := s.Append(ctx, tenant, "fan-1", Any(), []EventData{{Type: "Tick", Data: benchData}}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for i := range lats {
		if wrong[i] != "" || len(lats[i]) != b.N {
			b.Fatalf("subscription %d: %d of %d events %s", i, len(lats[i]), b.N, wrong[i])
		}
	}
	var commits int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM event_commits WHERE tenant_id = $1`, tenant).Scan(&commits); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lats...)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(s.logReads.Load()-reads)/float64(max(commits, 1)), "log-reads/commit")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
}
