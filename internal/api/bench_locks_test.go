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

// lockCycles runs b.N acquire+release cycles through the REST API of the
// server at base, from `clients` goroutines each on a lock of its own, and
// reports cycles/s and the cycle's p50 and p99.
func lockCycles(b *testing.B, base, tok string, clients int) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	call := func(method, url string, body any, out any) error {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, url, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
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
	cycle := func(name string) error {
		var l api.LockResponse
		if err := call("POST", base+"/api/v1/tenants/bench/locks/"+name, map[string]any{"owner": "bench", "ttl_ms": 10000}, &l); err != nil {
			return err
		}
		return call("DELETE", base+"/api/v1/tenants/bench/locks/"+name, map[string]any{"token": l.Token}, nil)
	}
	for w := range clients { // connections open and every path warm
		if err := cycle(fmt.Sprintf("lock-%d", w)); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			name := fmt.Sprintf("lock-%d", w)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := cycle(name); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "cycles/s")
	reportPercentiles(b, all)
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
	b.Run("3-nodes-32-clients-leader", func(b *testing.B) { lockCycles(b, ls.URL, tok, 32) })
	b.Run("3-nodes-32-clients-follower", func(b *testing.B) { lockCycles(b, followers[0].URL, tok, 32) })
	b.Run("3-nodes-1-client-leader", func(b *testing.B) { lockCycles(b, ls.URL, tok, 1) })
	b.Run("3-nodes-1-client-follower", func(b *testing.B) { lockCycles(b, followers[0].URL, tok, 1) })
}
