package lockd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// Histories are recorded by clients that talk to the cluster the way a real
// client library would: follow ErrNotLeader, retry answers that mean "nothing
// happened", and stop at the first definite answer or unknown outcome. An
// unknown outcome is recorded as an operation that never returns, which lets
// the checker place its effect anywhere after its call, or nowhere.

type outcome int

const (
	definite outcome = iota
	unknown
)

// histClient routes one operation at a time to the current leader.
type histClient struct {
	c    *cluster
	r    *rand.Rand
	hint int
}

// call runs op until it gets an answer it can record; ok is false when every
// attempt was refused before reaching the log (the op never happened).
func (hc *histClient) call(op func(n *Node) error) (err error, o outcome, ok bool) {
	// Start each operation on a random node, as behind a load balancer:
	// followers must redirect, never answer from their own state.
	hc.hint = hc.r.IntN(len(hc.c.nodes))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := hc.c.node(hc.hint)
		if n == nil {
			hc.hint = hc.r.IntN(len(hc.c.nodes))
			continue
		}
		err = op(n)
		var nl *ErrNotLeader
		var ou *ErrOutcomeUnknown
		switch {
		case err == nil:
			return nil, definite, true
		case errors.As(err, &ou):
			return err, unknown, true
		case errors.As(err, &nl):
			if i := hc.c.indexOf(nl.LeaderID); i >= 0 && i != hc.hint {
				hc.hint = i
				continue
			}
		case problem.Code(err) == problem.CodeUnavailable:
			// shutting down, not ready, overloaded: not in the log
		case problem.Code(err) == problem.CodeInternal:
			return err, unknown, true
		default:
			return err, definite, true // conflict, not found, precondition
		}
		hc.hint = hc.r.IntN(len(hc.c.nodes))
		time.Sleep(20 * time.Millisecond)
	}
	return err, definite, false
}

func (c *cluster) indexOf(id string) int {
	for i, tn := range c.nodes {
		if tn.id == id {
			return i
		}
	}
	return -1
}

// recorder collects operations from many goroutines.
type recorder struct {
	mu    sync.Mutex // guards ops
	ops   []porcupine.Operation
	epoch time.Time
}

func (r *recorder) add(client int, in, out any, call time.Time, o outcome) {
	ret := int64(time.Since(r.epoch))
	if o == unknown {
		ret = math.MaxInt64
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: int64(call.Sub(r.epoch)), Return: ret})
	r.mu.Unlock()
}

// ---------------------------------------------------------------------------
// Lock model: at most one holder; fencing tokens increase.

type lockIn struct {
	release bool
	token   string // release only
}

type lockOut struct {
	unknown bool
	ok      bool
	code    string // error code when !ok
	token   string
	fencing uint64
}

// lockState's holder is "" when free, a token, or "?" after an acquire of
// unknown outcome that may have been granted to a client that never learnt
// its token (such a lease ends by expiry, at a moment the model cannot know).
type lockState struct {
	holder  string
	fencing uint64
}

var lockModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{lockState{}} },
	Step: func(st, in, out any) []any {
		s, i, o := st.(lockState), in.(lockIn), out.(lockOut)
		free := s.holder == "" || s.holder == "?"
		if !i.release {
			switch {
			case o.unknown:
				if free {
					return []any{s, lockState{holder: "?", fencing: s.fencing}}
				}
				return []any{s}
			case o.ok:
				if free && o.fencing > s.fencing {
					return []any{lockState{holder: o.token, fencing: o.fencing}}
				}
				return nil
			default: // conflict: someone held it at that moment
				if s.holder != "" && o.code == problem.CodeConflict {
					return []any{s}
				}
				return nil
			}
		}
		mine := s.holder == i.token
		switch {
		case o.unknown:
			if mine {
				return []any{s, lockState{fencing: s.fencing}}
			}
			return []any{s}
		case o.ok:
			if mine {
				return []any{lockState{fencing: s.fencing}}
			}
			return nil
		default:
			if !mine {
				return []any{s}
			}
			return nil
		}
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(lockIn), out.(lockOut)
		res := fmt.Sprintf("ok f=%d", o.fencing)
		if o.unknown {
			res = "unknown"
		} else if !o.ok {
			res = o.code
		}
		if i.release {
			return fmt.Sprintf("release(%.6s) -> %s", i.token, res)
		}
		return fmt.Sprintf("acquire -> %.6s %s", o.token, res)
	},
}

