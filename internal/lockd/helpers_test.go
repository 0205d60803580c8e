package lockd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"switchboard/internal/problem"
)

func TestMain(m *testing.M) {
	// No ignores: hashicorp/raft waits for its own goroutines in Shutdown,
	// except emitLogStoreMetrics, which returns as soon as the leader loop
	// closes its stop channel (goleak's retries cover that instant), and
	// the transport's per-connection handlers, which end because our
	// stream layer closes every connection it made or accepted.
	goleak.VerifyTestMain(m)
}

// testLog shows Raft's warnings when LOCKD_TEST_LOG is set; silent otherwise.
func testLog() *slog.Logger {
	if os.Getenv("LOCKD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testTimeouts are loopback timeouts with room for -race on two busy cores.
func testConfig(id, dir, bind string) Config {
	return Config{
		NodeID:             id,
		BindAddr:           bind,
		DataDir:            dir,
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := problem.Code(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// canonical returns the node's state machine in canonical encoding: equal
// states encode equally.
func (f *fsm) canonical() []byte {
	f.mu.RLock()
	s := f.stateLocked()
	f.mu.RUnlock()
	s.sort()
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ---------------------------------------------------------------------------
// A network that can isolate nodes.

// partitionNet wraps every node's stream layer. Each dialled connection
// starts with a header naming the dialling node, so both ends of every
// connection know both node addresses. Isolating a node closes its
// connections and makes every later dial, read or write touching it fail.
type partitionNet struct {
	mu       sync.Mutex // guards isolated and conns
	isolated map[string]bool
	conns    map[*pconn]bool
}

func newPartitionNet() *partitionNet {
	return &partitionNet{isolated: map[string]bool{}, conns: map[*pconn]bool{}}
}

var errPartitioned = errors.New("partitioned")

func (pn *partitionNet) blocked(a, b string) bool {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	return pn.isolated[a] || pn.isolated[b]
}

// isolate cuts addr off from every other node (or heals it).
func (pn *partitionNet) isolate(addr string, cut bool) {
	pn.mu.Lock()
	pn.isolated[addr] = cut
	var doomed []*pconn
	if cut {
		for c := range pn.conns {
			if c.local == addr || c.peer() == addr {
				doomed = append(doomed, c)
			}
		}
	}
	pn.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

func (pn *partitionNet) wrap(inner raft.StreamLayer) raft.StreamLayer {
	return &pstream{StreamLayer: inner, pn: pn, self: inner.Addr().String()}
}

type pstream struct {
	raft.StreamLayer
	pn   *partitionNet
	self string
}

func (s *pstream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.pn.blocked(s.self, string(addr)) {
		return nil, errPartitioned
	}
	c, err := s.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	hdr := append([]byte{byte(len(s.self))}, s.self...)
	if _, err := c.Write(hdr); err != nil {
		c.Close()
		return nil, err
	}
	return s.pn.track(&pconn{Conn: c, pn: s.pn, local: s.self, remote: string(addr)}), nil
}

func (s *pstream) Accept() (net.Conn, error) {
	c, err := s.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return s.pn.track(&pconn{Conn: c, pn: s.pn, local: s.self}), nil
}

func (pn *partitionNet) track(c *pconn) *pconn {
	pn.mu.Lock()
	pn.conns[c] = true
	pn.mu.Unlock()
	return c
}

type pconn struct {
	net.Conn
	pn    *partitionNet
	local string

	mu     sync.Mutex // guards remote
	remote string     // the other node; read from the header on accepted conns
}

func (c *pconn) peer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

func (c *pconn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.remote == "" {
		var n [1]byte
		if _, err := io.ReadFull(c.Conn, n[:]); err != nil {
			c.mu.Unlock()
			return 0, err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c.Conn, name); err != nil {
			c.mu.Unlock()
			return 0, err
		}
		c.remote = string(name)
	}
	remote := c.remote
	c.mu.Unlock()
	if c.pn.blocked(c.local, remote) {
		c.Close()
		return 0, errPartitioned
	}
	return c.Conn.Read(p)
}

func (c *pconn) Write(p []byte) (int, error) {
	if c.pn.blocked(c.local, c.peer()) {
		c.Close()
		return 0, errPartitioned
	}
	return c.Conn.Write(p)
}

func (c *pconn) Close() error {
	c.pn.mu.Lock()
	delete(c.pn.conns, c)
	c.pn.mu.Unlock()
	return c.Conn.Close()
}

// ---------------------------------------------------------------------------
// In-process clusters on loopback TCP.

type testNode struct {
	id, addr, dir string
	node          *Node // nil while down
}

type cluster struct {
	t     testing.TB
	pn    *partitionNet
	mu    sync.Mutex // guards nodes[i].node for concurrent clients
	nodes []*testNode
	tweak func(*Config)
	opts  nodeOptions // for every node; wrapStream is the cluster's own
}

// newCluster starts size nodes: node 0 bootstraps alone, the others join
// through AddVoter on the leader (ports are chosen by the kernel).
func newCluster(t testing.TB, size int, tweak func(*Config)) *cluster {
	t.Helper()
	return newClusterOpts(t, size, tweak, nodeOptions{})
}

// newClusterOpts is newCluster with test hooks for every node.
func newClusterOpts(t testing.TB, size int, tweak func(*Config), opts nodeOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, pn: newPartitionNet(), tweak: tweak, opts: opts}
	for i := range size {
		c.nodes = append(c.nodes, &testNode{id: fmt.Sprintf("n%d", i), dir: t.TempDir(), addr: "127.0.0.1:0"})
	}
	// Registered after the TempDirs, so it runs before they are removed.
	t.Cleanup(c.closeAll)
	for i, tn := range c.nodes {
		c.start(i, i > 0)
		if i == 0 {
			c.waitLeader(10 * time.Second)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.leader().AddVoter(ctx, tn.id, tn.addr)
		cancel()
		if err != nil {
			t.Fatalf("add voter %s: %v", tn.id, err)
		}
	}
	c.waitConverged(10 * time.Second)
	return c
}

func (c *cluster) config(i int, join bool) Config {
	tn := c.nodes[i]
	cfg := testConfig(tn.id, tn.dir, tn.addr)
	cfg.Join = join
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

// start (re)starts node i on its address and data dir.
func (c *cluster) start(i int, join bool) {
	c.t.Helper()
	tn := c.nodes[i]
	opts := c.opts
	opts.wrapStream = c.pn.wrap
	n, err := newNode(c.config(i, join), testLog(), opts)
	if err != nil {
		c.t.Fatalf("start %s: %v", tn.id, err)
	}
	c.mu.Lock()
	tn.node = n
	tn.addr = n.addr
	c.mu.Unlock()
}

// stop closes node i (a crash as far as the others can tell, since they
// only see its connections end).
func (c *cluster) stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[i].node
	c.nodes[i].node = nil
	c.mu.Unlock()
	if n != nil {
		if err := n.Close(); err != nil {
			c.t.Errorf("close %s: %v", c.nodes[i].id, err)
		}
	}
}

func (c *cluster) closeAll() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(i) }()
	}
	wg.Wait()
}

func (c *cluster) node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].node
}

func (c *cluster) live() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, tn := range c.nodes {
		if tn.node != nil {
			out = append(out, i)
		}
	}
	return out
}

// leaderIndex returns the index of a live node that is a ready leader, or -1.
func (c *cluster) leaderIndex() int {
	for _, i := range c.live() {
		if n := c.node(i); n != nil && n.raft.State() == raft.Leader && n.isReady() {
			return i
		}
	}
	return -1
}

func (c *cluster) leader() *Node {
	c.t.Helper()
	i := c.leaderIndex()
	if i < 0 {
		c.t.Fatal("no leader")
	}
	return c.node(i)
}

// waitLeader waits for a ready leader and returns its index.
func (c *cluster) waitLeader(timeout time.Duration) int {
	c.t.Helper()
	idx := -1
	eventually(c.t, timeout, "a ready leader", func() bool { idx = c.leaderIndex(); return idx >= 0 })
	return idx
}

// waitConverged waits until every live node has applied the leader's last
// index and knows the same leader.
func (c *cluster) waitConverged(timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, "all nodes to apply the same log", func() bool {
		li := c.leaderIndex()
		if li < 0 {
			return false
		}
		last := c.node(li).raft.LastIndex()
		for _, i := range c.live() {
			n := c.node(i)
			// The state machine's own index, not Raft's: Raft counts an
			// entry applied when it hands it to the state machine, before
			// the state machine has applied it.
			if n == nil || n.fsmApplied() < last {
				return false
			}
			if _, id := n.raft.LeaderWithID(); string(id) != c.nodes[li].id {
				return false
			}
		}
		return true
	})
}

