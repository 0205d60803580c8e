package lockd

import (
	"bytes"
	"encoding/json"
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
	return h.applyData(encodeTB(h.t, c))
}

// applyLegacy applies c as an earlier version wrote it (command version 1).
func (h *fsmHarness) applyLegacy(c command) applyResult {
	h.t.Helper()
	return h.applyData(legacyEntry(encodeTB(h.t, c)))
}

func (h *fsmHarness) applyData(data []byte) applyResult {
	h.index++
	res, _ := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(applyResult)
	return res
}

func encodeTB(t testing.TB, c command) []byte {
	t.Helper()
	data, err := encodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// legacyEntry re-tags an encoded command as version 1: earlier versions
// wrote the same JSON under that version byte.
func legacyEntry(data []byte) []byte {
	return append([]byte{legacyCommandVersion}, data[1:]...)
}

// eventLog records what the state machine publishes.
type eventLog struct{ events []fsmEvent }

func (l *eventLog) granted(string, grant) {}
func (l *eventLog) event(e fsmEvent)      { l.events = append(l.events, e) }
func (l *eventLog) reset()                {}

func (e fsmEvent) tenant() uuid.UUID {
	if e.kv != nil {
		return e.kv.tenant
	}
	return e.lease.key.Tenant
}

func (e fsmEvent) String() string {
	if e.kv != nil {
		return fmt.Sprintf("@%d %s %s rev=%d %q", e.index, e.kv.typ, e.kv.key, e.kv.revision, e.kv.value)
	}
	l := e.lease
	return fmt.Sprintf("@%d %s %s %s owner=%s fencing=%d exp=%d", e.index, l.typ, l.key.Kind, l.key.Name, l.owner, l.fencing, l.expiresAt)
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
	// One revision per entry: the grant, three queued waiters, then the
	// release that drops b and grants c.
	ls := h.holder("l")
	if ls.Owner != "c" || ls.Fencing != 5 || ls.Fencing != h.f.revision(tenantA) || ls.ExpiresAt != 112*sec || len(ls.Waiters) != 1 || ls.Waiters[0].Owner != "d" {
		t.Fatalf("after release: %+v (tenant at revision %d)", ls, h.f.revision(tenantA))
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
		append([]byte{legacyCommandVersion}, `{"t":1}`...),
		append([]byte{legacyCommandVersion}, `{"t":3,"now":5,"k":1,"ten":"00000000-0000-0000-0000-00000000000a","n":"l","tok":"t1","extra":1}`...),
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

// checkInvariants checks the state alone: every number it holds is one its
// tenant's revision has reached.
func checkInvariants(t testing.TB, f *fsm) {
	t.Helper()
	f.mu.RLock()
	defer f.mu.RUnlock()
	for k, ls := range f.leases {
		if !validToken(ls.Token) || ls.Fencing == 0 || ls.Fencing > f.revision(k.Tenant) || !validName(ls.Owner) {
			t.Fatalf("lease %v: bad holder %+v (tenant at revision %d)", k, ls, f.revision(k.Tenant))
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
			if e.CreateRevision == 0 || e.Revision < e.CreateRevision || e.Revision > f.revision(ten) || e.Value == nil {
				t.Fatalf("key %q: %+v (tenant at revision %d)", key, e, f.revision(ten))
			}
		}
	}
}

// TestFSM_ReplayIsDeterministic applies one workload to two machines, and to
// a third restored from a snapshot of the first taken half way, and checks
// all three end equal. The first quarter of the log is in the earlier
// versions' format, as in a log that spans an upgrade. Fencing tokens must
// only grow per lease, each tenant's revision per entry, and every event
// carries its tenant's revision of the entry that made it.
func TestFSM_ReplayIsDeterministic(t *testing.T) {
	for seed := range uint64(20) {
		cmds := randomCommands(seed, 400)
		a, b := newHarness(t), newHarness(t)
		events := &eventLog{}
		a.f.hooks = events
		var c *fsmHarness
		lastFencing := map[leaseKey]uint64{}
		for i, cmd := range cmds {
			apply := (*fsmHarness).apply
			if i < len(cmds)/4 {
				apply = (*fsmHarness).applyLegacy
			}
			revA, revB := a.f.revision(tenantA), a.f.revision(tenantB)
			events.events = events.events[:0]
			apply(a, cmd)
			apply(b, cmd)
			for k, ls := range a.f.leases {
				if ls.Fencing < lastFencing[k] {
					t.Fatalf("seed %d: fencing of %v went back from %d to %d", seed, k, lastFencing[k], ls.Fencing)
				}
				lastFencing[k] = ls.Fencing
			}
			if a.f.revision(tenantA) < revA || a.f.revision(tenantB) < revB {
				t.Fatalf("seed %d: a revision went back", seed)
			}
			for _, e := range events.events {
				before := map[uuid.UUID]uint64{tenantA: revA, tenantB: revB}[e.tenant()]
				if e.index <= before || e.index != a.f.revision(e.tenant()) {
					t.Fatalf("seed %d entry %d: event %v, tenant went from revision %d to %d", seed, i, e, before, a.f.revision(e.tenant()))
				}
			}
			if c != nil {
				apply(c, cmd)
			}
			if i == len(cmds)/2 {
				c = newHarness(t)
				snapshotInto(t, a.f, c.f)
				c.index = a.index
			}
		}
		checkInvariants(t, a.f)
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
	f.Add(legacyEntry(encodeTB(f, randomCommands(7, 1)[0])))
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
		checkInvariants(t, a.f)
		if !bytes.Equal(a.f.canonical(), b.f.canonical()) {
			t.Fatal("same entry, different states")
		}
	})
}

// splitTenants splits c into the part for tenant A and the part for tenant
// B (an expiry may name leases of both); nil where c has none.
func splitTenants(c command) (a, b *command) {
	if c.Type != cmdExpire {
		if c.Tenant == tenantA {
			return &c, nil
		}
		return nil, &c
	}
	ca, cb := c, c
	ca.Keys, cb.Keys = nil, nil
	for _, k := range c.Keys {
		if k.Tenant == tenantA {
			ca.Keys = append(ca.Keys, k)
		} else {
			cb.Keys = append(cb.Keys, k)
		}
	}
	if len(ca.Keys) > 0 {
		a = &ca
	}
	if len(cb.Keys) > 0 {
		b = &cb
	}
	return a, b
}

// TestFSM_TenantNumbersIgnoreOtherTenants runs tenant B's share of a
// workload alone, and again interleaved with tenant A's share: every number
// B sees — fencing tokens, KV revisions, refusals that quote a revision,
// event indexes, its revision — must be the same in both runs.
func TestFSM_TenantNumbersIgnoreOtherTenants(t *testing.T) {
	for seed := range uint64(10) {
		var alone, shared []command
		var clock int64
		for _, c := range randomCommands(seed, 400) {
			// One clock for both runs, so B's commands meet the same state
			// time whether or not A's came in between.
			clock = max(clock, c.Now)
			c.Now = clock
			if c.Type == cmdPromote {
				continue // a leader change, not a tenant's write
			}
			a, b := splitTenants(c)
			if b != nil {
				alone = append(alone, *b)
				shared = append(shared, *b)
			}
			if a != nil {
				shared = append(shared, *a)
			}
		}
		run := func(cmds []command) (seen []string, h *fsmHarness) {
			h = newHarness(t)
			events := &eventLog{}
			h.f.hooks = events
			for _, c := range cmds {
				events.events = events.events[:0]
				res := h.apply(c)
				if c.Tenant != tenantB && (c.Type != cmdExpire || c.Keys[0].Tenant != tenantB) {
					continue
				}
				line := fmt.Sprintf("%s queued=%v err=%v", c.Type, res.queued, res.err)
				if res.grant != nil {
					line += fmt.Sprintf(" fencing=%d exp=%d", res.grant.Fencing, res.grant.ExpiresAt)
				}
				if res.kv != nil {
					line += fmt.Sprintf(" rev=%d crev=%d", res.kv.Revision, res.kv.CreateRevision)
				}
				for _, e := range events.events {
					line += " | " + e.String()
				}
				seen = append(seen, line)
			}
			return seen, h
		}
		want, hAlone := run(alone)
		got, hShared := run(shared)
		if hShared.f.revision(tenantA) == 0 || len(shared) == len(alone) {
			t.Fatalf("seed %d: tenant A wrote nothing", seed)
		}
		if hAlone.f.revision(tenantB) == 0 {
			t.Fatalf("seed %d: tenant B changed nothing", seed)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("seed %d: B's step %d with A writing:\n  %s\nalone:\n  %s", seed, i, got[i], want[i])
				}
			}
			t.Fatalf("seed %d: B took %d steps with A writing, %d alone", seed, len(got), len(want))
		}
		if a, b := hAlone.f.revision(tenantB), hShared.f.revision(tenantB); a != b {
			t.Fatalf("seed %d: B ends at revision %d alone, %d with A writing", seed, a, b)
		}
	}
}

