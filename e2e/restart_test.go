package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchboard/e2e/client"
)

// pause stops the server with SIGSTOP, as a long stall of its machine
// would: it keeps its sockets and answers nothing until resume. If the
// test ends first, the cleanup resumes it so it can be stopped.
func (s *server) pause(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pause the server %s: %v", s.URL, err)
	}
	t.Cleanup(func() {
		select {
		case <-s.exited: // gone: nothing to resume, and its pid may be another's now
		default:
			_ = s.cmd.Process.Signal(syscall.SIGCONT) // it may have exited just now; then there is nothing to resume
		}
	})
}

// resume lets a paused server run on.
func (s *server) resume(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resume the server %s: %v", s.URL, err)
	}
}

// kvWriter puts keys of its own, each once with If-None-Match: *, through
// one node, and keeps what each put answered.
type kvWriter struct {
	name string
	c    *client.Client

	mu      sync.Mutex // guards acked, unknown, doubled
	acked   []string   // answered 200: must be in the store for good
	unknown int        // answered an error: may or may not be in the store
	doubled []string   // answered 412: the key, written once, was there already
}

// run writes until ctx ends, one key at a time.
func (w *kvWriter) run(ctx context.Context, tenant string) {
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%s-%05d", w.name, seq)
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		kv, err := w.c.PutKV(rctx, tenant, key, strconv.Itoa(seq), client.PutKVOptions{IfAbsent: true})
		cancel()
		w.mu.Lock()
		switch pe, isProblem := client.AsError(err); {
		case err == nil && kv.Key == key:
			w.acked = append(w.acked, key)
		case isProblem && pe.Code == "precondition":
			// Nobody else writes this key and no put of it is ever
			// repeated by the writer: only a request applied twice ends
			// here.
			w.doubled = append(w.doubled, key)
		default:
			w.unknown++
		}
		w.mu.Unlock()
		if err != nil {
			select { // a node down or paused: do not spin
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (w *kvWriter) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcked waits until the writers together have n more acknowledged
// writes than now.
func waitAcked(t *testing.T, writers []*kvWriter, n int, within time.Duration) {
	t.Helper()
	count := func() int {
		sum := 0
		for _, w := range writers {
			sum += w.ackedCount()
		}
		return sum
	}
	want := count() + n
	deadline := time.Now().Add(within)
	for count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the writers got %d of %d more writes acknowledged within %s", count()-(want-n), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// segmentFiles counts the Raft log's segment files in a server's data dir.
func segmentFiles(t *testing.T, s *server) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.DataDir, "raft", "wal", "*.wal"))
	mustOK(t, "list the log's segments", err)
	return len(files)
}

// A node that was the leader, stalled past the election timeout while
// writes went on, resumed (it then clears the suffix of its log that never
// committed), and later killed, starts again on its files, rejoins, and
// serves: a lock taken through it is granted and verifies, and its applied
// state catches up with the leader's. Writes go on through every node the
// whole time; none that was acknowledged is lost, none is applied twice.
// Clearing the suffix seals the log's last segment and starts another, so
// the restart reads a segment sealed right after a truncation, which once
// left a node unable to start. The sequence runs several times, each time
// on the leader of the moment.
func TestRestart_PausedThenKilledLeaderRejoins(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 3)
	ctx := t.Context()
	const tenant = "restart"
	owner := signupAndLogin(t, ctx, cl.nodes[0], "ada@example.com", tenant)

	clients := make([]*client.Client, 3)
	newNodeClient := func(i int) {
		clients[i] = cl.nodes[i].newClient(t)
		clients[i].SetToken(owner.Token())
	}
	for i := range clients {
		newNodeClient(i)
	}
	all := []int{0, 1, 2}

	// Two writers per node, so that a write is nearly always on its way
	// through the leader when it stops; their clients stay on the node
	// through its pause, kill and restart (the address does not change).
	writeCtx, stopWriting := context.WithCancel(ctx)
	var writers []*kvWriter
	var wg sync.WaitGroup
	for i := range all {
		for j := range 2 {
			w := &kvWriter{name: fmt.Sprintf("w%d%d", i, j), c: cl.nodes[i].newClient(t)}
			w.c.SetToken(owner.Token())
			writers = append(writers, w)
			wg.Go(func() { w.run(writeCtx, tenant) })
		}
	}
	defer func() { stopWriting(); wg.Wait() }()
	waitAcked(t, writers, 20, 30*time.Second)

	var fencing uint64 // the last fencing token granted
	truncated := 0     // rounds in which the paused leader cleared a suffix and sealed a segment
	// Three rounds at least; up to six while none has met the condition
	// under test (whether the paused leader appended entries that never
	// commit depends on where the writers' requests were when it stopped).
	const rounds, maxRounds = 3, 6
	round := 1
	for ; round <= maxRounds && (round <= rounds || truncated == 0); round++ {
		run(t, fmt.Sprintf("round %d", round), func(t *testing.T) {
			leader, views := cl.agreement(t, ctx, clients, all, 0, 30*time.Second)
			oldTerm := views[0].Term
			var others []int
			for _, i := range all {
				if i != leader {
					others = append(others, i)
				}
			}
			victim := cl.nodes[leader]
			t.Logf("pausing the leader %s in term %d", cl.ids[leader], oldTerm)

			logFrom, segments := len(victim.log.String()), segmentFiles(t, victim)
			victim.pause(t)
			newLeader, views := cl.agreement(t, ctx, clients, others, 0, 60*time.Second)
			if views[0].Term <= oldTerm {
				t.Fatalf("%s leads in term %d, not after term %d", cl.ids[newLeader], views[0].Term, oldTerm)
			}
			// The writers sending to the paused node wait on it; the others
			// go on through the new leader.
			waitAcked(t, writers, 20, 30*time.Second)

			victim.resume(t)
			st, err := clients[newLeader].Cluster(ctx)
			mustOK(t, "cluster on the new leader", err)
			cl.agreement(t, ctx, clients, all, st.CommitIndex, 60*time.Second)
			if strings.Contains(victim.log.String()[logFrom:], "clearing log suffix") {
				now := segmentFiles(t, victim)
				t.Logf("%s cleared the uncommitted suffix of its log; segments %d -> %d", cl.ids[leader], segments, now)
				if now > segments {
					truncated++
				}
			}
			waitAcked(t, writers, 10, 30*time.Second)

			victim.kill(t)
			waitAcked(t, writers, 10, 30*time.Second)
			cl.restart(t, leader)
			newNodeClient(leader)
			st, err = clients[newLeader].Cluster(ctx)
			mustOK(t, "cluster on the leader", err)
			cl.agreement(t, ctx, clients, all, st.CommitIndex, 60*time.Second)

			// It serves: a lock taken through it (forwarded to the leader)
			// is granted with a larger fencing token and verifies through it.
			name := fmt.Sprintf("after-restart-%d", round)
			l, err := clients[leader].AcquireLock(ctx, tenant, name, client.AcquireLockRequest{Owner: "worker", TTLMs: 60_000})
			mustOK(t, "acquire through the restarted node", err)
			if l.FencingToken <= fencing {
				t.Fatalf("fencing token %d after %d", l.FencingToken, fencing)
			}
			fencing = l.FencingToken
			ok, err := clients[leader].VerifyLock(ctx, tenant, name, l.FencingToken)
			if err != nil || !ok {
				t.Fatalf("the lock does not verify through the restarted node: %v, %v", ok, err)
			}
			mustOK(t, "release through the restarted node", clients[leader].ReleaseLock(ctx, tenant, name, l.Token))
			waitAcked(t, writers, 10, 30*time.Second)
		})
	}
	stopWriting()
	wg.Wait()
	// The writers sending to the paused leader make it append entries that
	// never commit, which it clears once resumed, sealing the segment they
	// were in; that must have happened.
	if truncated == 0 {
		t.Fatalf("in none of %d rounds did the paused leader clear a suffix of its log and seal a segment", round-1)
	}

	run(t, "no acknowledged write is lost or applied twice", func(t *testing.T) {
		st, err := clients[0].Cluster(ctx)
		mustOK(t, "cluster", err)
		cl.agreement(t, ctx, clients, all, st.CommitIndex, 30*time.Second)
		acked, unknown := 0, 0
		for _, w := range writers {
			if len(w.doubled) > 0 {
				t.Errorf("%s: puts answered 412 for keys only it wrote, once each: %v", w.name, w.doubled)
			}
			acked += len(w.acked)
			unknown += w.unknown
		}
		t.Logf("%d writes acknowledged, %d answered an error", acked, unknown)
		for _, i := range all {
			stored := map[string]string{}
			for cursor := ""; ; {
				page, err := clients[i].ListKV(ctx, tenant, "w", client.ListOptions{Limit: 200, Cursor: cursor})
				mustOK(t, "list keys through "+cl.ids[i], err)
				for _, kv := range page.Items {
					stored[kv.Key] = string(kv.Value)
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			for _, w := range writers {
				for _, key := range w.acked {
					seq := strings.TrimLeft(key[strings.LastIndex(key, "-")+1:], "0")
					if seq == "" {
						seq = "0"
					}
					if v, ok := stored[key]; !ok || v != strconv.Quote(seq) {
						t.Errorf("%s: the acknowledged write %s reads %q (present %v)", cl.ids[i], key, v, ok)
					}
				}
			}
			for key := range stored {
				w := key[:strings.LastIndex(key, "-")]
				if !slices.ContainsFunc(writers, func(x *kvWriter) bool { return x.name == w }) {
					t.Errorf("%s: a key nobody wrote: %s", cl.ids[i], key)
				}
			}
		}
	})
}
