package lockd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"
)

// tenantStory runs one fixed sequence of a tenant's requests, calling
// between before each, and returns every number the tenant was shown along
// the way: fencing tokens, terms, KV revisions, a refusal quoting a
// revision, and the indexes of its watch and observe events.
func tenantStory(t *testing.T, n *Node, ten uuid.UUID, between func()) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lockEvents, err := n.WatchLocks(ctx, ten)
	if err != nil {
		t.Fatal(err)
	}
	keyEvents, err := n.Watch(ctx, ten, "")
	if err != nil {
		t.Fatal(err)
	}
	obs, err := n.Observe(ctx, ten, "e")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	note := func(format string, args ...any) { seen = append(seen, fmt.Sprintf(format, args...)) }
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	between()
	l1, err := n.Acquire(ctx, ten, "x", "b", time.Minute, 0)
	step("acquire", err)
	note("acquire fencing=%d", l1.FencingToken)
	between()
	kv1, err := n.Put(ctx, ten, "k", []byte("v1"), PutOptions{IfAbsent: true})
	step("create", err)
	note("create rev=%d crev=%d", kv1.Revision, kv1.CreateRevision)
	between()
	kv2, err := n.Put(ctx, ten, "k", []byte("v2"), PutOptions{IfRevision: kv1.Revision})
	step("update", err)
	note("update rev=%d crev=%d", kv2.Revision, kv2.CreateRevision)
	between()
	_, err = n.Put(ctx, ten, "k", []byte("stale"), PutOptions{IfRevision: kv1.Revision})
	note("stale update: %v", err)
	between()
	e, err := n.Campaign(ctx, ten, "e", "b", time.Minute, 0)
	step("campaign", err)
	note("campaign term=%d", e.Term)
	between()
	step("release", n.Release(ctx, ten, "x", l1.Token))
	between()
	l2, err := n.Acquire(ctx, ten, "x", "b", time.Minute, 0)
	step("acquire again", err)
	note("acquire again fencing=%d", l2.FencingToken)
	between()
	rev, err := n.Delete(ctx, ten, "k", kv2.Revision)
	step("delete", err)
	note("delete rev=%d", rev)
	between()
	step("resign", n.Resign(ctx, ten, "e", e.Token))
	between()
	obs2, err := n.Observe(ctx, ten, "e")
	if err != nil {
		t.Fatal(err)
	}

	for _, e := range receive(t, lockEvents, 3) {
		note("lock %s %s %s fencing=%d index=%d", e.Type, e.Name, e.Owner, e.FencingToken, e.Index)
	}
	for _, e := range receive(t, keyEvents, 3) {
		note("key %s %s rev=%d", e.Type, e.Key, e.Revision)
	}
	for _, e := range append(receive(t, obs, 3), receive(t, obs2, 1)...) {
		note("observe leader=%q term=%d index=%d", e.Leader, e.Term, e.Index)
	}
	return seen
}

// receive reads count values from ch, failing after 5 s without one.
func receive[T any](t *testing.T, ch <-chan T, count int) []T {
	t.Helper()
	var out []T
	for range count {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d events: %+v", len(out), count, out)
		}
	}
	return out
}