// requireSameState fails unless every live node comes to hold the same
// state (retrying while entries are still in flight).
func (c *cluster) requireSameState() {
	c.t.Helper()
	var diff string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.waitConverged(10 * time.Second)
		diff = ""
		var want []byte
		var from string
		for _, i := range c.live() {
			got := c.node(i).fsm.canonical()
			if want == nil {
				want, from = got, c.nodes[i].id
				continue
			}
			if string(got) != string(want) {
				diff = fmt.Sprintf("state of %s differs from %s:\n%s\n%s", c.nodes[i].id, from, got, want)
			}
		}
		if diff == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal(diff)
}

// replayOffline rebuilds a stopped node's state from its data dir the way a
// restart does: the latest snapshot, then every later log entry.
func replayOffline(t testing.TB, dir string) []byte {
	t.Helper()
	store, err := openLogStore(dir, hclog.NewNullLogger(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := newFSM(nil)
	var from uint64
	if metas, err := snaps.List(); err != nil {
		t.Fatal(err)
	} else if len(metas) > 0 {
		_, rc, err := snaps.Open(metas[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Restore(rc); err != nil {
			t.Fatal(err)
		}
		from = metas[0].Index
	}
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	for i := max(first, from+1); i <= last && i > 0; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
		f.Apply(&l)
	}
	return f.canonical()
}

// fsmApplied is the index of the last entry n's state machine has applied.
func (n *Node) fsmApplied() uint64 {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	return n.fsm.applied
}
