package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/internal/api"
)

// lockClient runs acquire+release cycles through the REST API.
type lockClient struct {
	hc  *http.Client
	tok string
}

func newLockClient(tok string, conns int) *lockClient {
	return &lockClient{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}, tok: tok}
}

func (lc *lockClient) call(method, url string, body any, out any) error {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+lc.tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := lc.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (lc *lockClient) cycle(base, name string) error {
	var l api.LockResponse
	if err := lc.call("POST", base+"/api/v1/tenants/bench/locks/"+name, map[string]any{"owner": "bench", "ttl_ms": 10000}, &l); err != nil {
		return err
	}
	return lc.call("DELETE", base+"/api/v1/tenants/bench/locks/"+name, map[string]any{"token": l.Token}, nil)
}

// run does n cycles against base from `clients` goroutines, each on a lock
// of its own, and returns each cycle's latency and the time taken.
func (lc *lockClient) run(b *testing.B, base string, clients, n int) ([]time.Duration, time.Duration) {
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			name := fmt.Sprintf("lock-%d", w)
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := lc.cycle(base, name); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lat...), time.Since(start)
}

// lockCycles runs b.N cycles against base and reports cycles/s, p50, p99.
func lockCycles(b *testing.B, base, tok string, clients int) {
	lc := newLockClient(tok, clients)
	defer lc.hc.CloseIdleConnections()
	lc.run(b, base, clients, clients) // connections open and every path warm
	b.ResetTimer()
	lat, elapsed := lc.run(b, base, clients, b.N)
	b.StopTimer()
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "cycles/s")
	reportPercentiles(b, lat)
}

// leaderVsFollower runs b.N cycles half through the leader and half
// through a follower, in alternating rounds so that both see the same
// machine (the disk's fsync time drifts), and reports both rates and the
// follower's as a share of the leader's.
func leaderVsFollower(b *testing.B, leader, follower, tok string, clients int) {
	lc := newLockClient(tok, clients)
	defer lc.hc.CloseIdleConnections()
	lc.run(b, leader, clients, clients)
	lc.run(b, follower, clients, clients)
	const rounds = 8
	var n [2]int
	var took [2]time.Duration
	var lat [2][]time.Duration
	b.ResetTimer()
	for r := range rounds {
		i := r % 2
		l, d := lc.run(b, []string{leader, follower}[i], clients, max(b.N/rounds, 1))
		n[i] += len(l)
		took[i] += d
		lat[i] = append(lat[i], l...)
	}
	b.StopTimer()
	rate := func(i int) float64 { return float64(n[i]) / took[i].Seconds() }
	b.ReportMetric(rate(0), "leader-cycles/s")
	b.ReportMetric(rate(1), "follower-cycles/s")
	b.ReportMetric(100*rate(1)/rate(0), "follower-%-of-leader")
	slices.Sort(lat[1])
	if len(lat[1]) > 0 {
		b.ReportMetric(float64(lat[1][len(lat[1])/2].Microseconds())/1000, "follower-p50-ms")
		b.ReportMetric(float64(lat[1][len(lat[1])*99/100].Microseconds())/1000, "follower-p99-ms")
	}
}

// BenchmarkLockCycle_API: lock acquire+release cycles through the whole
// stack (HTTP, authentication, authorization, Raft with fsync), on a
// single node, then on a three-node group sent to the leader and to a
// follower, which forwards to the leader.
func BenchmarkLockCycle_API(b *testing.B) {
	ls := newTestServer(b, withOperators("bench@example.com"))
	tok := ls.signup("bench@example.com", "bench")
	b.Run("1-node-32-clients", func(b *testing.B) { lockCycles(b, ls.URL, tok, 32) })
	b.Run("1-node-1-client", func(b *testing.B) { lockCycles(b, ls.URL, tok, 1) })

	// Two more voters: the group of three now commits on a quorum of two.
	peers := map[string]string{ls.App.Locks.Status().NodeID: ls.URL}
	var followers []*testServer
	for _, id := range []string{"n2", "n3"} {
		f := newTestServer(b, replicaOf(ls), joining(id), withPeerURLs(peers))
		ls.must(200, "POST", "/api/v1/cluster/voters", tok, map[string]string{"id": id, "addr": f.App.Locks.Status().Addr})
		waitFor(b, id+" to follow the leader", func() bool { return f.App.Locks.Status().LeaderAddr != "" })
		followers = append(followers, f)
	}
	b.Run("3-nodes-32-clients", func(b *testing.B) { leaderVsFollower(b, ls.URL, followers[0].URL, tok, 32) })
	b.Run("3-nodes-1-client", func(b *testing.B) { leaderVsFollower(b, ls.URL, followers[0].URL, tok, 1) })
}