// TestFSM_LegacyEntriesKeepTheirRaftIndex: entries an earlier version wrote
// are numbered as it numbered them, by Raft index, and this version's
// numbers start above every one of them, for every tenant.
func TestFSM_LegacyEntriesKeepTheirRaftIndex(t *testing.T) {
	h := newHarness(t)
	events := &eventLog{}
	h.f.hooks = events
	h.index = 40 // an earlier version's log
	if res := h.applyLegacy(acquireCmd(100*sec, "l", "a", "t1", 10*sec, 0)); res.grant == nil || res.grant.Fencing != 41 {
		t.Fatalf("legacy grant %+v, want fencing 41", res)
	}
	if res := h.applyLegacy(acquireCmd(100*sec, "l", "b", "t2", 10*sec, 60*sec)); !res.queued {
		t.Fatalf("legacy queue %+v", res)
	}
	events.events = nil
	h.applyLegacy(command{Type: cmdRelease, Now: 101 * sec, Kind: kindLock, Tenant: tenantA, Name: "l", Token: "t1"})
	if ls := h.holder("l"); ls.Owner != "b" || ls.Fencing != 43 {
		t.Fatalf("legacy hand-over %+v, want b at 43", ls)
	}
	if len(events.events) != 2 || events.events[0].index != 43 || events.events[1].index != 43 {
		t.Fatalf("legacy hand-over events %v, want both at 43", events.events)
	}
	if res := h.applyLegacy(command{Type: cmdPut, Now: 101 * sec, Tenant: tenantB, Name: "k"}); res.kv == nil || res.kv.Revision != 44 {
		t.Fatalf("legacy put %+v, want revision 44", res)
	}
	// The upgrade: this version's entries from here on.
	res := h.apply(command{Type: cmdRenew, Now: 102 * sec, Kind: kindLock, Tenant: tenantA, Name: "l", Token: "t2", TTL: 10 * sec})
	if res.grant == nil || res.grant.Fencing != 43 {
		t.Fatalf("renew across the upgrade %+v, want the holder's fencing 43", res)
	}
	if res := h.apply(command{Type: cmdPut, Now: 102 * sec, Tenant: tenantB, Name: "k", IfRevision: 44}); res.kv == nil || res.kv.Revision != 45 {
		t.Fatalf("put on the legacy revision %+v, want revision 45", res)
	}
	tenantC := uuid.New()
	c := acquireCmd(102*sec, "l", "c", "t3", 10*sec, 0)
	c.Tenant = tenantC
	if res := h.apply(c); res.grant == nil || res.grant.Fencing != 45 {
		t.Fatalf("a new tenant's first grant %+v, want 45: above every Raft index handed out before", res)
	}
}

