package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// The late-commit trap: T1 inserts first (lower id, lower xid) and commits
// after T2. A reader of the log must not see T2's event while T1 is open
// (or T1's event would then land behind a position already read), and must
// then see both, T1's first, each once.
func TestLog_LateCommitIsNotSkipped(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	e1, e2 := ev("Early", 1), ev("Late", 2)
	tx := holdAppend(t, s, db, tenant, "a-1", e1) // T1: begins and inserts first
	mustAppend(t, s, tenant, "b-1", Any(), e2)    // T2: inserts later, commits first

	// T2 committed: its stream read shows it at once...
	if got, err := s.ReadStream(ctx, tenant, "b-1", 0, Forward, 10); err != nil || len(got) != 1 {
		t.Fatalf("b-1 = %v, %v", got, err)
	}
	// ...but the log must hold it back while T1 is open.
	for i := 0; i < 20; i++ {
		got, err := s.ReadAll(ctx, tenant, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("poll %d: the log shows %v while an older transaction is open", i, got)
		}
		select {
		case e := <-sub.Events():
			t.Fatalf("poll %d: the subscription delivered %v while an older transaction is open", i, e)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAllN(t, s, tenant, 2)
	if len(got) != 2 || got[0].ID != e1.ID || got[1].ID != e2.ID || got[0].Position != 1 || got[1].Position != 2 {
		t.Fatalf("log = %+v, want T1's event at 1 and T2's at 2", got)
	}
	live := receive(t, sub, 2, 10*time.Second)
	if live[0].ID != e1.ID || live[1].ID != e2.ID {
		t.Fatalf("subscription order %v, %v; want T1's event first", live[0].ID, live[1].ID)
	}
	select {
	case e := <-sub.Events():
		t.Fatalf("extra delivery %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

// An append that rolls back after a later one committed leaves no hole in
// the positions: the log is 1, 2 with the two kept events.
func TestLog_AbortedAppendLeavesNoGap(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	tx := holdAppend(t, s, db, tenant, "a-1", ev("Doomed", 1))
	mustAppend(t, s, tenant, "b-1", Any(), ev("Kept", 2))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, tenant, "b-1", Any(), ev("Kept", 3))
	got := readAllN(t, s, tenant, 2)
	if len(got) != 2 || got[0].Position != 1 || got[1].Position != 2 || got[0].Type != "Kept" {
		t.Fatalf("log = %+v, want the two kept events at 1 and 2", got)
	}
}

// Many writers, few streams, exact expected versions, retry on conflict:
// no version is written twice, no stream has a gap, and subscribers (one
// live from the start, one catching up afterwards) see every event exactly
// once, positions 1..N in order, each stream's versions in order.
func TestLog_ConcurrentWritersProperty(t *testing.T) {
	const (
		writers   = 16
		streams   = 4
		perWriter = 25
		total     = writers * perWriter
	)
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	other := newTenant(t, db) // a second tenant writing at once must not disturb the first
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	live, err := s.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveDone := make(chan []Event, 1)
	go func() {
		var got []Event
		for e := range live.Events() {
			got = append(got, e)
			if len(got) == total {
				break
			}
		}
		liveDone <- got
	}()

	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	conflicts := make([]int, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < perWriter; i++ {
				stream := fmt.Sprintf("acct-%d", rng.IntN(streams))
				e := EventData{ID: uuid.New(), Type: "Credited", Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}
				for {
					cur, err := s.ReadStream(ctx, tenant, stream, End, Backward, 1)
					exp := NoStream()
					if err == nil {
						exp = Exact(cur[0].Version)
					} else if problem.Code(err) != problem.CodeNotFound {
						errs <- err
						return
					}
					_, err = s.Append(ctx, tenant, stream, exp, []EventData{e})
					if err == nil {
						break
					}
					if problem.Code(err) != problem.CodeConflict {
						errs <- err
						return
					}
					conflicts[w]++
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := s.Append(ctx, other, "acct-0", Any(), []EventData{ev("Noise", i)}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sum := 0
	for _, c := range conflicts {
		sum += c
	}
	t.Logf("%d appends, %d conflicts retried", total, sum)

	// Streams: versions 0..n-1, each (writer, i) once overall.
	seen := map[string]bool{}
	count := 0
	for i := 0; i < streams; i++ {
		stream := fmt.Sprintf("acct-%d", i)
		got, err := s.ReadStream(ctx, tenant, stream, 0, Forward, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for j, e := range got {
			if e.Version != int64(j) {
				t.Fatalf("%s: event %d has version %d", stream, j, e.Version)
			}
			if seen[string(e.Data)] {
				t.Fatalf("%s: %s written twice", stream, e.Data)
			}
			seen[string(e.Data)] = true
		}
		count += len(got)
	}
	if count != total {
		t.Fatalf("streams hold %d events, want %d", count, total)
	}

	check := func(name string, got []Event) {
		t.Helper()
		if len(got) != total {
			t.Fatalf("%s: %d events, want %d", name, len(got), total)
		}
		ids := map[uuid.UUID]bool{}
		last := map[string]int64{}
		for i, e := range got {
			if e.Position != int64(i+1) {
				t.Fatalf("%s: event %d has position %d, want %d", name, i, e.Position, i+1)
			}
			if ids[e.ID] {
				t.Fatalf("%s: event %v delivered twice", name, e.ID)
			}
			ids[e.ID] = true
			if v, ok := last[e.Stream]; ok && e.Version != v+1 {
				t.Fatalf("%s: %s version %d follows %d in the log", name, e.Stream, e.Version, v)
			} else if !ok && e.Version != 0 {
				t.Fatalf("%s: %s starts at version %d in the log", name, e.Stream, e.Version)
			}
			last[e.Stream] = e.Version
		}
	}
	select {
	case got := <-liveDone:
		check("live subscriber", got)
	case <-ctx.Done():
		t.Fatal("live subscriber did not get every event")
	}
	catchUp, err := s.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer catchUp.Close()
	check("catch-up subscriber", receive(t, catchUp, total, 30*time.Second))
	if got := readAllN(t, s, other, 50); got[49].Position != 50 {
		t.Fatalf("other tenant's positions end at %d, want 50", got[49].Position)
	}
}

func TestSequencer_OneLeaderAcrossStores(t *testing.T) {
	a, db := newStore(t, testConfig())
	b := startStore(t, db, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("a leader", func() bool { return a.Leading() || b.Leading() })
	time.Sleep(200 * time.Millisecond) // several standby retries
	if a.Leading() == b.Leading() {
		t.Fatalf("a leading %v, b leading %v: want exactly one", a.Leading(), b.Leading())
	}
	leader, standby := a, b
	if b.Leading() {
		leader, standby = b, a
	}
	// Appends through the standby are positioned by the leader (found by
	// its poll), and a subscription on the standby is woken by NOTIFY.
	sub, err := standby.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 0; i < 5; i++ {
		mustAppend(t, standby, tenant, "s-1", Any(), ev("E", i))
	}
	receive(t, sub, 5, 5*time.Second)

	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor("the standby to take over", standby.Leading)
	for i := 5; i < 10; i++ {
		mustAppend(t, standby, tenant, "s-1", Any(), ev("E", i))
	}
	got := receive(t, sub, 5, 5*time.Second)
	if got[4].Position != 10 {
		t.Fatalf("last position %d, want 10", got[4].Position)
	}
	lag, err := standby.Lag(ctx)
	if err != nil || lag.Pending != 0 {
		t.Fatalf("lag = %+v, %v; want nothing pending", lag, err)
	}
}

func TestLag_CountsEventsHeldBehindAnOpenTransaction(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	tx := holdAppend(t, s, db, tenant, "a-1", ev("Open", 0))
	mustAppend(t, s, tenant, "b-1", Any(), evs("Waiting", 0, 3)...)
	time.Sleep(100 * time.Millisecond)
	lag, err := s.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Pending != 3 || lag.Oldest <= 0 {
		t.Fatalf("lag = %+v, want 3 pending with an age", lag)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	readAllN(t, s, tenant, 4)
	if lag, err = s.Lag(ctx); err != nil || lag.Pending != 0 || lag.Oldest != 0 {
		t.Fatalf("lag after commit = %+v, %v", lag, err)
	}
}

// Writers of one stream that do not check versions (expected any) queue on
// the stream's lock and all succeed. The log must still list every
// stream's events in version order: the waiter's transaction id has to be
// the larger one, which is why appends lock before they write.
func TestLog_StreamOrderMatchesVersionOrder(t *testing.T) {
	const writers, streams, perWriter = 16, 2, 40
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := s.Append(ctx, tenant, fmt.Sprintf("hot-%d", (w+i)%streams), Any(), []EventData{ev("E", i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var log []Event
	for len(log) < writers*perWriter {
		page, err := s.ReadAll(ctx, tenant, int64(len(log)+1), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		log = append(log, page...)
	}
	last := map[string]int64{}
	for _, e := range log {
		if v, ok := last[e.Stream]; (ok && e.Version != v+1) || (!ok && e.Version != 0) {
			t.Fatalf("position %d: %s version %d follows version %d", e.Position, e.Stream, e.Version, v)
		}
		last[e.Stream] = e.Version
	}
}

// TestSequencer_WakesOnCommit: with its safety-net poll out of the picture
// (an hour), the sequencer still positions appends through its own Store
// (woken as each returns) and through another replica's (which notifies
// after its appends commit), and a subscription on that replica gets them.
func TestSequencer_WakesOnCommit(t *testing.T) {
	cfg := testConfig()
	cfg.SequencerPoll = time.Hour
	cfg.SubscriptionPoll = time.Hour
	leader, db := newStore(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for !leader.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the first Store did not start the sequencer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	replica := startStore(t, db, cfg)
	tenant := newTenant(t, db)
	ctx := context.Background()
	sub, err := replica.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 0; i < 5; i++ {
		mustAppend(t, leader, tenant, "l-1", Any(), ev("L", i))
		mustAppend(t, replica, tenant, "r-1", Any(), ev("R", i))
		checkContiguous(t, "replica's subscription", receive(t, sub, 2, 10*time.Second), int64(2*i+1))
	}
	if replica.Leading() {
		t.Fatal("the replica took the sequencer over")
	}
}