// ---------------------------------------------------------------------------
// KV model: a register per key with revisions and compare-and-set.

type kvIn struct {
	op         string // get, put, delete
	key        string
	value      string
	ifRevision uint64
	ifAbsent   bool
}

type kvOut struct {
	unknown bool
	code    string // "" on success
	value   string
	rev     uint64
}

// kvState is one key; revKnown is false after a write of unknown outcome
// (its revision was never seen).
type kvState struct {
	exists   bool
	value    string
	rev      uint64
	revKnown bool
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvIn).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{kvState{revKnown: true}} },
	Step: func(st, in, out any) []any {
		s, i, o := st.(kvState), in.(kvIn), out.(kvOut)
		revIs := func(r uint64) bool { return !s.revKnown || s.rev == r }
		newer := func(r uint64) bool { return !s.revKnown || r > s.rev }
		switch i.op {
		case "get":
			switch {
			case o.unknown:
				return []any{s}
			case o.code == "":
				if s.exists && s.value == o.value && revIs(o.rev) {
					return []any{kvState{exists: true, value: o.value, rev: o.rev, revKnown: true}}
				}
			case o.code == problem.CodeNotFound:
				if !s.exists {
					return []any{s}
				}
			}
			return nil
		case "put":
			canOK := (!i.ifAbsent || !s.exists) && (i.ifRevision == 0 || (s.exists && revIs(i.ifRevision)))
			canFail := (i.ifAbsent && s.exists) || (i.ifRevision != 0 && (!s.exists || !s.revKnown || s.rev != i.ifRevision))
			switch {
			case o.unknown:
				if canOK {
					return []any{s, kvState{exists: true, value: i.value}}
				}
				return []any{s}
			case o.code == "":
				if canOK && newer(o.rev) {
					return []any{kvState{exists: true, value: i.value, rev: o.rev, revKnown: true}}
				}
			case o.code == problem.CodePrecondition:
				if canFail {
					return []any{s}
				}
			}
			return nil
		case "delete":
			canOK := s.exists && (i.ifRevision == 0 || revIs(i.ifRevision))
			switch {
			case o.unknown:
				if canOK {
					return []any{s, kvState{}}
				}
				return []any{s}
			case o.code == "":
				if canOK && newer(o.rev) {
					return []any{kvState{rev: o.rev, revKnown: true}}
				}
			case o.code == problem.CodeNotFound:
				if !s.exists {
					return []any{s}
				}
			case o.code == problem.CodePrecondition:
				if s.exists && i.ifRevision != 0 && (!s.revKnown || s.rev != i.ifRevision) {
					return []any{s}
				}
			}
			return nil
		}
		return nil
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(kvIn), out.(kvOut)
		res := fmt.Sprintf("%q@%d", o.value, o.rev)
		if o.unknown {
			res = "unknown"
		} else if o.code != "" {
			res = o.code
		}
		return fmt.Sprintf("%s(%s %q if=%d absent=%v) -> %s", i.op, i.key, i.value, i.ifRevision, i.ifAbsent, res)
	},
}