// legacySnapshot rewrites a snapshot as an earlier version wrote it:
// version 1, no counters, and, for the oldest, no index either.
func legacySnapshot(t testing.TB, snap []byte, withIndex bool) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(snap, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "revs")
	delete(m, "floor")
	if !withIndex {
		delete(m, "index")
	}
	m["version"] = json.RawMessage(`1`)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFSM_LegacySnapshotNeverReissues restores a snapshot in the earlier
// format (no counters) and checks that no tenant is handed a fencing token
// or revision at or below one handed out before it — not even a tenant
// whose lock left no trace in the state.
func TestFSM_LegacySnapshotNeverReissues(t *testing.T) {
	tenantC, tenantD := uuid.New(), uuid.New()
	forTenant := func(c command, ten uuid.UUID) command { c.Tenant = ten; return c }
	old := newHarness(t)
	old.index = 100
	gone1 := old.applyLegacy(acquireCmd(100*sec, "gone", "a", "g1", 10*sec, 0))
	old.applyLegacy(command{Type: cmdRelease, Now: 100 * sec, Kind: kindLock, Tenant: tenantA, Name: "gone", Token: "g1"})
	old.applyLegacy(command{Type: cmdPut, Now: 100 * sec, Tenant: tenantB, Name: "k", Value: []byte("1")})
	held := old.applyLegacy(forTenant(acquireCmd(100*sec, "held", "c", "h1", 3600*sec, 0), tenantC))
	old.applyLegacy(command{Type: cmdPut, Now: 100 * sec, Tenant: tenantB, Name: "k", Value: []byte("2")})
	gone2 := old.applyLegacy(acquireCmd(100*sec, "gone", "a", "g2", 10*sec, 0))
	old.applyLegacy(command{Type: cmdRelease, Now: 100 * sec, Kind: kindLock, Tenant: tenantA, Name: "gone", Token: "g2"})
	issued := old.index // every number so far was a Raft index up to here
	if gone1.grant.Fencing != 101 || held.grant.Fencing != 104 || gone2.grant.Fencing != 106 {
		t.Fatalf("legacy grants %d %d %d", gone1.grant.Fencing, held.grant.Fencing, gone2.grant.Fencing)
	}
	snap, err := old.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}

	// after checks this version's first numbers against above.
	after := func(t *testing.T, h *fsmHarness, above uint64) {
		t.Helper()
		if res := h.apply(command{Type: cmdRenew, Now: 101 * sec, Kind: kindLock, Tenant: tenantC, Name: "held", Token: "h1", TTL: 3600 * sec}); res.grant == nil || res.grant.Fencing != 104 {
			t.Fatalf("the held lock's fencing token changed across the restore: %+v", res)
		}
		numbers := map[string]uint64{}
		if res := h.apply(acquireCmd(101*sec, "gone", "a", "g3", 10*sec, 0)); res.grant != nil {
			numbers["A's lock, released before the snapshot"] = res.grant.Fencing
		}
		if res := h.apply(command{Type: cmdPut, Now: 101 * sec, Tenant: tenantB, Name: "k", Value: []byte("3")}); res.kv != nil {
			numbers["B's key"] = res.kv.Revision
		}
		if res := h.apply(forTenant(acquireCmd(101*sec, "new", "c", "c2", 10*sec, 0), tenantC)); res.grant != nil {
			numbers["C's new lock"] = res.grant.Fencing
		}
		if res := h.apply(forTenant(acquireCmd(101*sec, "gone", "d", "d1", 10*sec, 0), tenantD)); res.grant != nil {
			numbers["D, a tenant the old version never saw"] = res.grant.Fencing
		}
		if len(numbers) != 4 {
			t.Fatalf("not every step succeeded: %v", numbers)
		}
		for what, n := range numbers {
			if n <= above {
				t.Errorf("%s: %d, not above %d", what, n, above)
			}
		}
	}

	t.Run("with index", func(t *testing.T) {
		h := newHarness(t)
		if err := h.f.Restore(io.NopCloser(bytes.NewReader(legacySnapshot(t, sink.Bytes(), true)))); err != nil {
			t.Fatal(err)
		}
		h.index = issued
		after(t, h, issued)
	})
	t.Run("without index", func(t *testing.T) {
		// The oldest format keeps no index: the numbers it holds bound the
		// floor, and the earlier version's entries that follow it in the
		// log raise it to their indexes.
		h := newHarness(t)
		if err := h.f.Restore(io.NopCloser(bytes.NewReader(legacySnapshot(t, sink.Bytes(), false)))); err != nil {
			t.Fatal(err)
		}
		if h.f.floor != gone2.grant.Fencing-1 { // B's second put at 105 is the largest number it holds
			t.Fatalf("floor %d, want 105", h.f.floor)
		}
		h.index = issued
		h.applyLegacy(command{Type: cmdPut, Now: 100 * sec, Tenant: tenantB, Name: "tail", Value: []byte("t")})
		after(t, h, h.index)
	})
	t.Run("this version's snapshot keeps the counters", func(t *testing.T) {
		h := newHarness(t)
		snapshotInto(t, old.f, h.f)
		if h.f.floor != issued || !bytes.Equal(h.f.canonical(), old.f.canonical()) {
			t.Fatalf("restored floor %d, state\n%s\nwant\n%s", h.f.floor, h.f.canonical(), old.f.canonical())
		}
		h.index = issued
		after(t, h, issued)
	})
}
