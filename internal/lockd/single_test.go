package lockd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// TestSingleNode runs every behaviour of the service against one
// self-bootstrapped node; each subtest uses its own tenant.
func TestSingleNode(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.node(0)
	ctx := context.Background()

	t.Run("AcquireRenewReleaseVerify", func(t *testing.T) {
		ten := uuid.New()
		l, err := n.Acquire(ctx, ten, "db-migrate", "worker-1", 10*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.Token == "" || l.FencingToken == 0 || !l.ExpiresAt.After(time.Now()) {
			t.Fatalf("bad grant %+v", l)
		}
		if ok, err := n.Verify(ctx, ten, "db-migrate", l.FencingToken); err != nil || !ok {
			t.Fatalf("Verify(current) = %v, %v", ok, err)
		}
		if ok, _ := n.Verify(ctx, ten, "db-migrate", l.FencingToken+1); ok {
			t.Fatal("Verify accepted a token that is not current")
		}

		// A wrong token is refused and leaves the lock alone.
		_, err = n.Renew(ctx, ten, "db-migrate", "not-the-token", time.Second)
		wantCode(t, err, problem.CodeConflict)
		wantCode(t, n.Release(ctx, ten, "db-migrate", "not-the-token"), problem.CodeConflict)
		locks, err := n.ListLocks(ctx, ten)
		if err != nil || len(locks) != 1 || locks[0].Owner != "worker-1" || locks[0].FencingToken != l.FencingToken {
			t.Fatalf("ListLocks = %+v, %v", locks, err)
		}

		r, err := n.Renew(ctx, ten, "db-migrate", l.Token, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.FencingToken != l.FencingToken || !r.ExpiresAt.After(l.ExpiresAt) {
			t.Fatalf("renew changed the grant: %+v -> %+v", l, r)
		}
		if err := n.Release(ctx, ten, "db-migrate", l.Token); err != nil {
			t.Fatal(err)
		}
		if ok, _ := n.Verify(ctx, ten, "db-migrate", l.FencingToken); ok {
			t.Fatal("Verify accepted a released lock's token")
		}
		wantCode(t, n.Release(ctx, ten, "db-migrate", l.Token), problem.CodeNotFound)

		l2, err := n.Acquire(ctx, ten, "db-migrate", "worker-2", time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l2.FencingToken <= l.FencingToken {
			t.Fatalf("fencing token went from %d to %d", l.FencingToken, l2.FencingToken)
		}
	})

	t.Run("ForceReleaseHandsOnToTheNextWaiter", func(t *testing.T) {
		ten := uuid.New()
		gone, err := n.Acquire(ctx, ten, "report", "crashed-pod", time.Hour, 0)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			l   Lock
			err error
		}
		waiter := make(chan result, 1)
		go func() {
			l, err := n.Acquire(ctx, ten, "report", "next-pod", time.Minute, 30*time.Second)
			waiter <- result{l, err}
		}()
		eventually(t, 10*time.Second, "the waiter to queue", func() bool {
			ls, _ := n.AppliedLocks(ten)
			return len(ls) == 1 && ls[0].Waiters == 1
		})
		held, err := n.ForceRelease(ctx, ten, "report")
		if err != nil || held.Owner != "crashed-pod" || held.FencingToken != gone.FencingToken {
			t.Fatalf("ForceRelease = %+v, %v; want the crashed pod's lease", held, err)
		}
		next := <-waiter
		if next.err != nil || next.l.Owner != "next-pod" || next.l.FencingToken <= gone.FencingToken {
			t.Fatalf("the waiter got %+v, %v", next.l, next.err)
		}
		// The old holder's token is dead: renew and release refuse it.
		_, err = n.Renew(ctx, ten, "report", gone.Token, time.Minute)
		wantCode(t, err, problem.CodeConflict)
		if ok, _ := n.Verify(ctx, ten, "report", gone.FencingToken); ok {
			t.Fatal("Verify accepted the forced-out holder's token")
		}
		if err := n.Release(ctx, ten, "report", next.l.Token); err != nil {
			t.Fatal(err)
		}
		_, err = n.ForceRelease(ctx, ten, "report")
		wantCode(t, err, problem.CodeNotFound)
		_, err = n.ForceRelease(ctx, uuid.New(), "report")
		wantCode(t, err, problem.CodeNotFound)
	})

	t.Run("HeldLockConflicts", func(t *testing.T) {
		ten := uuid.New()
		if _, err := n.Acquire(ctx, ten, "x", "a", 10*time.Second, 0); err != nil {
			t.Fatal(err)
		}
		_, err := n.Acquire(ctx, ten, "x", "b", 10*time.Second, 0)
		wantCode(t, err, problem.CodeConflict)
		start := time.Now()
		_, err = n.Acquire(ctx, ten, "x", "b", 10*time.Second, 300*time.Millisecond)
		wantCode(t, err, problem.CodeConflict)
		if time.Since(start) < 300*time.Millisecond {
			t.Fatalf("gave up after %s, before the wait", time.Since(start))
		}
		locks, _ := n.ListLocks(ctx, ten)
		if len(locks) != 1 || locks[0].Owner != "a" || locks[0].Waiters != 0 {
			t.Fatalf("after a timed-out wait: %+v", locks)
		}
	})

	t.Run("WaitersAreServedFIFO", func(t *testing.T) {
		ten := uuid.New()
		first, err := n.Acquire(ctx, ten, "q", "holder", 30*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			owner string
			lock  Lock
			err   error
		}
		results := make(chan result, 4)
		owners := []string{"w1", "w2", "w3", "w4"}
		for i, o := range owners {
			go func() {
				l, err := n.Acquire(ctx, ten, "q", o, 30*time.Second, 20*time.Second)
				results <- result{o, l, err}
			}()
			// Queue them one at a time so the arrival order is known.
			eventually(t, 10*time.Second, o+" to queue", func() bool {
				locks, err := n.ListLocks(ctx, ten)
				return err == nil && len(locks) == 1 && locks[0].Waiters == i+1
			})
		}
		prev := first
		for _, want := range owners {
			if err := n.Release(ctx, ten, "q", prev.Token); err != nil {
				t.Fatal(err)
			}
			r := <-results
			if r.err != nil || r.owner != want {
				t.Fatalf("got %s (%v), want %s next", r.owner, r.err, want)
			}
			if r.lock.FencingToken <= prev.FencingToken {
				t.Fatalf("fencing %d after %d", r.lock.FencingToken, prev.FencingToken)
			}
			prev = r.lock
		}
	})

	t.Run("LeaseExpiresByLeaderCommand", func(t *testing.T) {
		ten := uuid.New()
		events, err := n.WatchLocks(ctx, ten)
		if err != nil {
			t.Fatal(err)
		}
		short, err := n.Acquire(ctx, ten, "lease", "sleepy", 200*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		// The waiter gets the lock when the leader expires the lease.
		next, err := n.Acquire(ctx, ten, "lease", "patient", 10*time.Second, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if next.FencingToken <= short.FencingToken {
			t.Fatalf("fencing %d after %d", next.FencingToken, short.FencingToken)
		}
		if ok, _ := n.Verify(ctx, ten, "lease", short.FencingToken); ok {
			t.Fatal("an expired lease still verifies")
		}
		_, err = n.Renew(ctx, ten, "lease", short.Token, time.Second)
		wantCode(t, err, problem.CodeConflict)
		var seen []EventType
		for len(seen) < 3 {
			select {
			case e := <-events:
				seen = append(seen, e.Type)
			case <-time.After(5 * time.Second):
				t.Fatalf("events so far %v", seen)
			}
		}
		if fmt.Sprint(seen) != fmt.Sprint([]EventType{EventAcquired, EventExpired, EventAcquired}) {
			t.Fatalf("events %v", seen)
		}

		// A lease nobody waits for simply disappears.
		if _, err := n.Acquire(ctx, ten, "alone", "x", 150*time.Millisecond, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the lease to be expired", func() bool {
			n.fsm.mu.RLock()
			defer n.fsm.mu.RUnlock()
			return n.fsm.leases[leaseKey{kindLock, ten, "alone"}] == nil
		})
	})

	t.Run("ContextCancelWithdrawsWaiter", func(t *testing.T) {
		ten := uuid.New()
		if _, err := n.Acquire(ctx, ten, "c", "a", 30*time.Second, 0); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := n.Acquire(cctx, ten, "c", "b", 30*time.Second, 30*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		locks, _ := n.ListLocks(ctx, ten)
		if len(locks) != 1 || locks[0].Waiters != 0 {
			t.Fatalf("waiter left behind: %+v", locks)
		}
	})

	t.Run("TenantsAreSeparate", func(t *testing.T) {
		a, b := uuid.New(), uuid.New()
		l, err := n.Acquire(ctx, a, "shared-name", "a", 10*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, n.Release(ctx, b, "shared-name", l.Token), problem.CodeNotFound)
		_, err = n.Renew(ctx, b, "shared-name", l.Token, time.Second)
		wantCode(t, err, problem.CodeNotFound)
		if ok, _ := n.Verify(ctx, b, "shared-name", l.FencingToken); ok {
			t.Fatal("verified another tenant's lock")
		}
		if locks, _ := n.ListLocks(ctx, b); len(locks) != 0 {
			t.Fatalf("tenant b sees %+v", locks)
		}
		if _, err := n.Acquire(ctx, b, "shared-name", "b", time.Second, 0); err != nil {
			t.Fatalf("same name, other tenant: %v", err)
		}
		if _, err := n.Put(ctx, a, "k", []byte("a"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = n.Get(ctx, b, "k")
		wantCode(t, err, problem.CodeNotFound)
	})

	t.Run("BadInput", func(t *testing.T) {
		ten := uuid.New()
		long := strings.Repeat("n", MaxNameLen+1)
		cases := []struct {
			name string
			call func() error
		}{
			{"zero ttl", func() error { _, err := n.Acquire(ctx, ten, "l", "o", 0, 0); return err }},
			{"negative ttl", func() error { _, err := n.Acquire(ctx, ten, "l", "o", -time.Second, 0); return err }},
			{"tiny ttl", func() error { _, err := n.Acquire(ctx, ten, "l", "o", 99*time.Millisecond, 0); return err }},
			{"huge ttl", func() error { _, err := n.Acquire(ctx, ten, "l", "o", 2*time.Hour, 0); return err }},
			{"negative wait", func() error { _, err := n.Acquire(ctx, ten, "l", "o", time.Second, -1); return err }},
			{"huge wait", func() error { _, err := n.Acquire(ctx, ten, "l", "o", time.Second, time.Hour); return err }},
			{"empty name", func() error { _, err := n.Acquire(ctx, ten, "", "o", time.Second, 0); return err }},
			{"long name", func() error { _, err := n.Acquire(ctx, ten, long, "o", time.Second, 0); return err }},
			{"control char", func() error { _, err := n.Acquire(ctx, ten, "a\nb", "o", time.Second, 0); return err }},
			{"NUL", func() error { _, err := n.Acquire(ctx, ten, "a\x00b", "o", time.Second, 0); return err }},
			{"bad utf-8", func() error { _, err := n.Acquire(ctx, ten, "a\xffb", "o", time.Second, 0); return err }},
			{"no owner", func() error { _, err := n.Acquire(ctx, ten, "l", "", time.Second, 0); return err }},
			{"no tenant", func() error { _, err := n.Acquire(ctx, uuid.Nil, "l", "o", time.Second, 0); return err }},
			{"renew zero ttl", func() error { _, err := n.Renew(ctx, ten, "l", "tok", 0); return err }},
			{"release no token", func() error { return n.Release(ctx, ten, "l", "") }},
			{"verify zero", func() error { _, err := n.Verify(ctx, ten, "l", 0); return err }},
			{"campaign long", func() error { _, err := n.Campaign(ctx, ten, long, "c", time.Second, 0); return err }},
			{"campaign no candidate", func() error { _, err := n.Campaign(ctx, ten, "e", "", time.Second, 0); return err }},
			{"key too long", func() error { _, err := n.Put(ctx, ten, long, nil, PutOptions{}); return err }},
			{"value too large", func() error {
				_, err := n.Put(ctx, ten, "k", make([]byte, MaxValueLen+1), PutOptions{})
				return err
			}},
			{"absent and revision", func() error {
				_, err := n.Put(ctx, ten, "k", nil, PutOptions{IfAbsent: true, IfRevision: 3})
				return err
			}},
			{"bad prefix", func() error { _, err := n.ListKV(ctx, ten, "\x01"); return err }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), problem.CodeInvalid) })
		}
		if locks, _ := n.ListLocks(ctx, ten); len(locks) != 0 {
			t.Fatalf("bad input changed state: %+v", locks)
		}
	})

	t.Run("KVCompareAndSet", func(t *testing.T) {
		ten := uuid.New()
		watch, err := n.Watch(ctx, ten, "cfg/")
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Get(ctx, ten, "cfg/a")
		wantCode(t, err, problem.CodeNotFound)
		_, err = n.Put(ctx, ten, "cfg/a", []byte("v0"), PutOptions{IfRevision: 1})
		wantCode(t, err, problem.CodePrecondition)

		v1, err := n.Put(ctx, ten, "cfg/a", []byte("v1"), PutOptions{IfAbsent: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Put(ctx, ten, "cfg/a", []byte("again"), PutOptions{IfAbsent: true})
		wantCode(t, err, problem.CodePrecondition)
		v2, err := n.Put(ctx, ten, "cfg/a", []byte("v2"), PutOptions{IfRevision: v1.Revision})
		if err != nil {
			t.Fatal(err)
		}
		if v2.Revision <= v1.Revision || v2.CreateRevision != v1.Revision {
			t.Fatalf("revisions %+v then %+v", v1, v2)
		}
		_, err = n.Put(ctx, ten, "cfg/a", []byte("stale"), PutOptions{IfRevision: v1.Revision})
		wantCode(t, err, problem.CodePrecondition)
		got, err := n.Get(ctx, ten, "cfg/a")
		if err != nil || string(got.Value) != "v2" || got.Revision != v2.Revision {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		v3, err := n.Put(ctx, ten, "cfg/a", []byte("v3"), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, ten, "cfg/b", []byte("b"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, ten, "other", []byte("o"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		list, err := n.ListKV(ctx, ten, "cfg/")
		if err != nil || len(list) != 2 || list[0].Key != "cfg/a" || list[1].Key != "cfg/b" {
			t.Fatalf("ListKV = %+v, %v", list, err)
		}
		_, err = n.Delete(ctx, ten, "cfg/a", v2.Revision)
		wantCode(t, err, problem.CodePrecondition)
		delRev, err := n.Delete(ctx, ten, "cfg/a", v3.Revision)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Delete(ctx, ten, "cfg/a", 0)
		wantCode(t, err, problem.CodeNotFound)
		_, err = n.Get(ctx, ten, "cfg/a")
		wantCode(t, err, problem.CodeNotFound)

		want := []string{"put cfg/a v1", "put cfg/a v2", "put cfg/a v3", "put cfg/b b", "deleted cfg/a "}
		var revs []uint64
		for i, w := range want {
			select {
			case e := <-watch:
				if got := fmt.Sprintf("%s %s %s", e.Type, e.Key, e.Value); got != w {
					t.Fatalf("event %d = %q, want %q", i, got, w)
				}
				revs = append(revs, e.Revision)
			case <-time.After(5 * time.Second):
				t.Fatalf("no event %d", i)
			}
		}
		if revs[len(revs)-1] != delRev {
			t.Fatalf("delete event revision %d, want %d", revs[len(revs)-1], delRev)
		}
	})

	t.Run("SlowWatcherIsDropped", func(t *testing.T) {
		ten := uuid.New()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		watch, err := n.Watch(wctx, ten, "")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range streamBuffer + 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.Put(ctx, ten, fmt.Sprintf("k%d", i), nil, PutOptions{}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		count := 0
		var last KVEvent
		for e := range watch {
			count++
			last = e
		}
		if count != streamBuffer+1 || !errors.Is(last.Err, ErrSlowConsumer) {
			t.Fatalf("got %d events ending with %+v", count, last)
		}
	})

	t.Run("Elections", func(t *testing.T) {
		ten := uuid.New()
		octx, cancel := context.WithCancel(ctx)
		defer cancel()
		obs, err := n.Observe(octx, ten, "scheduler")
		if err != nil {
			t.Fatal(err)
		}
		if e := <-obs; e.Leader != "" {
			t.Fatalf("first event %+v, want no leader", e)
		}
		_, err = n.Leader(ctx, ten, "scheduler")
		wantCode(t, err, problem.CodeNotFound)

		a, err := n.Campaign(ctx, ten, "scheduler", "pod-a", 10*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		if e := <-obs; e.Leader != "pod-a" || e.Term != a.Term {
			t.Fatalf("observed %+v", e)
		}
		if got, err := n.Leader(ctx, ten, "scheduler"); err != nil || got.Leader != "pod-a" || got.Term != a.Term {
			t.Fatalf("Leader = %+v, %v", got, err)
		}
		_, err = n.Campaign(ctx, ten, "scheduler", "pod-b", 10*time.Second, 0)
		wantCode(t, err, problem.CodeConflict)

		won := make(chan Leadership, 1)
		go func() {
			b, err := n.Campaign(ctx, ten, "scheduler", "pod-b", 10*time.Second, 20*time.Second)
			if err != nil {
				t.Error(err)
			}
			won <- b
		}()
		eventually(t, 10*time.Second, "pod-b to queue", func() bool {
			n.fsm.mu.RLock()
			defer n.fsm.mu.RUnlock()
			ls := n.fsm.leases[leaseKey{kindElection, ten, "scheduler"}]
			return ls != nil && len(ls.Waiters) == 1
		})
		if _, err := n.RenewLeadership(ctx, ten, "scheduler", a.Token, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		wantCode(t, n.Resign(ctx, ten, "scheduler", "wrong"), problem.CodeConflict)
		if err := n.Resign(ctx, ten, "scheduler", a.Token); err != nil {
			t.Fatal(err)
		}
		b := <-won
		if b.Leader != "pod-b" || b.Term <= a.Term {
			t.Fatalf("after resign: %+v (was %+v)", b, a)
		}
		// renewed, ended, new leader
		var got []string
		for len(got) < 3 {
			e := <-obs
			got = append(got, fmt.Sprintf("%s/%d", e.Leader, e.Term))
		}
		want := []string{fmt.Sprintf("pod-a/%d", a.Term), fmt.Sprintf("/%d", a.Term), fmt.Sprintf("pod-b/%d", b.Term)}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("observed %v, want %v", got, want)
		}
		if err := n.Resign(ctx, ten, "scheduler", b.Token); err != nil {
			t.Fatal(err)
		}
		_, err = n.Leader(ctx, ten, "scheduler")
		wantCode(t, err, problem.CodeNotFound)
	})

	t.Run("WatchElectionsSeesEveryElectionOfTheTenantOnly", func(t *testing.T) {
		ten, other := uuid.New(), uuid.New()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events, err := n.WatchElections(wctx, ten)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Campaign(ctx, other, "scheduler", "elsewhere", 10*time.Second, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Acquire(ctx, ten, "scheduler", "a lock, not an election", 10*time.Second, 0); err != nil {
			t.Fatal(err)
		}
		a, err := n.Campaign(ctx, ten, "scheduler", "pod-a", 10*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := n.Campaign(ctx, ten, "reporter", "pod-b", 10*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Resign(ctx, ten, "scheduler", a.Token); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(got) < 3 {
			select {
			case e := <-events:
				got = append(got, fmt.Sprintf("%s %s %s/%d", e.Type, e.Name, e.Owner, e.FencingToken))
			case <-time.After(5 * time.Second):
				t.Fatalf("events so far %v", got)
			}
		}
		want := []string{
			fmt.Sprintf("%s scheduler pod-a/%d", EventAcquired, a.Term),
			fmt.Sprintf("%s reporter pod-b/%d", EventAcquired, b.Term),
			fmt.Sprintf("%s scheduler pod-a/%d", EventReleased, a.Term),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("watched %v, want %v", got, want)
		}
		select {
		case e := <-events:
			t.Fatalf("unexpected event %+v", e)
		case <-time.After(100 * time.Millisecond):
		}
	})

	t.Run("Status", func(t *testing.T) {
		st := n.Status()
		if st.State != "Leader" || st.LeaderID != "n0" || len(st.Members) != 1 || !st.Members[0].Leader || st.CommitIndex == 0 || st.AppliedIndex == 0 {
			t.Fatalf("Status = %+v", st)
		}
		if err := n.Ready(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRestart_ReplaysToSameState restarts a single node from its data dir,
// once from the log alone and once from a snapshot plus the log.
func TestRestart_ReplaysToSameState(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := context.Background()
	ten := uuid.New()
	n := c.node(0)
	l, err := n.Acquire(ctx, ten, "keep", "me", time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, ten, "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for round, snapshot := range []bool{false, true} {
		n := c.node(0)
		if snapshot {
			if err := n.raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			if _, err := n.Put(ctx, ten, "after-snapshot", []byte("x"), PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		before := n.fsm.canonical()
		c.stop(0)
		// What a restart does (latest snapshot, then the log after it), done
		// by hand so the new leader's own entries do not blur the result.
		if after := replayOffline(t, c.nodes[0].dir); string(after) != string(before) {
			t.Fatalf("round %d: replayed state differs:\n%s\n%s", round, after, before)
		}
		c.start(0, false)
		c.waitLeader(10 * time.Second)
		n = c.node(0)
		if ok, err := n.Verify(ctx, ten, "keep", l.FencingToken); err != nil || !ok {
			t.Fatalf("round %d: lock lost across restart: %v %v", round, ok, err)
		}
		l2, err := n.Acquire(ctx, ten, fmt.Sprintf("new-%d", round), "me", time.Hour, 0)
		if err != nil || l2.FencingToken <= l.FencingToken {
			t.Fatalf("round %d: fencing after restart %d (before %d), %v", round, l2.FencingToken, l.FencingToken, err)
		}
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]Config{
		"no data dir":            {},
		"bad bind":               {DataDir: dir, BindAddr: "nonsense"},
		"wildcard, no advertise": {DataDir: dir, BindAddr: "0.0.0.0:0"},
		"peers without self":     {DataDir: dir, NodeID: "a", Peers: []Peer{{ID: "b", Addr: "127.0.0.1:7001"}}},
		"duplicate peers": {DataDir: dir, NodeID: "a", Peers: []Peer{
			{ID: "a", Addr: "127.0.0.1:7001"}, {ID: "a", Addr: "127.0.0.1:7002"}}},
		"peer without port":    {DataDir: dir, NodeID: "a", Peers: []Peer{{ID: "a", Addr: "127.0.0.1"}}},
		"join with peers":      {DataDir: dir, NodeID: "a", Join: true, Peers: []Peer{{ID: "a", Addr: "127.0.0.1:7001"}}},
		"lease over heartbeat": {DataDir: dir, HeartbeatTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: time.Second},
		"control char id":      {DataDir: dir, NodeID: "a\tb"},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if cfg.BindAddr == "" {
				cfg.BindAddr = "127.0.0.1:0"
			}
			n, err := New(cfg, nil)
			if err == nil {
				n.Close()
				t.Fatal("accepted")
			}
		})
	}
}

func TestNew_DataDirInUse(t *testing.T) {
	dir := t.TempDir()
	n, err := New(Config{DataDir: dir, BindAddr: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, err = New(Config{DataDir: dir, BindAddr: "127.0.0.1:0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second node on one data dir: %v", err)
	}
}