// TestLinearizability_UnderLeaderKill records concurrent lock and KV
// histories while the leader is cut off and killed, and checks both with
// porcupine.
func TestLinearizability_UnderLeaderKill(t *testing.T) {
	c := newCluster(t, 3, nil)
	ten := uuid.New()
	rec := &recorder{epoch: time.Now()}
	lockRec := &recorder{epoch: rec.epoch}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ctx := context.Background()

	const lockClients, kvClients = 4, 4
	for id := range lockClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &histClient{c: c, r: rand.New(rand.NewPCG(uint64(id), 1))}
			for {
				select {
				case <-stop:
					return
				default:
				}
				wait := time.Duration(hc.r.IntN(2)) * 100 * time.Millisecond
				start := time.Now()
				var got Lock
				err, o, ok := hc.call(func(n *Node) error {
					var err error
					got, err = n.Acquire(ctx, ten, "L", fmt.Sprintf("client-%d", id), 4*time.Second, wait)
					return err
				})
				if !ok {
					continue
				}
				lockRec.add(id, lockIn{}, lockOut{unknown: o == unknown, ok: err == nil, code: problem.Code(err), token: got.Token, fencing: got.FencingToken}, start, o)
				if err != nil {
					time.Sleep(time.Duration(hc.r.IntN(5)) * time.Millisecond)
					continue
				}
				time.Sleep(time.Duration(hc.r.IntN(3)) * time.Millisecond)
				start = time.Now()
				err, o, ok = hc.call(func(n *Node) error { return n.Release(ctx, ten, "L", got.Token) })
				if !ok {
					// Never reached the log, but the lease will run out at
					// a moment we cannot know: as good as an unknown release.
					o = unknown
				}
				lockRec.add(id, lockIn{release: true, token: got.Token}, lockOut{unknown: o == unknown, ok: err == nil, code: problem.Code(err)}, start, o)
			}
		}()
	}
	for id := range kvClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &histClient{c: c, r: rand.New(rand.NewPCG(uint64(100+id), 2))}
			var lastRev uint64
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvIn{key: fmt.Sprintf("k%d", hc.r.IntN(2)), value: fmt.Sprintf("c%d-%d", id, seq)}
				switch hc.r.IntN(6) {
				case 0, 1:
					in.op = "get"
				case 2:
					in.op = "put"
				case 3:
					in.op, in.ifRevision = "put", lastRev // compare-and-set on what we last saw
				case 4:
					in.op, in.ifAbsent = "put", true
				case 5:
					in.op, in.ifRevision = "delete", lastRev*uint64(hc.r.IntN(2))
				}
				start := time.Now()
				var out kvOut
				err, o, ok := hc.call(func(n *Node) error {
					switch in.op {
					case "get":
						kv, err := n.Get(ctx, ten, in.key)
						out.value, out.rev = string(kv.Value), kv.Revision
						return err
					case "put":
						kv, err := n.Put(ctx, ten, in.key, []byte(in.value), PutOptions{IfRevision: in.ifRevision, IfAbsent: in.ifAbsent})
						out.rev = kv.Revision
						return err
					default:
						rev, err := n.Delete(ctx, ten, in.key, in.ifRevision)
						out.rev = rev
						return err
					}
				})
				if !ok {
					continue
				}
				if err != nil {
					out = kvOut{code: problem.Code(err)}
				}
				out.unknown = o == unknown
				if err == nil && out.rev > 0 {
					lastRev = out.rev
				}
				rec.add(lockClients+id, in, out, start, o)
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	old := c.leaderIndex()
	if old < 0 {
		t.Fatal("no leader before the fault")
	}
	// Cut the leader off first so requests in flight on it end without a
	// verdict, then kill it.
	c.pn.isolate(c.nodes[old].addr, true)
	faultAt := time.Now()
	c.stop(old)
	idx := c.waitLeader(5 * time.Second)
	t.Logf("leader %s cut off and killed; %s leads after %s", c.nodes[old].id, c.nodes[idx].id, time.Since(faultAt).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	c.pn.isolate(c.nodes[old].addr, false)
	c.start(old, false)
	time.Sleep(1000 * time.Millisecond)
	close(stop)
	wg.Wait()

	check := func(name string, model porcupine.NondeterministicModel, ops []porcupine.Operation) {
		t.Helper()
		var unknowns int
		for _, op := range ops {
			if op.Return == math.MaxInt64 {
				unknowns++
			}
		}
		t.Logf("%s history: %d operations, %d with unknown outcome", name, len(ops), unknowns)
		if len(ops) < 20 {
			t.Fatalf("%s history too short to mean anything: %d", name, len(ops))
		}
		m := model.ToModel()
		res, info := porcupine.CheckOperationsVerbose(m, ops, 30*time.Second)
		if res != porcupine.Ok {
			f, err := os.CreateTemp("", "lockd-"+name+"-*.html")
			if err == nil {
				_ = porcupine.Visualize(m, info, f)
				f.Close()
			}
			t.Fatalf("%s history is %s (visualization: %s)", name, res, f.Name())
		}
	}
	check("lock", lockModel, lockRec.ops)
	check("kv", kvModel, rec.ops)
	c.requireSameState()
}
