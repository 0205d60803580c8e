package lockd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"

	"switchboard/internal/problem"
)

// newPeersCluster starts size nodes that bootstrap together from one Peers
// list (the configuration path, as opposed to AddVoter in newCluster).
func newPeersCluster(t testing.TB, size int, tweak func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, pn: newPartitionNet(), tweak: tweak}
	var peers []Peer
	for i := range size {
		// Reserve a port; another process could take it before the node
		// binds it, which would fail loudly, not wrongly.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		tn := &testNode{id: fmt.Sprintf("n%d", i), dir: t.TempDir(), addr: addr}
		c.nodes = append(c.nodes, tn)
		peers = append(peers, Peer{ID: tn.id, Addr: addr})
	}
	t.Cleanup(c.closeAll) // after the TempDirs: runs before they go
	c.tweak = func(cfg *Config) {
		cfg.Peers = peers
		if tweak != nil {
			tweak(cfg)
		}
	}
	for i := range size {
		c.start(i, false)
	}
	c.waitLeader(10 * time.Second)
	c.waitConverged(10 * time.Second)
	return c
}

// failover kills the leader `kills` times in a row and checks after each
// kill: a new ready leader within 5 s, held locks still held, fencing tokens
// still increasing. Then it restarts the killed nodes and checks that every
// node reaches the same state.
func failover(t *testing.T, c *cluster, kills int) {
	ctx := context.Background()
	ten := uuid.New()
	n := c.leader()
	held, err := n.Acquire(ctx, ten, "held", "survivor", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, ten, "config", []byte("v1"), PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	term, err := n.Campaign(ctx, ten, "primary", "pod-a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	maxFencing := max(held.FencingToken, term.Term)

	// A follower refuses writes and names the leader.
	for _, i := range c.live() {
		if f := c.node(i); f != n {
			_, err := f.Acquire(ctx, ten, "via-follower", "x", time.Second, 0)
			var nl *ErrNotLeader
			if !errors.As(err, &nl) || nl.LeaderID != n.cfg.NodeID || nl.LeaderAddr != n.addr || problem.Code(err) != problem.CodeUnavailable {
				t.Fatalf("follower write: %v", err)
			}
			if pe, _ := problem.As(err); pe.RetryAfter < 1 {
				t.Fatalf("no Retry-After: %+v", pe)
			}
			break
		}
	}

	var killed []int
	for k := range kills {
		old := c.leaderIndex()
		start := time.Now()
		c.stop(old)
		killed = append(killed, old)
		idx := c.waitLeader(5 * time.Second) // the bound
		t.Logf("kill %d: %s -> %s in %s", k, c.nodes[old].id, c.nodes[idx].id, time.Since(start).Round(time.Millisecond))
		n := c.node(idx)

		if ok, err := n.Verify(ctx, ten, "held", held.FencingToken); err != nil || !ok {
			t.Fatalf("kill %d: held lock lost: %v %v", k, ok, err)
		}
		_, err := n.Acquire(ctx, ten, "held", "thief", time.Second, 0)
		wantCode(t, err, problem.CodeConflict)
		if l, err := n.Leader(ctx, ten, "primary"); err != nil || l.Leader != "pod-a" || l.Term != term.Term {
			t.Fatalf("kill %d: election leader %+v, %v", k, l, err)
		}
		if kv, err := n.Get(ctx, ten, "config"); err != nil || string(kv.Value) != "v1" {
			t.Fatalf("kill %d: kv %+v, %v", k, kv, err)
		}
		l, err := n.Acquire(ctx, ten, fmt.Sprintf("after-kill-%d", k), "o", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.FencingToken <= maxFencing {
			t.Fatalf("kill %d: fencing %d not above %d", k, l.FencingToken, maxFencing)
		}
		maxFencing = l.FencingToken
	}

	n = c.leader()
	if _, err := n.Renew(ctx, ten, "held", held.Token, time.Minute); err != nil {
		t.Fatalf("renew across failover: %v", err)
	}
	if err := n.Release(ctx, ten, "held", held.Token); err != nil {
		t.Fatalf("release across failover: %v", err)
	}
	again, err := n.Acquire(ctx, ten, "held", "next", time.Minute, 0)
	if err != nil || again.FencingToken <= maxFencing {
		t.Fatalf("re-acquire: fencing %d (max so far %d), %v", again.FencingToken, maxFencing, err)
	}

	// Restarted nodes replay their log (or take a snapshot) and catch up to
	// the very same state.
	for _, i := range killed {
		c.start(i, false)
	}
	c.requireSameState()
}

func TestCluster3_LeaderFailover(t *testing.T) {
	c := newPeersCluster(t, 3, nil)
	failover(t, c, 1)

	// Admin: remove a follower, then add it back.
	ctx := context.Background()
	li := c.leaderIndex()
	fi := (li + 1) % 3
	if err := c.leader().RemoveServer(ctx, c.nodes[fi].id); err != nil {
		t.Fatal(err)
	}
	if st := c.leader().Status(); len(st.Members) != 2 {
		t.Fatalf("members after remove: %+v", st.Members)
	}
	err := c.node(fi).RemoveServer(ctx, c.nodes[li].id)
	if problem.Code(err) != problem.CodeUnavailable {
		t.Fatalf("a removed node changed membership: %v", err)
	}
	// A removed node shuts its Raft down (ShutdownOnRemove); restart it so
	// it can be added back.
	c.stop(fi)
	c.start(fi, false)
	if err := c.leader().AddVoter(ctx, c.nodes[fi].id, c.nodes[fi].addr); err != nil {
		t.Fatal(err)
	}
	c.requireSameState()
	if st := c.leader().Status(); len(st.Members) != 3 {
		t.Fatalf("members after add: %+v", st.Members)
	}
}

func TestCluster5_TwoLeaderFailovers(t *testing.T) {
	// Tiny snapshot thresholds: restarted nodes catch up through snapshots
	// as well as logs, which exercises Restore inside a live cluster.
	c := newCluster(t, 5, func(cfg *Config) {
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.TrailingLogs = 4
	})
	failover(t, c, 2)
}

// TestCluster_PartitionedLeaderGrantsNothing isolates the leader: the
// minority grants nothing and serves no reads, the majority elects a new
// leader and serves, and after healing the old leader converges.
func TestCluster_PartitionedLeaderGrantsNothing(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	ten := uuid.New()
	old := c.leaderIndex()
	on := c.node(old)
	held, err := on.Acquire(ctx, ten, "held", "before", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}

	c.pn.isolate(c.nodes[old].addr, true)
	start := time.Now()

	// The isolated node refuses or cannot commit: it grants nothing, for as
	// long as the partition lasts, and reads are refused rather than stale.
	for i := range 3 {
		_, err := on.Acquire(ctx, ten, "contested", fmt.Sprintf("minority-%d", i), time.Minute, 0)
		if problem.Code(err) != problem.CodeUnavailable {
			t.Fatalf("minority acquire %d: %v", i, err)
		}
		if _, err := on.Verify(ctx, ten, "held", held.FencingToken); problem.Code(err) != problem.CodeUnavailable {
			t.Fatalf("minority read %d: %v", i, err)
		}
		if _, err := on.Put(ctx, ten, "k", []byte("minority"), PutOptions{}); problem.Code(err) != problem.CodeUnavailable {
			t.Fatalf("minority put %d: %v", i, err)
		}
	}

	// The majority elects a leader among themselves and serves.
	var ni int
	eventually(t, 5*time.Second, "a leader in the majority", func() bool {
		ni = c.leaderIndex()
		if ni == old {
			// The old leader may still call itself leader until its lease
			// runs out; look at the others.
			for _, i := range c.live() {
				if n := c.node(i); i != old && n.raft.State().String() == "Leader" && n.isReady() {
					ni = i
					return true
				}
			}
			return false
		}
		return ni >= 0
	})
	t.Logf("majority leader %s after %s", c.nodes[ni].id, time.Since(start).Round(time.Millisecond))
	n := c.node(ni)
	won, err := n.Acquire(ctx, ten, "contested", "majority", time.Minute, 0)
	if err != nil {
		t.Fatalf("majority acquire: %v", err)
	}
	if ok, err := n.Verify(ctx, ten, "held", held.FencingToken); err != nil || !ok {
		t.Fatalf("held lock lost in the majority: %v %v", ok, err)
	}
	if _, err := n.Put(ctx, ten, "k", []byte("majority"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the old leader to step down", func() bool { return on.raft.State().String() != "Leader" })

	// Heal: the old leader's uncommitted entries are discarded.
	c.pn.isolate(c.nodes[old].addr, false)
	c.requireSameState()
	n = c.leader()
	if ok, _ := n.Verify(ctx, ten, "contested", won.FencingToken); !ok {
		t.Fatal("the majority's grant did not survive the heal")
	}
	if kv, err := n.Get(ctx, ten, "k"); err != nil || string(kv.Value) != "majority" {
		t.Fatalf("kv after heal: %+v %v", kv, err)
	}
}

// TestCluster_NewLeaderGivesGrace: a lease that runs out while there is no
// leader to renew it survives into the new leader's term for the grace
// period, and can be renewed then.
func TestCluster_NewLeaderGivesGrace(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.LeaseGrace = 3 * time.Second })
	ctx := context.Background()
	ten := uuid.New()
	old := c.leaderIndex()
	l, err := c.node(old).Acquire(ctx, ten, "short", "holder", 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the leader off: nobody can renew, and it cannot commit an expiry.
	c.pn.isolate(c.nodes[old].addr, true)
	var n *Node
	eventually(t, 5*time.Second, "a leader in the majority", func() bool {
		for _, i := range c.live() {
			if m := c.node(i); i != old && m.raft.State().String() == "Leader" && m.isReady() {
				n = m
				return true
			}
		}
		return false
	})
	time.Sleep(time.Until(l.ExpiresAt.Add(300 * time.Millisecond)))
	// Past the ExpiresAt the old leader promised, but inside the grace the
	// new one gave: the lease is still there and renews.
	r, err := n.Renew(ctx, ten, "short", l.Token, time.Minute)
	if err != nil {
		t.Fatalf("renew inside the grace period: %v", err)
	}
	if r.FencingToken != l.FencingToken {
		t.Fatalf("renew changed the fencing token: %d -> %d", l.FencingToken, r.FencingToken)
	}
	c.pn.isolate(c.nodes[old].addr, false)
	c.requireSameState()
}

// TestCluster_FollowerBehindCompactionCatchesUpBySnapshot stops a follower
// until the leader's log no longer holds the entries it lacks, so it can
// only catch up by installing the leader's snapshot; then the follower must
// take new entries after the snapshot, and restart from its own log and
// snapshot. Small log segments let compaction really drop entries, and the
// follower takes no snapshot of its own after the restart, so a snapshot it
// holds came from the leader.
func TestCluster_FollowerBehindCompactionCatchesUpBySnapshot(t *testing.T) {
	var quiet atomic.Value // the node id that must not snapshot on its own
	quiet.Store("")
	c := newClusterOpts(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.TrailingLogs = 4
		if cfg.NodeID == quiet.Load() {
			cfg.SnapshotThreshold = 1 << 40
		}
	}, nodeOptions{walSegmentSize: 4 << 10})
	ctx := context.Background()
	ten := uuid.New()
	put := func(key string) {
		t.Helper()
		if _, err := c.leader().Put(ctx, ten, key, []byte(`"`+key+`"`), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	c.waitConverged(10 * time.Second)
	f := (c.leaderIndex() + 1) % 3
	stopped := c.node(f)
	c.stop(f)
	// Read once stopped: an entry that reached it while it stopped counts.
	behind := stopped.raft.LastIndex()
	i := 0
	eventually(t, 30*time.Second, "the leader's log to drop the entries the follower lacks", func() bool {
		for range 20 {
			put(fmt.Sprintf("while-down-%d", i))
			i++
		}
		var l raft.Log
		return errors.Is(c.leader().store.GetLog(behind+1, &l), raft.ErrLogNotFound)
	})
	quiet.Store(c.nodes[f].id)
	c.start(f, false)
	c.requireSameState()
	// Only the leader's snapshot can reach past the index the follower
	// stopped at.
	if got, _ := strconv.ParseUint(c.node(f).raft.Stats()["last_snapshot_index"], 10, 64); got <= behind {
		t.Fatalf("the follower caught up without the leader's snapshot (its last snapshot is at %d, it stopped at %d)", got, behind)
	}
	for i := range 20 {
		put(fmt.Sprintf("after-%d", i))
	}
	c.requireSameState()
	c.stop(f)
	c.start(f, false)
	c.requireSameState()
	if kv, err := c.leader().Get(ctx, ten, "after-19"); err != nil || string(kv.Value) != `"after-19"` {
		t.Fatalf("after-19: %+v %v", kv, err)
	}
}

// TestCluster_FollowersListWhatTheyApplied: the Applied reads answer on a
// follower, from the log it has applied, where the linearizable reads send
// the caller to the leader.
func TestCluster_FollowersListWhatTheyApplied(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	ten := uuid.New()
	l, err := c.leader().Acquire(ctx, ten, "job", "worker-a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.leader().Campaign(ctx, ten, "primary", "pod-a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.waitConverged(10 * time.Second)
	followers := 0
	for _, i := range c.live() {
		n := c.node(i)
		if n == c.leader() {
			continue
		}
		followers++
		_, err := n.ListLocks(ctx, ten)
		wantCode(t, err, problem.CodeUnavailable)
		locks, err := n.AppliedLocks(ten)
		if err != nil || len(locks) != 1 || locks[0].Name != "job" || locks[0].Owner != "worker-a" || locks[0].FencingToken != l.FencingToken {
			t.Fatalf("%s: applied locks %+v, %v", c.nodes[i].id, locks, err)
		}
		es, err := n.AppliedElections(ten)
		if err != nil || len(es) != 1 || es[0].Name != "primary" || es[0].Leader != "pod-a" || es[0].Term != e.Term {
			t.Fatalf("%s: applied elections %+v, %v", c.nodes[i].id, es, err)
		}
		if ld, err := n.AppliedLeader(ten, "primary"); err != nil || ld.Leader != "pod-a" {
			t.Fatalf("%s: applied leader %+v, %v", c.nodes[i].id, ld, err)
		}
		_, err = n.AppliedLeader(ten, "nobody")
		wantCode(t, err, problem.CodeNotFound)
		if other, err := n.AppliedLocks(uuid.New()); err != nil || len(other) != 0 {
			t.Fatalf("%s: another tenant's locks %+v, %v", c.nodes[i].id, other, err)
		}
		_, err = n.AppliedLocks(uuid.Nil)
		wantCode(t, err, problem.CodeInvalid)
	}
	if followers != 2 {
		t.Fatalf("checked %d followers", followers)
	}
}

// TestCluster_WaitAppliedShowsTheWatchedChange: a change seen on one node's
// watch stream carries the tenant's revision, and a lagging follower that
// waits for that revision of that tenant shows the change as soon as the
// wait returns, not before — however far other tenants' revisions are ahead
// on the follower.
func TestCluster_WaitAppliedShowsTheWatchedChange(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	ten, busy := uuid.New(), uuid.New()
	li := c.leaderIndex()
	fi := (li + 1) % 3
	leader, follower := c.node(li), c.node(fi)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, err := leader.WatchLocks(watchCtx, ten)
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant's revision runs far ahead, and the follower has it.
	var busyRev uint64
	for i := range 10 {
		kv, err := leader.Put(ctx, busy, fmt.Sprintf("k%d", i), nil, PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		busyRev = kv.Revision
	}
	c.waitConverged(10 * time.Second)

	// Cut the follower off; the other two still commit.
	c.pn.isolate(c.nodes[fi].addr, true)
	l, err := leader.Acquire(ctx, ten, "job", "worker-a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ev LockEvent
	select {
	case ev = <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event for the acquire")
	}
	if ev.Type != EventAcquired || ev.Index != l.FencingToken || ev.Index != 1 {
		t.Fatalf("event %+v, want acquired at the tenant's first revision, the grant's fencing token %d", ev, l.FencingToken)
	}
	if busyRev <= ev.Index {
		t.Fatalf("the busy tenant is at revision %d, not ahead of %d", busyRev, ev.Index)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = follower.WaitApplied(short, ten, ev.Index)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the cut-off follower's wait = %v, want it still waiting", err)
	}
	if locks, _ := follower.AppliedLocks(ten); len(locks) != 0 {
		t.Fatalf("the cut-off follower shows %+v before it could have the grant", locks)
	}

	c.pn.isolate(c.nodes[fi].addr, false)
	long, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := follower.WaitApplied(long, ten, ev.Index); err != nil {
		t.Fatalf("wait after the heal: %v", err)
	}
	if locks, err := follower.AppliedLocks(ten); err != nil || len(locks) != 1 || locks[0].FencingToken != l.FencingToken {
		t.Fatalf("after its wait the follower shows %+v (%v), want the grant at %d", locks, err, l.FencingToken)
	}

	// The release comes later in the log than the grant, on every node's
	// streams.
	if err := leader.Release(ctx, ten, "job", l.Token); err != nil {
		t.Fatal(err)
	}
	select {
	case ev2 := <-events:
		if ev2.Type != EventReleased || ev2.Index <= ev.Index {
			t.Fatalf("release event %+v after %+v", ev2, ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event for the release")
	}
	obs, err := follower.Observe(watchCtx, ten, "primary")
	if err != nil {
		t.Fatal(err)
	}
	if first := <-obs; first.Leader != "" || first.Index < ev.Index || first.Index >= busyRev {
		t.Fatalf("observe's first event %+v, want no leader as of the tenant's revision %d or later (and not the other tenant's %d)", first, ev.Index, busyRev)
	}
	won, err := leader.Campaign(ctx, ten, "primary", "pod-a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-obs:
		if e.Leader != "pod-a" || e.Index != won.Term {
			t.Fatalf("observed %+v, want pod-a at index %d", e, won.Term)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the follower observed no new leader")
	}

	// A stopped node's wait ends.
	gone, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	done := make(chan error, 1)
	go func() { done <- follower.WaitApplied(gone, ten, math.MaxUint64) }()
	c.stop(fi)
	if err := <-done; !errors.Is(err, errShuttingDown) {
		t.Fatalf("wait on a stopping node = %v, want the shutdown error", err)
	}
	wantCode(t, leader.WaitApplied(ctx, uuid.Nil, 1), problem.CodeInvalid)
}
