package lockd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"

	"switchboard/internal/problem"
)

// fsmHarness feeds commands to a state machine as Raft would.
type fsmHarness struct {
	t     testing.TB
	f     *fsm
	index uint64
}

func newHarness(t testing.TB) *fsmHarness { return &fsmHarness{t: t, f: newFSM(nil)} }

func (h *fsmHarness) apply(c command) applyResult {
	h.t.Helper()
	data, err := encodeCommand(c)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	res, _ := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(applyResult)
	return res
}

var (
	tenantA = uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	tenantB = uuid.MustParse("00000000-0000-0000-0000-00000000000b")
	sec     = int64(time.Second)
)

func acquireCmd(now int64, name, owner, token string, ttl, wait int64) command {
	c := command{Type: cmdAcquire, Now: now, Kind: kindLock, Tenant: tenantA, Name: name, Owner: owner, Token: token, TTL: ttl, Wait: wait}
	if wait > 0 {
		c.Request = "req-" + token
	}
	return c
}

func expireCmd(now int64, name string) command {
	return command{Type: cmdExpire, Now: now, Keys: []leaseRef{{Kind: kindLock, Tenant: tenantA, Name: name}}}
}

func (h *fsmHarness) holder(name string) *lease {
	return h.f.leases[leaseKey{kindLock, tenantA, name}]
}

func TestFSM_ExpiryNeedsTheStampedTimeToPass(t *testing.T) {
	h := newHarness(t)
	res := h.apply(acquireCmd(100*sec, "l", "a", "t1", sec, 0))
	if res.grant == nil || res.grant.Fencing != 1 || res.grant.ExpiresAt != 101*sec {
		t.Fatalf("grant %+v", res)
	}
	h.apply(expireCmd(101*sec-1, "l"))
	if h.holder("l") == nil {
		t.Fatal("expired one nanosecond early")
	}
	h.apply(expireCmd(101*sec, "l"))
	if h.holder("l") != nil {
		t.Fatal("not expired at ExpiresAt")
	}
}

func TestFSM_PromoteGivesGrace(t *testing.T) {
	h := newHarness(t)
	h.apply(acquireCmd(100*sec, "l", "a", "t1", sec, 0))                 // expires at 101s
	h.apply(acquireCmd(100*sec, "long", "a", "t2", 100*sec, 0))          // expires at 200s
	h.apply(command{Type: cmdPromote, Now: 100*sec + sec/2, Grace: sec}) // floor 101.5s
	if got := h.holder("l").ExpiresAt; got != 101*sec+sec/2 {
		t.Fatalf("short lease ends at %d, want the grace floor", got)
	}
	if got := h.holder("long").ExpiresAt; got != 200*sec {
		t.Fatalf("promote shortened a lease to %d", got)
	}
	h.apply(expireCmd(101*sec+sec/4, "l"))
	if h.holder("l") == nil {
		t.Fatal("expired inside the grace period")
	}
}

func TestFSM_StateClockNeverRunsBackwards(t *testing.T) {
	h := newHarness(t)
	h.apply(acquireCmd(100*sec, "l", "a", "t1", sec, 0))
	// A command stamped earlier (a racing proposer, or a new leader with a
	// slower clock) computes from the state clock, not its own stamp.
	res := h.apply(command{Type: cmdRenew, Now: 50 * sec, Kind: kindLock, Tenant: tenantA, Name: "l", Token: "t1", TTL: sec})
	if res.err != nil || res.grant.ExpiresAt != 101*sec || h.f.now != 100*sec {
		t.Fatalf("renew %+v, now %d", res, h.f.now)
	}
}

func TestFSM_WaitersFIFOAndDeadlines(t *testing.T) {
	h := newHarness(t)
	h.apply(acquireCmd(100*sec, "l", "a", "t1", 10*sec, 0))
	for i, w := range []struct {
		owner string
		wait  int64
	}{{"b", sec}, {"c", 60 * sec}, {"d", 60 * sec}} {
		if res := h.apply(acquireCmd(100*sec, "l", w.owner, fmt.Sprintf("w%d", i), 10*sec, w.wait)); !res.queued {
			t.Fatalf("not queued: %+v", res)
		}
	}
	// b's deadline (101s) has passed at release time: c is next, not b.
	res := h.apply(command{Type: cmdRelease, Now: 102 * sec, Kind: kindLock, Tenant: tenantA, Name: "l", Token: "t1"})
	if res.err != nil {
		t.Fatal(res.err)
	}
	ls := h.holder("l")
	if ls.Owner != "c" || ls.Fencing != h.index || ls.ExpiresAt != 112*sec || len(ls.Waiters) != 1 || ls.Waiters[0].Owner != "d" {
		t.Fatalf("after release: %+v", ls)
	}
	// A cancel that arrives after the grant returns the grant.
	res = h.apply(command{Type: cmdCancelWait, Now: 103 * sec, Kind: kindLock, Tenant: tenantA, Name: "l", Token: "w1", Request: "req-w1"})
	if res.grant == nil || res.grant.Owner != "c" {
		t.Fatalf("cancel after grant: %+v", res)
	}
	// d withdraws: it leaves the queue and is told it did not get the lock.
	res = h.apply(command{Type: cmdCancelWait, Now: 103 * sec, Kind: kindLock, Tenant: tenantA, Name: "l", Token: "w2", Request: "req-w2"})
	if problem.Code(res.err) != problem.CodeConflict || len(h.holder("l").Waiters) != 0 {
		t.Fatalf("cancel while queued: %+v, %+v", res, h.holder("l"))
	}
}

