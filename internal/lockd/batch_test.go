package lockd

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"
)

// batchEntry frames encoded commands as one batch entry.
func batchEntry(cmds ...[]byte) []byte {
	ps := make([]*proposal, len(cmds))
	for i, c := range cmds {
		ps[i] = &proposal{data: c}
	}
	return encodeBatch(ps)
}

// Commands applied in batch entries leave exactly the state, results and
// events they leave applied one entry each: every command is numbered as an
// entry of its own, so batching changes no fencing token, revision or
// event index a tenant sees.
func TestFSM_BatchesApplyAsOneEntryPerCommand(t *testing.T) {
	cmds := randomCommands(11, 400)
	single, batched := newHarness(t), newHarness(t)
	var singleEvents, batchedEvents eventLog
	single.f.hooks, batched.f.hooks = &singleEvents, &batchedEvents

	var want []applyResult
	for _, c := range cmds {
		want = append(want, single.apply(c))
	}
	r := rand.New(rand.NewPCG(3, 4))
	var got []applyResult
	for rest := cmds; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(12))
		var data [][]byte
		for _, c := range rest[:n] {
			data = append(data, encodeTB(t, c))
		}
		rest = rest[n:]
		if n == 1 {
			got = append(got, batched.applyData(data[0]))
			continue
		}
		res := batched.applyData(batchEntry(data...))
		if res.err != nil || len(res.batch) != n {
			t.Fatalf("batch of %d: %+v", n, res)
		}
		got = append(got, res.batch...)
	}
	checkInvariants(t, batched.f)
	// The applied Raft index differs (fewer entries); nothing else may.
	batched.f.applied = single.f.applied
	if !bytes.Equal(single.f.canonical(), batched.f.canonical()) {
		t.Fatalf("batched state differs:\n%s\n%s", single.f.canonical(), batched.f.canonical())
	}
	if !reflect.DeepEqual(want, got) {
		for i := range want {
			if !reflect.DeepEqual(want[i], got[i]) {
				t.Fatalf("command %d (%s): one entry answered %+v, a batch %+v", i, cmds[i].Type, want[i], got[i])
			}
		}
	}
	if len(singleEvents.events) != len(batchedEvents.events) {
		t.Fatalf("%d events one entry each, %d batched", len(singleEvents.events), len(batchedEvents.events))
	}
	// Sorted: a promote changes leases in map order, which reaches no state.
	sorted := func(l *eventLog) []string {
		var out []string
		for _, e := range l.events {
			out = append(out, e.String())
		}
		slices.Sort(out)
		return out
	}
	if a, b := sorted(&singleEvents), sorted(&batchedEvents); !slices.Equal(a, b) {
		t.Fatalf("batched commands published other events:\n%v\n%v", a, b)
	}
}

// A command of a batch that fails its checks is refused alone; a batch
// whose framing is broken is refused whole. Neither panics, and both
// change nothing but what the good commands change.
func TestFSM_BadBatchesAreRefusedAlike(t *testing.T) {
	good := acquireCmd(100*sec, "l", "a", "t1", sec, 0)
	bad := append([]byte{commandVersion}, `{"t":1,"now":5}`...)

	t.Run("a bad command among good ones", func(t *testing.T) {
		want, h := newHarness(t), newHarness(t)
		want.apply(good)
		res := h.applyData(batchEntry(bad, encodeTB(t, good), legacyEntry(encodeTB(t, good)), batchEntry(bad, bad)))
		if res.err != nil || len(res.batch) != 4 {
			t.Fatalf("result %+v", res)
		}
		for i, r := range res.batch {
			if (r.err == nil) != (i == 1) {
				t.Errorf("command %d: %v", i, r.err)
			}
		}
		h.f.applied = want.f.applied
		if !bytes.Equal(want.f.canonical(), h.f.canonical()) {
			t.Fatalf("state %s, want %s", h.f.canonical(), want.f.canonical())
		}
	})

	g := encodeTB(t, good)
	whole := batchEntry(g, g)
	broken := [][]byte{
		{batchVersion},
		{batchVersion, 1, 0},               // a batch of one
		{batchVersion, 0xff},               // a count cut off
		append([]byte{batchVersion, 2}, 5), // lengths past the end
		whole[:len(whole)-1],
		append(bytes.Clone(whole), 0),
		append([]byte{batchVersion, 0x81, 0x02}, g...), // 257 commands
	}
	for i, data := range broken {
		h := newHarness(t)
		before := h.f.canonical()
		res := h.applyData(data)
		if res.err == nil || res.batch != nil {
			t.Errorf("broken batch %d: %+v", i, res)
		}
		h.f.applied = 0
		if !bytes.Equal(before, h.f.canonical()) {
			t.Errorf("broken batch %d changed the state", i)
		}
	}
}

// FuzzSplitBatch: splitting never panics, and what it accepts frames back
// to the same bytes.
func FuzzSplitBatch(f *testing.F) {
	g := encodeTB(f, acquireCmd(100*sec, "l", "a", "t1", sec, 0))
	f.Add(batchEntry(g, g))
	f.Add(batchEntry(g, []byte{}, g))
	f.Add([]byte{batchVersion, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := splitBatch(data)
		if err != nil {
			return
		}
		if len(cmds) < 2 || len(cmds) > maxBatchCommands {
			t.Fatalf("accepted %d commands", len(cmds))
		}
		if !bytes.Equal(batchEntry(cmds...), data) {
			t.Fatal("no round trip")
		}
		h := newHarness(t)
		if res, ok := h.f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(applyResult); !ok || (res.err == nil && len(res.batch) != len(cmds)) {
			t.Fatalf("apply answered %+v", res)
		}
		checkInvariants(t, h.f)
	})
}

// Concurrent writers on a leader share log entries, and each gets its own
// result: every lock is granted to its own caller with its own fencing
// token, tokens of one tenant are distinct and increase with each caller's
// own writes, and every node ends with the same state.
func TestCluster3_ConcurrentWritesShareEntries(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	ten := uuid.New()
	n := c.leader()
	before := n.raft.LastIndex()
	const clients, each = 16, 20
	tokens := make([][]uint64, clients)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			name := fmt.Sprintf("lock-%d", w)
			for range each {
				l, err := n.Acquire(ctx, ten, name, fmt.Sprintf("owner-%d", w), time.Minute, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if l.Owner != fmt.Sprintf("owner-%d", w) || l.Name != name {
					t.Errorf("client %d was granted %+v", w, l)
				}
				tokens[w] = append(tokens[w], l.FencingToken)
				if err := n.Release(ctx, ten, name, l.Token); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for w, ts := range tokens {
		for i, tok := range ts {
			if seen[tok] {
				t.Fatalf("fencing token %d granted twice", tok)
			}
			seen[tok] = true
			if i > 0 && tok <= ts[i-1] {
				t.Fatalf("client %d: token %d after %d", w, tok, ts[i-1])
			}
		}
	}
	entries := n.raft.LastIndex() - before
	t.Logf("%d commands in %d log entries", 2*clients*each, entries)
	if entries >= 2*clients*each {
		t.Fatalf("%d commands took %d log entries: none shared one", 2*clients*each, entries)
	}
	c.requireSameState()
}