// TestTenantNumbers_OtherTenantsWritesMoveNothing: a tenant's story gives it
// the very same numbers whether another tenant writes before each of its
// steps or nobody else writes at all; the first grant is the tenant's first
// revision, however many writes the group has committed.
func TestTenantNumbers_OtherTenantsWritesMoveNothing(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.node(0)
	ctx := context.Background()
	a := uuid.New()
	writes := 0
	busy := func() {
		for range 3 {
			l, err := n.Acquire(ctx, a, "x", "a", time.Minute, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.Put(ctx, a, "k", []byte("a"), PutOptions{}); err != nil {
				t.Fatal(err)
			}
			e, err := n.Campaign(ctx, a, "e", "a", time.Minute, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Resign(ctx, a, "e", e.Token); err != nil {
				t.Fatal(err)
			}
			if err := n.Release(ctx, a, "x", l.Token); err != nil {
				t.Fatal(err)
			}
			writes += 5
		}
	}
	withOthers := tenantStory(t, n, uuid.New(), busy)
	alone := tenantStory(t, n, uuid.New(), func() {})
	if writes == 0 || c.node(0).raft.AppliedIndex() < uint64(writes) {
		t.Fatalf("the other tenant wrote %d times", writes)
	}
	if withOthers[0] != "acquire fencing=1" {
		t.Fatalf("first grant %q, want the tenant's first revision", withOthers[0])
	}
	for i := range max(len(withOthers), len(alone)) {
		var w, a string
		if i < len(withOthers) {
			w = withOthers[i]
		}
		if i < len(alone) {
			a = alone[i]
		}
		if w != a {
			t.Errorf("step %d: %q with another tenant writing, %q alone", i, w, a)
		}
	}
}

// TestCluster3_TenantNumbersIncreaseAcrossLeaderChange: after the leader of
// a 3-node group dies, the tenant's next fencing token, term and revision
// are above everything it was shown before, and the lock held across the
// change keeps its token.
func TestCluster3_TenantNumbersIncreaseAcrossLeaderChange(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	ten, other := uuid.New(), uuid.New()
	n := c.leader()
	var top uint64
	for i := range 3 {
		l, err := n.Acquire(ctx, ten, "L", "a", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.FencingToken <= top {
			t.Fatalf("grant %d: fencing %d after %d", i, l.FencingToken, top)
		}
		top = l.FencingToken
		if err := n.Release(ctx, ten, "L", l.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, other, "noise", nil, PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	held, err := n.Acquire(ctx, ten, "held", "a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := n.Put(ctx, ten, "k", []byte("v"), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := n.Campaign(ctx, ten, "E", "a", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Resign(ctx, ten, "E", e.Token); err != nil {
		t.Fatal(err)
	}
	top = max(top, held.FencingToken, kv.Revision, e.Term)

	c.waitConverged(10 * time.Second)
	old := c.leaderIndex()
	c.stop(old)
	n = c.node(c.waitLeader(5 * time.Second))

	if ok, err := n.Verify(ctx, ten, "held", held.FencingToken); err != nil || !ok {
		t.Fatalf("the held lock lost its token across the leader change: %v %v", ok, err)
	}
	l, err := n.Acquire(ctx, ten, "L", "b", time.Minute, 0)
	if err != nil || l.FencingToken <= top {
		t.Fatalf("fencing after the leader change %d, not above %d (%v)", l.FencingToken, top, err)
	}
	kv2, err := n.Put(ctx, ten, "k", []byte("w"), PutOptions{IfRevision: kv.Revision})
	if err != nil || kv2.Revision <= l.FencingToken {
		t.Fatalf("revision after the leader change %d, not above %d (%v)", kv2.Revision, l.FencingToken, err)
	}
	e2, err := n.Campaign(ctx, ten, "E", "b", time.Minute, 0)
	if err != nil || e2.Term <= kv2.Revision {
		t.Fatalf("term after the leader change %d, not above %d (%v)", e2.Term, kv2.Revision, err)
	}
	c.start(old, false)
	c.requireSameState()
}

// TestRestart_TenantNumbersIncreaseAcrossSnapshotRestore restarts a node
// from a snapshot alone, then from a snapshot plus later entries: the
// tenant's revision comes back exactly (snapshots carry it), so the next
// grant of the same lock is the next revision, above every earlier one.
func TestRestart_TenantNumbersIncreaseAcrossSnapshotRestore(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := context.Background()
	ten := uuid.New()
	var top uint64
	cycle := func(n *Node) {
		t.Helper()
		l, err := n.Acquire(ctx, ten, "L", "a", time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.FencingToken <= top {
			t.Fatalf("fencing %d, not above %d", l.FencingToken, top)
		}
		if err := n.Release(ctx, ten, "L", l.Token); err != nil {
			t.Fatal(err)
		}
		kv, err := n.Put(ctx, ten, "k", nil, PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		top = kv.Revision
	}
	for round, tail := range []bool{false, true} {
		n := c.node(0)
		cycle(n)
		cycle(n)
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		if tail {
			cycle(n)
		}
		c.stop(0)
		c.start(0, false)
		c.waitLeader(10 * time.Second)
		n = c.node(0)
		l, err := n.Acquire(ctx, ten, "L", "a", time.Minute, 0)
		if err != nil || l.FencingToken != top+1 {
			t.Fatalf("round %d: fencing after the restart %d, want %d (%v)", round, l.FencingToken, top+1, err)
		}
		if err := n.Release(ctx, ten, "L", l.Token); err != nil {
			t.Fatal(err)
		}
		top = l.FencingToken + 1
	}
}

// TestUpgrade_OldDataDirNeverReissues starts this version on a data dir as
// an earlier version left it: a snapshot without counters (version 1),
// with or without log entries after it in the earlier command format, all
// numbered by Raft index. The lock held across the upgrade keeps its token
// and a key its revision; every new number, for every tenant, is above
// every number handed out before — also for a tenant whose last lock was
// released, leaving no trace in the state.
func TestUpgrade_OldDataDirNeverReissues(t *testing.T) {
	for _, tail := range []bool{false, true} {
		t.Run(fmt.Sprintf("log after the snapshot %v", tail), func(t *testing.T) { upgradeOldDataDir(t, tail) })
	}
}

func upgradeOldDataDir(t *testing.T, tail bool) {
	c := newCluster(t, 1, nil)
	n := c.node(0)
	ctx := context.Background()
	ta, tb, tc := uuid.New(), uuid.New(), uuid.New()
	var issued uint64
	// old proposes what an earlier version's leader would have.
	old := func(cmd command) applyResult {
		t.Helper()
		cmd.Now = n.clock().UnixNano()
		f := n.raft.Apply(legacyEntry(encodeTB(t, cmd)), 5*time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		res := f.Response().(applyResult)
		if res.err != nil {
			t.Fatal(res.err)
		}
		issued = max(issued, f.Index())
		if res.grant != nil && res.grant.Fencing != f.Index() || res.kv != nil && res.kv.Revision != f.Index() {
			t.Fatalf("an earlier version's entry %d numbered %+v", f.Index(), res)
		}
		return res
	}
	acquire := func(ten uuid.UUID, name, token string) command {
		return command{Type: cmdAcquire, Kind: kindLock, Tenant: ten, Name: name, Owner: "o", Token: token, TTL: int64(time.Hour)}
	}
	release := func(ten uuid.UUID, name, token string) command {
		return command{Type: cmdRelease, Kind: kindLock, Tenant: ten, Name: name, Token: token}
	}
	old(acquire(ta, "gone", "g1"))
	old(release(ta, "gone", "g1"))
	held := old(acquire(tc, "held", "h1")).grant
	kv := old(command{Type: cmdPut, Tenant: tb, Name: "k", Value: []byte("1")}).kv
	snapshot := func() {
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	if tail {
		snapshot()
	}
	// The tenant's highest token comes last and leaves no trace.
	kv = old(command{Type: cmdPut, Tenant: tb, Name: "k", Value: []byte("2")}).kv
	old(acquire(ta, "gone", "g2"))
	old(release(ta, "gone", "g2"))
	if !tail {
		snapshot()
	}
	c.stop(0)

	// Rewrite the snapshot as the earlier version wrote it, and keep no
	// other.
	dir := c.nodes[0].dir
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		t.Fatalf("snapshots %v, %v", metas, err)
	}
	meta, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The store asks a transport only to encode the peers in the metadata.
	_, peerCodec := raft.NewInmemTransport("")
	defer peerCodec.Close()
	sink, err := snaps.Create(meta.Version, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, peerCodec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(legacySnapshot(t, data, true)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		if m.ID != sink.ID() {
			if err := os.RemoveAll(filepath.Join(dir, "snapshots", m.ID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if metas, err := snaps.List(); err != nil || len(metas) != 1 || (metas[0].Index < issued) != tail {
		t.Fatalf("want one old snapshot, below the last old entry %d only with a log after it: %+v, %v", issued, metas, err)
	}

	c.start(0, false)
	c.waitLeader(10 * time.Second)
	n = c.node(0)
	if ok, err := n.Verify(ctx, tc, "held", held.Fencing); err != nil || !ok {
		t.Fatalf("the lock held across the upgrade lost its token %d: %v %v", held.Fencing, ok, err)
	}
	got, err := n.Get(ctx, tb, "k")
	if err != nil || got.Revision != kv.Revision {
		t.Fatalf("key across the upgrade %+v (%v), want revision %d", got, err, kv.Revision)
	}
	numbers := map[string]uint64{}
	l, err := n.Acquire(ctx, ta, "gone", "o", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	numbers["the lock released before the upgrade"] = l.FencingToken
	kv2, err := n.Put(ctx, tb, "k", []byte("3"), PutOptions{IfRevision: kv.Revision})
	if err != nil {
		t.Fatal(err)
	}
	numbers["the key written before the upgrade"] = kv2.Revision
	l, err = n.Acquire(ctx, tc, "new", "o", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	numbers["a new lock of the tenant holding one"] = l.FencingToken
	l, err = n.Acquire(ctx, uuid.New(), "gone", "o", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	numbers["a tenant new since the upgrade"] = l.FencingToken
	for what, v := range numbers {
		if v <= issued {
			t.Errorf("%s: %d, not above %d, the last number handed out before the upgrade", what, v, issued)
		}
	}
}