func TestFSM_RejectsBadEntriesWithoutChange(t *testing.T) {
	h := newHarness(t)
	h.apply(acquireCmd(100*sec, "l", "a", "t1", sec, 0))
	before, at := h.f.canonical(), h.f.applied
	bad := [][]byte{
		nil,
		{commandVersion},
		{9, '{', '}'},
		append([]byte{commandVersion}, `{"t":1}`...),
		append([]byte{commandVersion}, `{"t":99,"now":5}`...),
		append([]byte{commandVersion}, `{"t":1,"now":5,"k":1,"ten":"00000000-0000-0000-0000-00000000000a","n":"x","o":"o","tok":"t","ttl":1}`...),
		append([]byte{commandVersion}, `{"t":3,"now":5,"k":1,"ten":"00000000-0000-0000-0000-00000000000a","n":"l","tok":"t1","extra":1}`...),
		append([]byte{commandVersion}, `{"t":3,"now":5,"k":1,"ten":"00000000-0000-0000-0000-00000000000a","n":"l","tok":"t1"} {}`...),
	}
	for i, data := range bad {
		h.index++
		res, _ := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(applyResult)
		if res.err == nil {
			t.Errorf("entry %d accepted", i)
		}
	}
	// They count as applied (every node rejects them alike), and change
	// nothing else.
	if h.f.applied != h.index {
		t.Fatalf("applied index %d after entry %d", h.f.applied, h.index)
	}
	h.f.applied = at
	if after := h.f.canonical(); !bytes.Equal(before, after) {
		t.Fatalf("bad entries changed the state:\n%s\n%s", before, after)
	}
}

// randomCommands builds a reproducible workload touching every command type.
func randomCommands(seed uint64, count int) []command {
	r := rand.New(rand.NewPCG(seed, 1))
	names := []string{"a", "b", "c"}
	tenants := []uuid.UUID{tenantA, tenantB}
	var tokens []string
	now := int64(1000 * sec)
	var out []command
	for i := range count {
		now += int64(r.IntN(300)) * int64(time.Millisecond)
		ten, name := tenants[r.IntN(2)], names[r.IntN(len(names))]
		kind := leaseKind(1 + r.IntN(2))
		tok := fmt.Sprintf("tok%d", i)
		pick := func() string {
			if len(tokens) == 0 || r.IntN(5) == 0 {
				return "unknown"
			}
			return tokens[r.IntN(len(tokens))]
		}
		var c command
		switch r.IntN(9) {
		case 0, 1:
			c = command{Type: cmdAcquire, Kind: kind, Tenant: ten, Name: name, Owner: "o" + tok, Token: tok, TTL: int64(MinTTL) * int64(1+r.IntN(20))}
			if r.IntN(2) == 0 {
				c.Wait, c.Request = int64(r.IntN(3000))*int64(time.Millisecond)+1, "r"+tok
			}
			tokens = append(tokens, tok)
		case 2:
			c = command{Type: cmdRenew, Kind: kind, Tenant: ten, Name: name, Token: pick(), TTL: int64(MinTTL) * int64(1+r.IntN(20))}
		case 3:
			c = command{Type: cmdRelease, Kind: kind, Tenant: ten, Name: name, Token: pick()}
		case 4:
			p := pick()
			c = command{Type: cmdCancelWait, Kind: kind, Tenant: ten, Name: name, Token: p, Request: "r" + p}
		case 5:
			c = command{Type: cmdExpire, Keys: []leaseRef{{Kind: kind, Tenant: ten, Name: name}, {Kind: kindLock, Tenant: tenantA, Name: "a"}}}
		case 6:
			c = command{Type: cmdPromote, Grace: int64(r.IntN(2000)+1) * int64(time.Millisecond)}
		case 7:
			c = command{Type: cmdPut, Tenant: ten, Name: name, Value: []byte(tok), IfRevision: uint64(r.IntN(3) * r.IntN(i+1)), IfAbsent: r.IntN(4) == 0}
			if c.IfAbsent {
				c.IfRevision = 0
			}
		case 8:
			c = command{Type: cmdDelete, Tenant: ten, Name: name, IfRevision: uint64(r.IntN(2) * r.IntN(i+1))}
		}
		c.Now = now - int64(r.IntN(50))*int64(time.Millisecond) // stamps may arrive out of order
		out = append(out, c)
	}
	return out
}

func checkInvariants(t testing.TB, f *fsm, lastIndex uint64) {
	t.Helper()
	f.mu.RLock()
	defer f.mu.RUnlock()
	for k, ls := range f.leases {
		if !validToken(ls.Token) || ls.Fencing == 0 || ls.Fencing > lastIndex || !validName(ls.Owner) {
			t.Fatalf("lease %v: bad holder %+v", k, ls)
		}
		if len(ls.Waiters) > MaxWaiters {
			t.Fatalf("lease %v: %d waiters", k, len(ls.Waiters))
		}
		for _, w := range ls.Waiters {
			if w.Request == "" || w.Token == ls.Token {
				t.Fatalf("lease %v: bad waiter %+v", k, w)
			}
		}
	}
	for ten, m := range f.kv {
		if len(m) == 0 {
			t.Fatalf("tenant %v: empty map kept", ten)
		}
		for key, e := range m {
			if e.Revision < e.CreateRevision || e.Revision > lastIndex || e.Value == nil {
				t.Fatalf("key %q: %+v", key, e)
			}
		}
	}
}

// TestFSM_ReplayIsDeterministic applies one workload to two machines, and to
// a third restored from a snapshot of the first taken half way, and checks
// all three end equal; fencing tokens must only grow per lease.
func TestFSM_ReplayIsDeterministic(t *testing.T) {
	for seed := range uint64(20) {
		cmds := randomCommands(seed, 400)
		a, b := newHarness(t), newHarness(t)
		var c *fsmHarness
		lastFencing := map[leaseKey]uint64{}
		for i, cmd := range cmds {
			a.apply(cmd)
			b.apply(cmd)
			for k, ls := range a.f.leases {
				if ls.Fencing < lastFencing[k] {
					t.Fatalf("seed %d: fencing of %v went back from %d to %d", seed, k, lastFencing[k], ls.Fencing)
				}
				lastFencing[k] = ls.Fencing
			}
			if c != nil {
				c.apply(cmd)
			}
			if i == len(cmds)/2 {
				c = newHarness(t)
				snapshotInto(t, a.f, c.f)
				c.index = a.index
			}
		}
		checkInvariants(t, a.f, a.index)
		ca, cb, cc := a.f.canonical(), b.f.canonical(), c.f.canonical()
		if !bytes.Equal(ca, cb) || !bytes.Equal(ca, cc) {
			t.Fatalf("seed %d: states differ:\n%s\n%s\n%s", seed, ca, cb, cc)
		}
	}
}

// snapshotInto persists from's snapshot and restores it into to.
func snapshotInto(t testing.TB, from, to *fsm) {
	t.Helper()
	snap, err := from.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := to.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string                    { return "mem" }
func (*memSink) Cancel() error                 { return nil }
func (*memSink) Close() error                  { return nil }
func (s *memSink) Write(p []byte) (int, error) { return s.Buffer.Write(p) }

func seedCorpus(f *testing.F) {
	for _, c := range randomCommands(7, 40) {
		data, err := encodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{commandVersion, '{', '}'})
	f.Add(append([]byte{commandVersion}, `{"t":5,"now":1,"keys":[{"k":1,"ten":"00000000-0000-0000-0000-00000000000a","n":"a"}]}`...))
}

// FuzzDecodeCommand: decoding never panics, and what it accepts passes the
// command checks and survives a round trip.
func FuzzDecodeCommand(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err != nil {
			return
		}
		if err := c.check(); err != nil {
			t.Fatalf("accepted an invalid command: %v", err)
		}
		again, err := encodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := decodeCommand(again)
		if err != nil {
			t.Fatalf("round trip rejected: %v", err)
		}
		a, _ := encodeCommand(c2)
		if !bytes.Equal(a, again) {
			t.Fatalf("round trip changed the command:\n%s\n%s", again, a)
		}
	})
}

// FuzzApply: any entry applied to a busy state machine leaves it valid, and
// two machines fed the same entries stay equal.
func FuzzApply(f *testing.F) {
	seedCorpus(f)
	prefix := randomCommands(3, 60)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := newHarness(t), newHarness(t)
		for _, c := range prefix {
			a.apply(c)
			b.apply(c)
		}
		for _, h := range []*fsmHarness{a, b} {
			h.index++
			res := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
			if _, ok := res.(applyResult); !ok {
				t.Fatalf("Apply returned %T", res)
			}
		}
		checkInvariants(t, a.f, a.index)
		if !bytes.Equal(a.f.canonical(), b.f.canonical()) {
			t.Fatal("same entry, different states")
		}
	})
}
